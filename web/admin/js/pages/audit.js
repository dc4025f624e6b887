// audit.js: the audit log, newest first, with filters and paging by seq
// (before=<seq>). Filters and the page live in the URL, so back, reload
// and shared links keep them. Every row opens to its whole entry; the
// detail is JSON shown as text.

import { h, replace, when, debounce } from '../dom.js';
import { errorBox } from '../api.js';

const PAGE = 50;
const FILTERS = ['actor', 'person', 'action', 'outcome', 'since', 'until'];
const OUTCOMES = [['', 'Any'], ['success', 'Success'], ['failure', 'Failure'], ['denied', 'Denied']];

// localInput turns an RFC 3339 time into a datetime-local value, and back.
function toLocalInput(iso) {
  const d = new Date(iso);
  if (!iso || Number.isNaN(d.getTime())) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
function fromLocalInput(v) {
  const d = new Date(v);
  return v && !Number.isNaN(d.getTime()) ? d.toISOString() : '';
}

function pretty(raw) {
  if (raw === undefined || raw === null) return null;
  return JSON.stringify(raw, null, 2);
}

export default async function render(ctx) {
  const state = {};
  for (const k of FILTERS) state[k] = ctx.query.get(k) || '';
  let before = ctx.query.get('before') || '';
  // The staff's emails name staff actors; roles that may not list staff
  // see person ids.
  let staff = new Map();
  if (ctx.can('staff:manage')) {
    try {
      const res = await ctx.get('/api/staff', null, { signal: ctx.signal });
      staff = new Map((res.data || []).map((m) => [m.person_id, m.email]));
    } catch (err) {
      if (err.name === 'AbortError') throw err;
    }
  }

  const tbody = h('tbody');
  const errors = h('div');
  const status = h('p', { class: 'muted', role: 'status', id: 'audit-status' });
  const newer = h('button', { type: 'button', class: 'secondary', id: 'audit-newest' }, 'Newest');
  const older = h('button', { type: 'button', class: 'secondary', id: 'audit-older' }, 'Older');
  let next = '';
  let inflight = null;

  const syncURL = () => {
    const u = new URLSearchParams();
    for (const k of FILTERS) if (state[k]) u.set(k, state[k]);
    if (before) u.set('before', before);
    const s = u.toString();
    history.replaceState(null, '', '/admin/audit' + (s ? '?' + s : ''));
  };

  const actorOf = (e) => {
    if (e.actor_type === 'staff' && staff.has(e.actor_id)) return [staff.get(e.actor_id), h('span', { class: 'muted' }, ' (staff)')];
    if (!e.actor_id) return e.actor_type;
    return [h('span', { class: 'mono' }, e.actor_id), h('span', { class: 'muted' }, ` (${e.actor_type})`)];
  };

  const rowsOf = (e) => {
    const detailID = `audit-detail-${e.seq}`;
    const toggle = h('button', {
      type: 'button', class: 'ghost small expand', 'aria-expanded': 'false', 'aria-controls': detailID,
      'aria-label': `Details of ${e.action} #${e.seq}`,
      onclick: () => {
        const open = toggle.getAttribute('aria-expanded') !== 'true';
        toggle.setAttribute('aria-expanded', String(open));
        detail.hidden = !open;
      },
    }, '▸');
    const kv = [
      ['Seq', e.seq], ['Id', e.id], ['At', when(e.at)], ['Actor', actorOf(e)], ['Action', e.action], ['Outcome', e.outcome],
      ['Person', e.person_id ? h('a', { href: `/admin/people/${encodeURIComponent(e.person_id)}` }, e.person_id) : null],
      ['Property', e.property_id ? h('a', { href: `/admin/properties/${encodeURIComponent(e.property_id)}` }, e.property_id) : null],
      ['Client', e.client_id], ['Session', e.session_id], ['IP', e.ip], ['User agent', e.user_agent],
    ].filter(([, v]) => v !== undefined && v !== null && v !== '');
    const detail = h('tr', { class: 'audit-detail', id: detailID, hidden: true },
      h('td', { colspan: 6 },
        h('dl', { class: 'kv' }, kv.flatMap(([k, v]) => [h('dt', null, k), h('dd', null, v)])),
        e.detail !== undefined ? [h('h4', null, 'Detail'), h('pre', { class: 'audit-json' }, pretty(e.detail))] : null));
    const outcome = h('span', { class: `badge ${e.outcome === 'success' ? 'ok' : 'bad'}` }, e.outcome);
    const summary = h('tr', { class: 'audit-row', dataset: { seq: String(e.seq), action: e.action } },
      h('td', null, toggle),
      h('td', null, when(e.at)),
      h('td', null, actorOf(e)),
      h('td', { class: 'mono' }, e.action),
      h('td', null, outcome),
      h('td', { class: 'mono' }, e.person_id || e.property_id || ''));
    return [summary, detail];
  };

  // Leaving the page aborts the request in flight (one listener for the
  // page, not one per load).
  ctx.signal.addEventListener('abort', () => { if (inflight) inflight.abort(); }, { once: true });

  const load = async () => {
    if (ctx.signal.aborted) return;
    if (inflight) inflight.abort();
    const ctl = new AbortController();
    inflight = ctl;
    status.textContent = 'Loading…';
    older.disabled = true;
    try {
      const res = await ctx.get('/api/audit', { ...state, before, limit: PAGE }, { signal: ctl.signal });
      const data = res.data || [];
      errors.replaceChildren();
      tbody.replaceChildren(...data.flatMap(rowsOf));
      next = res.next_before ? String(res.next_before) : '';
      older.hidden = !next;
      newer.hidden = !before;
      status.textContent = data.length === 0
        ? 'No entries match.'
        : `Entries #${data[0].seq} to #${data[data.length - 1].seq}${next ? '; older entries follow' : ''}.`;
    } catch (err) {
      if (err.name === 'AbortError') return;
      replace(errors, errorBox(err));
      status.textContent = '';
    } finally {
      older.disabled = false;
      if (inflight === ctl) inflight = null;
    }
  };
  older.addEventListener('click', () => { before = next; syncURL(); load(); });
  newer.addEventListener('click', () => { before = ''; syncURL(); load(); });

  const refilter = () => { before = ''; syncURL(); load(); };
  const typed = debounce(() => { if (!ctx.signal.aborted) refilter(); }, 300);
  const text = (key, label, placeholder, attrs = {}) => h('div', { class: 'field' },
    h('label', { for: `audit-${key}` }, label),
    h('input', {
      id: `audit-${key}`, name: key, value: state[key], placeholder, autocomplete: 'off', spellcheck: 'false', ...attrs,
      oninput: (ev) => { state[key] = ev.target.value.trim(); typed(); },
    }));
  const time = (key, label) => h('div', { class: 'field' },
    h('label', { for: `audit-${key}` }, label),
    h('input', {
      type: 'datetime-local', id: `audit-${key}`, name: key, value: toLocalInput(state[key]),
      onchange: (ev) => { state[key] = fromLocalInput(ev.target.value); refilter(); },
    }));
  const actors = h('datalist', { id: 'audit-actors' }, [...staff.entries()].map(([id, email]) => h('option', { value: id }, email)));

  replace(ctx.main,
    h('h1', null, 'Audit log'),
    h('form', { role: 'search', class: 'filters', id: 'audit-filters', onsubmit: (ev) => { ev.preventDefault(); refilter(); } },
      text('actor', 'Actor id', 'person or token id', { list: 'audit-actors', 'data-search': '' }), actors,
      text('person', 'Person id', 'per_…'),
      text('action', 'Action', 'property.created or staff.*'),
      h('div', { class: 'field' },
        h('label', { for: 'audit-outcome' }, 'Outcome'),
        h('select', { id: 'audit-outcome', name: 'outcome', onchange: (ev) => { state.outcome = ev.target.value; refilter(); } },
          OUTCOMES.map(([v, l]) => h('option', { value: v, selected: v === state.outcome }, l)))),
      time('since', 'From'),
      time('until', 'Until')),
    errors,
    h('div', { class: 'data' }, h('table', { id: 'audit-table' },
      h('caption', { class: 'visually-hidden' }, 'Audit log entries, newest first'),
      h('thead', null, h('tr', null, ['', 'When', 'Actor', 'Action', 'Outcome', 'About'].map((c) => h('th', { scope: 'col' }, c)))),
      tbody)),
    status,
    h('div', { class: 'actions' }, newer, older));
  await load();
}
