// property.js: one property — create (/admin/properties/new), view and
// edit (/admin/properties/{id}): name, origins, theme, its OpenID Connect
// client, the keys (each secret shown once, right after it is made), and
// the snippet to paste into a site.

import { h, replace, when } from '../dom.js';
import { errorBox } from '../api.js';
import { confirmDialog, copyButton, lines, field, checkbox } from '../widgets.js';

// reveal holds secrets the server just answered (creation, rotation) until
// the next render of that property takes them. They live in this variable
// only: leaving the page, reloading or coming back shows them no more.
let reveal = null;

// STUB is the one-line queue of docs/sdk.md: calls made before the SDK has
// loaded are kept and replayed.
const STUB = '<script>!function(w){var o=w.onramp=w.onramp||[];"load page track identify group alias reset consent flush ready debug".split(" ").forEach(function(m){o[m]=o[m]||function(){o.push([m].concat([].slice.call(arguments)))}})}(window);onramp.page();</script>';

// snippetOf is what a site pastes into its <head>: the stub and the loader
// from this server, with the property's write key.
export function snippetOf(writeKey) {
  const attr = String(writeKey).replace(/[&"<>]/g, (c) => `&#${c.charCodeAt(0)};`);
  return `${STUB}\n<script src="${location.origin}/sdk/onramp.js" data-write-key="${attr}" async></script>`;
}

const KEYS = {
  write: { label: 'Write key', what: 'Sites sending events with the old write key are refused until their snippet has the new one.' },
  secret: { label: 'Secret key', what: 'Servers reading profiles with the old secret key are refused until they use the new one.' },
  'client-secret': { label: 'Client secret', what: 'Applications signing people in with the old client secret fail until they use the new one.' },
};

export default async function render(ctx) {
  if (!ctx.params.id) {
    renderForm(ctx, null, null);
    return;
  }
  const id = ctx.params.id;
  const res = await ctx.get(`/api/properties/${encodeURIComponent(id)}`, null, { signal: ctx.signal });
  const { client, ...prop } = res;
  ctx.setTitle(prop.name);
  const shown = reveal && reveal.id === prop.id ? reveal : null;
  reveal = null;
  renderForm(ctx, prop, client || null, shown);
}

// revealBox shows freshly made secrets with copy buttons and says they
// will not be shown again.
function revealBox(shown) {
  return h('section', { class: 'card reveal', id: 'reveal', 'aria-labelledby': 'reveal-title', tabindex: '-1' },
    h('h2', { id: 'reveal-title' }, shown.title),
    h('p', { class: 'warning' }, h('strong', null, 'Copy these now. '),
      'The secrets below are shown this once: after you leave this page they cannot be shown again, only replaced.'),
    h('dl', { class: 'kv secrets' }, shown.items.flatMap((it) => {
      const value = h('code', { class: 'secret', id: `reveal-${it.key}` }, it.value);
      return [h('dt', null, it.label), h('dd', null, value, ' ', copyButton(`Copy ${it.label.toLowerCase()}`, value, undefined, `copy-${it.key}`))];
    })));
}

function snippetCard(prop) {
  const pre = h('pre', { id: 'snippet', class: 'snippet' }, snippetOf(prop.write_key));
  return h('section', { class: 'card', 'aria-labelledby': 'snippet-title' },
    h('h2', { id: 'snippet-title' }, 'Install on your site'),
    h('p', { class: 'hint' }, 'Paste this into the <head> of every page. It records page views and sends events to this server with the property\'s write key.'),
    pre,
    h('div', { class: 'actions' }, copyButton('Copy snippet', pre, undefined, 'copy-snippet')));
}

function keysCard(ctx, prop, client) {
  const manage = ctx.can('properties:manage');
  const rotate = (key) => async (ev) => {
    const k = KEYS[key];
    const ok = await confirmDialog({
      title: `Replace the ${k.label.toLowerCase()}?`,
      message: `The current ${k.label.toLowerCase()} stops working at once. ${k.what}`,
      confirmLabel: `Replace ${k.label.toLowerCase()}`, danger: true,
    });
    if (!ok) return;
    const btn = ev.target;
    btn.disabled = true;
    try {
      const out = await ctx.api('POST', `/api/properties/${encodeURIComponent(prop.id)}/revoke-key`, { body: { key } });
      const items = [];
      if (key === 'write') items.push({ key: 'write', label: 'Write key', value: out.write_key });
      if (key === 'secret') items.push({ key: 'secret', label: 'Secret key', value: out.secret_key });
      if (key === 'client-secret') items.push({ key: 'client-secret', label: 'Client secret', value: out.client_secret });
      reveal = { id: prop.id, title: `New ${k.label.toLowerCase()}`, items };
      ctx.navigate(location.pathname, { replace: true });
    } catch (err) {
      btn.disabled = false;
      btn.closest('section').append(errorBox(err));
    }
  };
  const row = (key, value, note) => [
    h('dt', null, KEYS[key].label),
    h('dd', null, value, note ? h('span', { class: 'muted' }, note) : null,
      manage ? [' ', h('button', { type: 'button', class: 'danger small', id: `rotate-${key}`, onclick: rotate(key) }, 'Replace…')] : null),
  ];
  return h('section', { class: 'card', 'aria-labelledby': 'keys-title' },
    h('h2', { id: 'keys-title' }, 'Keys'),
    h('dl', { class: 'kv' },
      row('write', h('code', { id: 'write-key' }, prop.write_key), ' (public: it is in the snippet)'),
      row('secret', null, 'Shown once when made; replace it if it is lost.'),
      client ? [h('dt', null, 'Client id'), h('dd', null, h('code', { id: 'client-id' }, client.id),
        h('span', { class: 'muted', id: 'client-kind' }, client.public ? ' (public client: no secret, PKCE required)' : ' (confidential client)'))] : null,
      client && !client.public ? row('client-secret', null, 'Shown once when made.') : null));
}

// formFields are the inputs of a property and its client, filled from
// prop/client (null for a new property).
function formFields(prop, client, isNew) {
  const theme = (prop && prop.theme) || {};
  const ta = (id, values, placeholder) => h('textarea', { id, name: id, rows: 3, spellcheck: 'false', placeholder }, (values || []).join('\n'));
  const input = (id, value, attrs = {}) => h('input', { id, name: id, value: value || '', autocomplete: 'off', spellcheck: 'false', ...attrs });
  const hasClient = isNew || !!client;
  return h('div', { class: 'form-grid' },
    field('prop-name', 'Name', input('prop-name', prop && prop.name, { required: true, maxlength: 200 })),
    field('prop-origins', 'Origins', ta('prop-origins', prop && prop.origins, 'https://www.example.com'),
      'One per line. Browsers on other origins are refused; none at all accepts any origin.'),
    hasClient ? field('prop-redirects', 'Redirect URIs', ta('prop-redirects', client && client.redirect_uris, 'https://app.example.com/callback'),
      'One per line: where sign-in may return to.') : null,
    hasClient ? field('prop-logout-redirects', 'After sign-out, return to', ta('prop-logout-redirects', client && client.post_logout_redirect_uris, 'https://www.example.com/'),
      'One per line (optional).') : null,
    hasClient ? checkbox('prop-first-party', 'First-party', !!(client && client.first_party),
      'Your own app: people are not asked to consent to share their profile with it.') : null,
    isNew ? checkbox('prop-public', 'Public client', false,
      'A single-page or mobile app that cannot keep a secret: it gets no client secret and must use PKCE.') : null,
    h('fieldset', { class: 'theme' },
      h('legend', null, 'Sign-in page theme (optional)'),
      field('prop-logo', 'Logo URL', input('prop-logo', theme.logo_url, { type: 'url', placeholder: 'https://www.example.com/logo.svg' })),
      field('prop-color-primary', 'Primary colour', input('prop-color-primary', theme.color_primary, { placeholder: '#0a55c4', pattern: '#[0-9a-fA-F]{6}' })),
      field('prop-color-accent', 'Accent colour', input('prop-color-accent', theme.color_accent, { placeholder: '#f0a000', pattern: '#[0-9a-fA-F]{6}' }))));
}

// readForm is the JSON body of the create (POST) or update (PATCH) call.
function readForm(form, isNew, client) {
  const v = (id) => form.querySelector(`#${id}`);
  const theme = {};
  for (const [id, key] of [['prop-logo', 'logo_url'], ['prop-color-primary', 'color_primary'], ['prop-color-accent', 'color_accent']]) {
    const s = v(id).value.trim();
    if (s) theme[key] = s;
  }
  const body = { name: v('prop-name').value.trim(), origins: lines(v('prop-origins').value), theme };
  if (isNew || client) {
    body.redirect_uris = lines(v('prop-redirects').value);
    body.post_logout_redirect_uris = lines(v('prop-logout-redirects').value);
    body.first_party = v('prop-first-party').checked;
  }
  if (isNew) body.public = v('prop-public').checked;
  return body;
}

function readOnlyView(prop, client) {
  const list = (xs) => (xs && xs.length ? xs.join('\n') : h('span', { class: 'muted' }, 'None'));
  const theme = prop.theme || {};
  return h('section', { class: 'card', 'aria-labelledby': 'settings-title' },
    h('h2', { id: 'settings-title' }, 'Settings'),
    h('dl', { class: 'kv', id: 'property-settings' },
      h('dt', null, 'Origins'), h('dd', null, list(prop.origins)),
      client ? [h('dt', null, 'Redirect URIs'), h('dd', null, list(client.redirect_uris)),
        h('dt', null, 'After sign-out'), h('dd', null, list(client.post_logout_redirect_uris)),
        h('dt', null, 'First-party'), h('dd', null, client.first_party ? 'Yes' : 'No')] : null,
      h('dt', null, 'Theme'), h('dd', null, [theme.logo_url, theme.color_primary, theme.color_accent].filter(Boolean).join(' · ') || h('span', { class: 'muted' }, 'Onramp\'s own look')),
      h('dt', null, 'Created'), h('dd', null, when(prop.created_at)),
      h('dt', null, 'Updated'), h('dd', null, when(prop.updated_at))),
    h('p', { class: 'hint' }, 'Your role may look at this property but not change it.'));
}

function renderForm(ctx, prop, client, shown) {
  const isNew = !prop;
  const manage = ctx.can('properties:manage');
  const errors = h('div', { id: 'property-errors' });
  const status = h('span', { class: 'muted', role: 'status', id: 'property-status' });

  let settings;
  if (manage) {
    const form = h('form', { id: 'property-form', class: 'card', 'aria-labelledby': 'settings-title', novalidate: true },
      h('h2', { id: 'settings-title' }, isNew ? 'New property' : 'Settings'),
      formFields(prop, client, isNew),
      errors,
      h('div', { class: 'actions' },
        h('button', { type: 'submit', id: 'property-save' }, isNew ? 'Create property' : 'Save changes'),
        h('a', { href: isNew ? '/admin/properties' : `/admin/properties/${encodeURIComponent(prop.id)}`, class: 'button ghost' }, 'Cancel'),
        status));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      errors.replaceChildren();
      const body = readForm(form, isNew, client);
      if (!body.name) {
        replace(errors, errorBox(new Error('A property needs a name.')));
        form.querySelector('#prop-name').focus();
        return;
      }
      const save = form.querySelector('#property-save');
      save.disabled = true;
      status.textContent = 'Saving…';
      try {
        if (isNew) {
          const out = await ctx.api('POST', '/api/properties', { body });
          const items = [
            { key: 'write', label: 'Write key', value: out.write_key },
            { key: 'secret', label: 'Secret key', value: out.secret_key },
          ];
          if (out.client_id) items.push({ key: 'client-id', label: 'Client id', value: out.client_id });
          if (out.client_secret) items.push({ key: 'client-secret', label: 'Client secret', value: out.client_secret });
          reveal = { id: out.id, title: 'Property created: its keys', items };
          ctx.navigate(`/admin/properties/${encodeURIComponent(out.id)}`, { replace: true });
          return;
        }
        await ctx.api('PATCH', `/api/properties/${encodeURIComponent(prop.id)}`, { body });
        ctx.navigate(location.pathname, { replace: true });
      } catch (err) {
        if (err.name === 'AbortError') return;
        replace(errors, errorBox(err));
        status.textContent = '';
        save.disabled = false;
      }
    });
    settings = form;
  } else {
    settings = readOnlyView(prop, client);
  }

  replace(ctx.main,
    h('p', { class: 'crumbs' }, h('a', { href: '/admin/properties' }, 'Properties'), ' / '),
    h('div', { class: 'page-head' },
      h('h1', null, isNew ? 'New property' : prop.name),
      isNew ? null : h('span', { class: 'muted mono' }, prop.id)),
    shown ? revealBox(shown) : null,
    isNew ? settings : h('div', { class: 'grid2' }, snippetCard(prop), keysCard(ctx, prop, client)),
    isNew ? null : settings);
  if (shown) ctx.main.querySelector('#reveal').focus();
  else if (isNew) ctx.main.querySelector('#prop-name').focus();
}
