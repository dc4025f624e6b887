// events.js renders events and rejections as expandable rows (the person
// timeline and the home page's live stream share them) and opens the
// live stream. Every value is shown as text: properties and context are
// pretty-printed JSON inside <pre>, URLs in them are never links.

import { h, when, text } from './dom.js';
import { get } from './api.js';

let propsPromise = null;

// propertyNames maps property ids to names, for roles that may read
// properties (an empty map for the others: ids are shown instead).
export function propertyNames(can) {
  if (!can('properties:read')) return Promise.resolve(new Map());
  if (!propsPromise) {
    propsPromise = get('/api/properties')
      .then((r) => new Map((r.data || []).map((p) => [p.id, p.name])))
      .catch(() => { propsPromise = null; return new Map(); });
  }
  return propsPromise;
}

// eventLabel is what an event is called in a list.
export function eventLabel(e) {
  switch (e.type) {
    case 'track': return e.event || '(unnamed event)';
    case 'page': return e.name ? `Viewed ${e.name}` : 'Page view';
    case 'screen': return e.name ? `Screen ${e.name}` : 'Screen view';
    case 'identify': return 'Identified';
    case 'group': return `Group ${e.group_id || ''}`.trim();
    case 'alias': return `Alias of ${e.previous_id || '?'}`;
    default: return e.event || e.name || e.type;
  }
}

function block(title, value) {
  if (value === undefined || value === null) return null;
  if (typeof value === 'object' && Object.keys(value).length === 0) return null;
  return [h('h4', null, title), h('pre', null, JSON.stringify(value, null, 2))];
}

// eventRow is one event as a <li> with a <details>: the summary line and,
// when opened, its ids, properties, traits and context.
export function eventRow(e, { names = new Map(), person = false, fresh = false } = {}) {
  const ids = {
    message_id: e.message_id, seq: e.seq, person_id: e.person_id, user_id: e.user_id,
    anonymous_id: e.anonymous_id, group_id: e.group_id, previous_id: e.previous_id,
    timestamp: e.timestamp, received_at: e.received_at, sent_at: e.sent_at, ip: e.ip,
  };
  for (const k of Object.keys(ids)) if (ids[k] === undefined || ids[k] === '') delete ids[k];
  const li = h('li', { class: fresh ? 'event new' : 'event', dataset: { seq: String(e.seq ?? ''), messageId: e.message_id || '' } },
    h('details', null,
      h('summary', null,
        when(e.timestamp || e.received_at),
        h('span', { class: 'type' }, e.type),
        h('span', { class: 'what' }, eventLabel(e)),
        h('span', { class: 'muted' }, person ? h('a', { href: `/admin/people/${encodeURIComponent(e.person_id)}` }, e.person_id) : (names.get(e.property_id) || e.property_id))),
      h('div', { class: 'body' },
        block('Properties', e.properties),
        block('Traits', e.traits),
        block('Context', e.context),
        block('Identifiers and times', ids),
        person ? h('p', { class: 'muted' }, 'Property: ', names.get(e.property_id) || e.property_id) : null)));
  return li;
}

// rejectionRow is one refused event with the reason.
export function rejectionRow(r, { names = new Map(), fresh = false } = {}) {
  let payload = r.payload;
  if (payload === undefined && r.payload_text) payload = r.payload_text;
  return h('li', { class: fresh ? 'rejected new' : 'rejected' },
    h('details', null,
      h('summary', null,
        when(r.received_at),
        h('span', { class: 'type' }, 'rejected'),
        h('span', { class: 'what' }, `${r.code}: ${r.reason}`),
        h('span', { class: 'muted' }, names.get(r.property_id) || r.property_id || '')),
      h('div', { class: 'body' },
        h('p', null, h('strong', null, 'Reason: '), text(r.reason)),
        r.index >= 0 ? h('p', { class: 'muted' }, `Event ${r.index} of its batch`, r.type ? ` (${r.type})` : '') : h('p', { class: 'muted' }, 'The whole request was refused.'),
        block('Payload', payload))));
}

// openLive subscribes to GET /api/live with query; onEvent and
// onRejection get the decoded data; state(text, on) reports the
// connection. It returns a close function. EventSource reconnects by
// itself after a drop.
export function openLive(query, { onEvent, onRejection, state }) {
  const url = new URL('/api/live', location.origin);
  for (const [k, v] of Object.entries(query || {})) if (v) url.searchParams.set(k, v);
  const es = new EventSource(url);
  es.addEventListener('open', () => state && state('Live', true));
  es.addEventListener('error', () => state && state(es.readyState === EventSource.CLOSED ? 'Live updates unavailable' : 'Reconnecting…', false));
  const parse = (fn) => (ev) => {
    if (!fn) return;
    try { fn(JSON.parse(ev.data)); } catch (err) { console.error('live message', err); }
  };
  es.addEventListener('event', parse(onEvent));
  es.addEventListener('rejection', parse(onRejection));
  return () => es.close();
}
