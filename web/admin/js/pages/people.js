// people.js: the people list. Search, filters and sort live in the URL
// (so back, reload and shared links keep them); pages come by cursor with
// "Load more".

import { h, replace, when, debounce } from '../dom.js';
import { errorBox } from '../api.js';
import { propertyNames } from '../events.js';

const PAGE = 50;

const SEEN = [
  ['', 'Any time'], ['1h', 'Last hour'], ['24h', 'Last 24 hours'], ['7d', 'Last 7 days'], ['30d', 'Last 30 days'], ['older30d', 'Not in 30 days'],
];
const SORTS = [
  ['last_seen', 'Last seen, newest first'], ['-last_seen', 'Last seen, oldest first'],
  ['first_seen', 'First seen, newest first'], ['-first_seen', 'First seen, oldest first'],
];

// seenRange turns a "last seen" choice into seen_after/seen_before.
function seenRange(v) {
  const hours = { '1h': 1, '24h': 24, '7d': 168, '30d': 720 }[v];
  if (hours) return { seen_after: new Date(Date.now() - hours * 3600e3).toISOString() };
  if (v === 'older30d') return { seen_before: new Date(Date.now() - 720 * 3600e3).toISOString() };
  return {};
}

// traitsOf reads a person's traits (a JSON object, or nothing).
export function traitsOf(p) {
  return p && p.traits && typeof p.traits === 'object' ? p.traits : {};
}

// nameOf is how a person is called in lists: name, else first and last
// name, else nothing.
export function nameOf(p) {
  const t = traitsOf(p);
  const str = (v) => (typeof v === 'string' ? v.trim() : '');
  return str(t.name) || `${str(t.firstName)} ${str(t.lastName)}`.trim();
}

// traitFilter reads what is typed in the trait box: the filter to send
// (key:value, a key and a colon at least), or null while it is not one.
// complete asks for a value too, as typing does: "plan:" is a filter for
// an empty plan only once the person presses Enter or leaves the box.
export function traitFilter(text, { complete = false } = {}) {
  const t = text.trim();
  if (!t) return '';
  const i = t.indexOf(':');
  if (i <= 0 || (complete && i === t.length - 1)) return null;
  return t;
}

const TRAIT_HINT = 'key:value, such as plan:pro.';

function select(id, label, options, value, onchange) {
  return h('div', { class: 'field' },
    h('label', { for: id }, label),
    h('select', { id, name: id, onchange }, options.map(([v, l]) => h('option', { value: v, selected: v === value }, l))));
}

export default async function render(ctx) {
  const q = ctx.query;
  // state.trait is the trait filter in use; the box may hold more (a key
  // still waiting for its colon), which is never sent.
  const typedTrait = q.get('trait') || '';
  const state = {
    q: q.get('q') || '', seen: q.get('seen') || '', property: q.get('property') || '',
    has_account: q.get('has_account') || '', trait: traitFilter(typedTrait) || '', sort: q.get('sort') || 'last_seen',
  };
  const names = await propertyNames(ctx.can);

  const tbody = h('tbody');
  const status = h('p', { class: 'muted', role: 'status', id: 'people-status' });
  const more = h('button', { type: 'button', class: 'secondary', hidden: true, id: 'load-more' }, 'Load more');
  const errors = h('div');
  let cursor = '';
  let inflight = null;
  let shown = 0;

  const params = () => ({
    q: state.q.trim(), property: state.property, has_account: state.has_account, trait: state.trait,
    sort: state.sort === 'last_seen' ? '' : state.sort, ...seenRange(state.seen), limit: PAGE,
  });

  // syncURL keeps the filters in the address without a new history entry.
  const syncURL = () => {
    const u = new URLSearchParams();
    for (const [k, v] of Object.entries(state)) if (v && !(k === 'sort' && v === 'last_seen')) u.set(k, v);
    const s = u.toString();
    history.replaceState(null, '', '/admin/people' + (s ? '?' + s : ''));
  };

  const row = (p) => {
    const t = traitsOf(p);
    const href = `/admin/people/${encodeURIComponent(p.id)}`;
    return h('tr', { class: 'clickable' },
      h('td', null, h('a', { href }, nameOf(p) || p.id)),
      h('td', null, typeof t.email === 'string' ? t.email : ''),
      h('td', null, p.user_id || ''),
      h('td', null, p.has_account === undefined ? '' : (p.has_account ? h('span', { class: 'badge ok' }, 'Account') : h('span', { class: 'muted' }, 'No'))),
      h('td', null, when(p.last_seen_at)),
      h('td', null, when(p.created_at)));
  };

  // Leaving the page aborts the request in flight (one listener for the
  // page, not one per load).
  ctx.signal.addEventListener('abort', () => { if (inflight) inflight.abort(); }, { once: true });

  const load = async (reset) => {
    if (ctx.signal.aborted) return;
    if (inflight) inflight.abort();
    const ctl = new AbortController();
    inflight = ctl;
    if (reset) { cursor = ''; shown = 0; }
    status.textContent = 'Loading…';
    more.disabled = true;
    try {
      const res = await ctx.get('/api/people', { ...params(), cursor }, { signal: ctl.signal });
      const data = res.data || [];
      if (reset) tbody.replaceChildren();
      errors.replaceChildren();
      for (const p of data) tbody.append(row(p));
      shown += data.length;
      cursor = res.next || '';
      more.hidden = !cursor;
      status.textContent = shown === 0 ? 'No people match.' : `${shown} ${shown === 1 ? 'person' : 'people'} shown${cursor ? ', more available' : ''}.`;
    } catch (err) {
      if (err.name === 'AbortError') return;
      replace(errors, errorBox(err));
      status.textContent = '';
    } finally {
      more.disabled = false;
      if (inflight === ctl) inflight = null;
    }
  };
  more.addEventListener('click', () => load(false));

  const changed = (key) => (ev) => { state[key] = ev.target.value; syncURL(); load(true); };
  const typed = debounce(() => { if (!ctx.signal.aborted) { syncURL(); load(true); } }, 250);

  const search = h('input', {
    type: 'search', id: 'people-q', name: 'q', value: state.q, 'data-search': '', autocomplete: 'off', spellcheck: 'false',
    placeholder: 'Email, name or any identifier', 'aria-describedby': 'people-q-hint', 'aria-keyshortcuts': '/',
    oninput: (ev) => { state.q = ev.target.value; typed(); },
  });
  const traitHint = h('span', { class: 'hint', id: 'people-trait-hint', 'aria-live': 'polite' }, TRAIT_HINT);
  // applyTrait takes the box's text as the filter when it is one, and
  // otherwise says inline what is missing (no request, no error box).
  // then: 'wait' (typing: load after a pause), 'now', or 'none' (the
  // caller loads).
  const applyTrait = (text, { complete, then }) => {
    const f = traitFilter(text, { complete });
    const waiting = f === null;
    trait.setAttribute('aria-invalid', waiting && !complete ? 'true' : 'false');
    traitHint.textContent = !waiting ? TRAIT_HINT
      : text.includes(':') ? 'Add the value after the colon, such as plan:pro.' : `Add a colon and a value: ${text.trim()}:value.`;
    if (waiting || f === state.trait) return;
    state.trait = f;
    if (then === 'now') { syncURL(); load(true); } else if (then === 'wait') typed();
  };
  const trait = h('input', {
    type: 'text', id: 'people-trait', name: 'trait', value: typedTrait, placeholder: 'plan:pro', autocomplete: 'off', spellcheck: 'false',
    'aria-describedby': 'people-trait-hint',
    oninput: (ev) => applyTrait(ev.target.value, { complete: true, then: 'wait' }),
    onchange: (ev) => applyTrait(ev.target.value, { complete: false, then: 'now' }),
  });
  // A shared link may hold a trait that is no filter: say so, send nothing.
  if (traitFilter(typedTrait) === null) applyTrait(typedTrait, { complete: false, then: 'none' });
  const propOptions = [['', 'Any property'], ...[...names.entries()].map(([id, n]) => [id, n])];

  replace(ctx.main,
    h('h1', null, 'People'),
    h('form', { role: 'search', class: 'filters', onsubmit: (ev) => { ev.preventDefault(); applyTrait(trait.value, { complete: false, then: 'none' }); syncURL(); load(true); } },
      h('div', { class: 'field grow' },
        h('label', { for: 'people-q' }, 'Search'), search,
        h('span', { class: 'hint', id: 'people-q-hint' }, 'An email or name prefix, or any identifier exactly. Press / to come back here.')),
      h('div', { class: 'field' }, h('label', { for: 'people-trait' }, 'Trait (key:value)'), trait, traitHint),
      select('people-seen', 'Last seen', SEEN, state.seen, changed('seen')),
      names.size ? select('people-property', 'Property', propOptions, state.property, changed('property')) : null,
      select('people-account', 'Account', [['', 'Any'], ['true', 'Has an account'], ['false', 'No account']], state.has_account, changed('has_account')),
      select('people-sort', 'Sort', SORTS, state.sort, changed('sort'))),
    errors,
    h('div', { class: 'data' },
      h('table', { id: 'people-table' },
        h('caption', { class: 'visually-hidden' }, 'People'),
        h('thead', null, h('tr', null, ['Name', 'Email', 'User id', 'Account', 'Last seen', 'First seen'].map((c) => h('th', { scope: 'col' }, c)))),
        tbody)),
    status,
    h('div', { class: 'actions' }, more));
  await load(true);
}
