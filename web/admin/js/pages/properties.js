// properties.js: the list of properties (websites and apps that send events
// and sign people in). Roles without properties:manage see it read-only.

import { h, replace, when } from '../dom.js';

export default async function render(ctx) {
  const res = await ctx.get('/api/properties', null, { signal: ctx.signal });
  const props = (res.data || []).slice().sort((a, b) => a.name.localeCompare(b.name));
  const manage = ctx.can('properties:manage');

  const rows = props.map((p) => h('tr', null,
    h('td', null, h('a', { href: `/admin/properties/${encodeURIComponent(p.id)}` }, p.name)),
    h('td', { class: 'mono' }, p.id),
    h('td', null, (p.origins || []).length ? (p.origins || []).join(', ') : h('span', { class: 'muted' }, 'Any origin')),
    h('td', { class: 'mono' }, p.write_key),
    h('td', null, when(p.created_at))));

  replace(ctx.main,
    h('div', { class: 'page-head' },
      h('h1', null, 'Properties'),
      manage ? h('a', { class: 'button', href: '/admin/properties/new', id: 'new-property' }, 'New property') : null),
    h('p', { class: 'hint' }, 'A property is one website or app: it sends events with its write key and signs people in through its OpenID Connect client.',
      manage ? null : ' Your role may look at properties but not change them.'),
    props.length
      ? h('div', { class: 'data' }, h('table', { id: 'properties-table' },
        h('caption', { class: 'visually-hidden' }, 'Properties'),
        h('thead', null, h('tr', null, ['Name', 'Id', 'Origins', 'Write key', 'Created'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', null, rows)))
      : h('p', { class: 'muted', id: 'properties-empty' }, 'No properties yet.', manage ? ' Create one to get a write key and the snippet for your site.' : ''));
}
