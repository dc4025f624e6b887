// person.js: one person: traits (edit), identifiers, account sessions
// (revoke), merges (merge, unmerge) and the timeline, newest first, with
// infinite scroll and live updates.

import { h, replace, when, text, debounce } from '../dom.js';
import { errorBox, showError } from '../api.js';
import { propertyNames, eventRow, openLive } from '../events.js';
import { nameOf, traitsOf } from './people.js';
import { confirmDialog } from '../widgets.js';

const TYPES = ['track', 'page', 'screen', 'identify', 'group', 'alias'];

// parseValue reads what staff typed as a trait value: JSON when it is
// valid JSON (numbers, true, objects…), else the text itself.
function parseValue(s) {
  try { return JSON.parse(s); } catch { return s; }
}

function shownValue(v) {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function section(id, title, ...children) {
  return h('section', { class: 'card', 'aria-labelledby': id }, h('h2', { id }, title), ...children);
}

export default async function render(ctx) {
  const id = ctx.params.id;
  const names = await propertyNames(ctx.can);
  const prof = await ctx.get(`/api/people/${encodeURIComponent(id)}`, null, { signal: ctx.signal });
  const person = prof.person;
  if (person.id !== id) {
    // A merged person: its profile is the one it was merged into.
    ctx.navigate(`/admin/people/${encodeURIComponent(person.id)}`, { replace: true });
    return;
  }
  const name = nameOf(person);
  ctx.setTitle(name || person.id);
  const reload = () => ctx.navigate(location.pathname + location.search, { replace: true });

  const traitsCard = section('traits-title', 'Traits');
  const idsCard = section('ids-title', 'Identifiers', identifiersTable(prof));
  const sessionsCard = ctx.can('sessions:revoke') ? section('sessions-title', 'Account and sessions') : null;
  const mergesCard = section('merges-title', 'Merges');
  const timelineCard = section('timeline-title', 'Timeline');

  replace(ctx.main,
    h('div', { class: 'person-head' },
      h('h1', null, name || person.id),
      h('span', { class: 'muted mono' }, person.id),
      typeof traitsOf(person).email === 'string' ? h('span', null, traitsOf(person).email) : null),
    h('p', { class: 'muted' }, 'First seen ', when(person.created_at), ' · last seen ', when(person.last_seen_at),
      person.user_id ? [' · user id ', h('span', { class: 'mono' }, person.user_id)] : null,
      prof.merged_person_ids && prof.merged_person_ids.length ? ` · ${prof.merged_person_ids.length} merged` : null),
    h('div', { class: 'grid2' }, traitsCard, idsCard),
    h('div', { class: 'grid2' }, sessionsCard, mergesCard),
    timelineCard);

  drawTraits(ctx, traitsCard, person, reload);
  if (sessionsCard) drawSessions(ctx, sessionsCard, person.id);
  drawMerges(ctx, mergesCard, person.id, reload);
  drawTimeline(ctx, timelineCard, person.id, names);
}

function identifiersTable(prof) {
  const ids = prof.identifiers || [];
  if (!ids.length) return h('p', { class: 'muted' }, 'No identifiers.');
  return h('div', { class: 'data' }, h('table', { id: 'identifiers' },
    h('thead', null, h('tr', null, ['Type', 'Value', 'Verified', 'First seen'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', null, ids.map((i) => h('tr', null,
      h('td', null, i.type),
      h('td', { class: 'mono' }, i.value, i.person_id !== prof.person.id ? h('span', { class: 'muted' }, ` (from ${i.person_id})`) : null),
      h('td', null, i.verified ? h('span', { class: 'badge ok' }, 'Verified') : ''),
      h('td', null, when(i.first_seen_at)))))));
}

function drawTraits(ctx, card, person, reload) {
  const traits = traitsOf(person);
  const keys = Object.keys(traits).sort();
  const view = keys.length
    ? h('dl', { class: 'kv', id: 'traits' }, keys.flatMap((k) => [h('dt', null, k), h('dd', null, shownValue(traits[k]))]))
    : h('p', { class: 'muted', id: 'traits' }, 'No traits.');
  const editBtn = ctx.can('people:write') ? h('button', { type: 'button', class: 'secondary', id: 'edit-traits', onclick: () => edit() }, 'Edit traits') : null;
  replace(card, h('h2', { id: 'traits-title' }, 'Traits'), view, h('div', { class: 'actions' }, editBtn));

  function edit() {
    const rows = h('tbody');
    const addRow = (key = '', value = '', original = null) => {
      const n = rows.children.length;
      rows.append(h('tr', { dataset: { original: original === null ? '' : original, originalValue: original === null ? '' : value } },
        h('td', null, h('label', { class: 'visually-hidden', for: `trait-k-${n}` }, 'Key'),
          h('input', { id: `trait-k-${n}`, class: 'trait-key', value: key, required: true, autocomplete: 'off', spellcheck: 'false' })),
        h('td', null, h('label', { class: 'visually-hidden', for: `trait-v-${n}` }, `Value of ${key || 'the new trait'}`),
          h('input', { id: `trait-v-${n}`, class: 'trait-value', value, autocomplete: 'off', spellcheck: 'false' })),
        h('td', null, h('label', null, h('input', { type: 'checkbox', class: 'trait-remove' }), ' Remove'))));
    };
    for (const k of keys) addRow(k, shownValue(traits[k]), k);
    const errors = h('div');
    const form = h('form', { id: 'traits-form', onsubmit: async (ev) => {
      ev.preventDefault();
      const set = {};
      const unset = [];
      for (const tr of rows.children) {
        const key = tr.querySelector('.trait-key').value.trim();
        const value = tr.querySelector('.trait-value').value;
        const removed = tr.querySelector('.trait-remove').checked;
        const orig = tr.dataset.original;
        if (removed) { if (orig) unset.push(orig); continue; }
        if (!key) continue;
        if (orig && orig !== key) unset.push(orig);
        if (orig !== key || value !== tr.dataset.originalValue) set[key] = parseValue(value);
      }
      if (!Object.keys(set).length && !unset.length) { drawTraits(ctx, card, person, reload); return; }
      try {
        await ctx.api('PATCH', `/api/people/${encodeURIComponent(person.id)}/traits`, { body: { set, unset } });
        reload();
      } catch (err) {
        replace(errors, errorBox(err));
      }
    } },
    h('p', { class: 'hint' }, 'Values that are valid JSON (numbers, true/false, objects) are kept as JSON; anything else is text. The change is written to the audit log.'),
    h('table', null, h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Key'), h('th', { scope: 'col' }, 'Value'), h('th', { scope: 'col' }, ''))), rows),
    errors,
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'ghost', onclick: () => addRow() }, 'Add trait'),
      h('button', { type: 'submit' }, 'Save traits'),
      h('button', { type: 'button', class: 'ghost', onclick: () => drawTraits(ctx, card, person, reload) }, 'Cancel')));
    replace(card, h('h2', { id: 'traits-title' }, 'Edit traits'), form);
    form.querySelector('input')?.focus();
  }
}

async function drawSessions(ctx, card, personID) {
  const body = h('div', null, h('p', { class: 'loading' }, 'Loading…'));
  card.append(body);
  try {
    const res = await ctx.get(`/api/people/${encodeURIComponent(personID)}/sessions`, null, { signal: ctx.signal });
    const live = (res.data || []).filter((s) => !s.revoked_at);
    if (!live.length) { replace(body, h('p', { class: 'muted' }, 'No live sessions (or no account).')); return; }
    replace(body, h('div', { class: 'data' }, h('table', { id: 'sessions' },
      h('thead', null, h('tr', null, ['Started', 'Last seen', 'Where', ''].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, live.map((s) => h('tr', null,
        h('td', null, when(s.created_at)),
        h('td', null, when(s.last_seen_at)),
        h('td', null, s.ip || '', h('br'), h('span', { class: 'muted' }, s.user_agent || '')),
        h('td', null, h('button', { type: 'button', class: 'danger', onclick: async (ev) => {
          if (!await confirmDialog({ title: 'End this session?', message: 'The person is signed out on that device, and on every site signed in through it.', confirmLabel: 'Revoke', danger: true })) return;
          ev.target.disabled = true;
          try {
            await ctx.api('DELETE', `/api/sessions/${encodeURIComponent(s.id)}`);
            ev.target.closest('tr').remove();
          } catch (err) { ev.target.disabled = false; showError(err); }
        } }, 'Revoke'))))))));
  } catch (err) {
    if (err.name !== 'AbortError') replace(body, errorBox(err));
  }
}

async function drawMerges(ctx, card, personID, reload) {
  const body = h('div', null, h('p', { class: 'loading' }, 'Loading…'));
  const errors = h('div');
  card.append(body, errors);
  if (ctx.can('people:write')) {
    const input = h('input', { id: 'merge-from', name: 'from', required: true, autocomplete: 'off', spellcheck: 'false', placeholder: 'per_…', 'aria-describedby': 'merge-hint' });
    card.append(h('form', { id: 'merge-form', class: 'filters', onsubmit: async (ev) => {
      ev.preventDefault();
      const from = input.value.trim();
      if (!from) return;
      if (!await confirmDialog({ title: 'Merge these people?', message: `${from} joins this person: its identifiers, traits and events. The merge can be undone.`, confirmLabel: 'Merge' })) return;
      try {
        await ctx.api('POST', `/api/people/${encodeURIComponent(personID)}/merge`, { body: { from } });
        reload();
      } catch (err) { replace(errors, errorBox(err)); }
    } },
    h('div', { class: 'field grow' }, h('label', { for: 'merge-from' }, 'Merge another person into this one'), input,
      h('span', { class: 'hint', id: 'merge-hint' }, 'The id of the duplicate (from its page). Its identifiers, traits and events join this person.')),
    h('button', { type: 'submit' }, 'Merge')));
  }
  try {
    const res = await ctx.get(`/api/people/${encodeURIComponent(personID)}/merges`, null, { signal: ctx.signal });
    const ms = res.data || [];
    if (!ms.length) { replace(body, h('p', { class: 'muted' }, 'No merges.')); return; }
    replace(body, h('div', { class: 'data' }, h('table', { id: 'merges' },
      h('thead', null, h('tr', null, ['Merged', 'Into', 'Why', 'When', ''].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, ms.map((m) => h('tr', { dataset: { merge: m.id } },
        h('td', { class: 'mono' }, h('a', { href: `/admin/people/${encodeURIComponent(m.from_person_id)}` }, m.from_person_id)),
        h('td', { class: 'mono' }, m.into_person_id),
        h('td', null, m.reason, m.actor ? h('span', { class: 'muted' }, ` by ${m.actor}`) : null),
        h('td', null, when(m.created_at), m.undone_at ? [h('br'), h('span', { class: 'badge' }, 'Undone '), when(m.undone_at)] : null),
        h('td', null, !m.undone_at && ctx.can('people:write') ? h('button', { type: 'button', class: 'danger', onclick: async (ev) => {
          if (!await confirmDialog({ title: 'Undo this merge?', message: 'The merged person becomes separate again, with its identifiers and events.', confirmLabel: 'Unmerge', danger: true })) return;
          ev.target.disabled = true;
          try {
            await ctx.api('POST', `/api/merges/${encodeURIComponent(m.id)}/undo`);
            reload();
          } catch (err) { ev.target.disabled = false; replace(errors, errorBox(err)); }
        } }, 'Unmerge') : null)))))));
  } catch (err) {
    if (err.name !== 'AbortError') replace(body, errorBox(err));
  }
}

function drawTimeline(ctx, card, personID, names) {
  const filters = { type: ctx.query.get('type') || '', property: ctx.query.get('property') || '', event: ctx.query.get('event') || '' };
  const list = h('ul', { class: 'events', id: 'timeline', 'aria-label': 'Events, newest first' });
  const status = h('p', { class: 'muted', role: 'status' });
  const liveState = h('span', { class: 'live-state', role: 'status' }, 'Connecting…');
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Load older events');
  const sentinel = h('div', { class: 'sentinel', 'aria-hidden': 'true' });
  const errors = h('div');
  const seen = new Set();
  let cursor = '';
  let loading = false;
  let generation = 0;

  const key = (e) => e.message_id || `seq:${e.seq}`;
  // The API takes a comma-separated list of exact names: a track event's
  // event, a page or screen's name.
  const eventNames = () => filters.event.split(',').map((n) => n.trim()).filter(Boolean);
  const matches = (e) => (!filters.type || e.type === filters.type) && (!filters.property || e.property_id === filters.property) &&
    (!eventNames().length || eventNames().includes(e.type === 'track' ? e.event : e.name));

  const load = async (reset) => {
    if (loading && !reset) return;
    const gen = reset ? ++generation : generation;
    if (reset) { cursor = ''; seen.clear(); list.replaceChildren(); }
    loading = true;
    status.textContent = 'Loading…';
    try {
      const res = await ctx.get(`/api/people/${encodeURIComponent(personID)}/events`,
        { type: filters.type, property: filters.property, event: eventNames().join(','), cursor, limit: 50 }, { signal: ctx.signal });
      if (gen !== generation) return;
      for (const e of res.data || []) {
        if (seen.has(key(e))) continue;
        seen.add(key(e));
        list.append(eventRow(e, { names }));
      }
      cursor = res.cursor && res.cursor.has_more ? res.cursor.next : '';
      more.hidden = !cursor;
      status.textContent = list.children.length ? (cursor ? '' : 'The beginning of the timeline.') : 'No events.';
      errors.replaceChildren();
    } catch (err) {
      if (err.name !== 'AbortError') replace(errors, errorBox(err));
      status.textContent = '';
    } finally {
      if (gen === generation) loading = false;
    }
  };
  more.addEventListener('click', () => load(false));

  // Infinite scroll: the next page loads when the end comes into view.
  const io = new IntersectionObserver((entries) => {
    if (entries.some((en) => en.isIntersecting) && cursor && !loading) load(false);
  }, { rootMargin: '400px' });
  io.observe(sentinel);
  ctx.onLeave(() => io.disconnect());

  const applyFilter = (k, v) => {
    filters[k] = v;
    const u = new URLSearchParams(location.search);
    if (filters[k]) u.set(k, filters[k]); else u.delete(k);
    const s = u.toString();
    history.replaceState(null, '', location.pathname + (s ? '?' + s : ''));
    load(true);
  };
  const filterChanged = (k) => (ev) => applyFilter(k, ev.target.value);
  // Typing asks once the person pauses, not at every key.
  const eventTyped = debounce((v) => {
    if (!ctx.signal.aborted && v.trim() !== filters.event) applyFilter('event', v.trim());
  }, 300);

  ctx.onLeave(openLive({ person: personID }, {
    onEvent: (e) => {
      if (!matches(e) || seen.has(key(e))) return;
      seen.add(key(e));
      list.prepend(eventRow(e, { names, fresh: true }));
      if (status.textContent === 'No events.') status.textContent = '';
    },
    state: (t, on) => { liveState.textContent = t; liveState.classList.toggle('on', on); },
  }));

  const propOptions = [['', 'Any property'], ...names.entries()];
  replace(card,
    h('div', { class: 'actions' }, h('h2', { id: 'timeline-title' }, 'Timeline'), liveState),
    h('div', { class: 'filters' },
      h('div', { class: 'field' }, h('label', { for: 'tl-type' }, 'Type'),
        h('select', { id: 'tl-type', onchange: filterChanged('type') },
          h('option', { value: '' }, 'All types'), TYPES.map((t) => h('option', { value: t, selected: t === filters.type }, t)))),
      names.size ? h('div', { class: 'field' }, h('label', { for: 'tl-property' }, 'Property'),
        h('select', { id: 'tl-property', onchange: filterChanged('property') },
          propOptions.map(([v, l]) => h('option', { value: v, selected: v === filters.property }, text(l))))) : null,
      h('div', { class: 'field' }, h('label', { for: 'tl-event' }, 'Event name'),
        h('input', {
          type: 'search', id: 'tl-event', name: 'event', value: filters.event, placeholder: 'Signed Up', autocomplete: 'off', spellcheck: 'false',
          'aria-describedby': 'tl-event-hint', oninput: (ev) => eventTyped(ev.target.value),
        }),
        h('span', { class: 'hint', id: 'tl-event-hint' }, 'Exact names; separate several with commas.'))),
    errors, list, sentinel, status, h('div', { class: 'actions' }, more));
  load(true);
}
