// home.js: activity at a glance (GET /api/stats/overview) and the live
// stream of accepted and rejected events (GET /api/live), like Segment's
// debugger.

import { h, replace } from '../dom.js';
import { errorBox } from '../api.js';
import { stackedBars, lines, hbars } from '../charts.js';
import { propertyNames, eventRow, rejectionRow, openLive } from '../events.js';

const HOURS = 48;
const DAYS = 30;
const KEEP = 200; // rows the live list keeps

function hourKey(d) {
  return d.toISOString().slice(0, 13); // 2026-11-25T10
}

function dayKey(d) {
  return d.toISOString().slice(0, 10);
}

// lastHours lists the hour keys of the window, oldest first.
function lastHours(n) {
  const out = [];
  const now = new Date();
  now.setUTCMinutes(0, 0, 0);
  for (let i = n - 1; i >= 0; i--) out.push(hourKey(new Date(now.getTime() - i * 3600e3)));
  return out;
}

function lastDays(n) {
  const out = [];
  const now = new Date();
  for (let i = n - 1; i >= 0; i--) out.push(dayKey(new Date(now.getTime() - i * 86400e3)));
  return out;
}

function charts(stats, names) {
  const hours = lastHours(HOURS);
  const byProp = new Map();
  for (const row of stats.events_per_hour || []) {
    const k = hourKey(new Date(row.hour));
    const i = hours.indexOf(k);
    if (i < 0) continue;
    if (!byProp.has(row.property_id)) byProp.set(row.property_id, new Array(hours.length).fill(0));
    byProp.get(row.property_id)[i] += row.count;
  }
  const hourLabels = hours.map((k) => `${k.slice(11, 13)}:00`);
  const series = [...byProp.entries()].map(([id, values]) => ({ name: names.get(id) || id, values }));
  if (series.length === 0) series.push({ name: 'Events', values: new Array(hours.length).fill(0) });

  const days = lastDays(DAYS);
  const perDay = (rows) => {
    const v = new Array(days.length).fill(0);
    for (const r of rows || []) {
      const i = days.indexOf(String(r.day).slice(0, 10));
      if (i >= 0) v[i] += r.count;
    }
    return v;
  };
  const dayLabels = days.map((d) => d.slice(5));
  return [
    h('section', { class: 'card' }, stackedBars({ title: `Events per hour by property (last ${HOURS} h, UTC)`, labels: hourLabels, series })),
    h('div', { class: 'grid2' },
      h('section', { class: 'card' }, lines({
        title: `New people and sign-ups per day (last ${DAYS} days)`,
        labels: dayLabels,
        series: [{ name: 'New people', values: perDay(stats.people_per_day) }, { name: 'Sign-ups', values: perDay(stats.signups_per_day) }],
      })),
      h('section', { class: 'card' }, (stats.top_events || []).length
        ? hbars({ title: 'Top events', rows: stats.top_events.map((t) => ({ label: t.event, value: t.count })) })
        : [h('h2', null, 'Top events'), h('p', { class: 'muted' }, 'No events yet.')])),
  ];
}

export default async function render(ctx) {
  const chartsArea = h('div', { class: 'stack' }, h('p', { class: 'loading' }, 'Loading charts…'));
  const state = h('span', { class: 'live-state', role: 'status' }, 'Connecting…');
  const list = h('ul', { class: 'events', id: 'live-list', 'aria-label': 'Incoming events, newest first' });
  let paused = false;
  const pauseBtn = h('button', { type: 'button', class: 'ghost', 'aria-pressed': 'false', onclick: () => {
    paused = !paused;
    pauseBtn.setAttribute('aria-pressed', String(paused));
    pauseBtn.textContent = paused ? 'Resume' : 'Pause';
  } }, 'Pause');
  const clearBtn = h('button', { type: 'button', class: 'ghost', onclick: () => list.replaceChildren() }, 'Clear');
  const empty = h('p', { class: 'muted', id: 'live-empty' }, 'Waiting for events… send one with the SDK or POST /v1/track.');

  replace(ctx.main,
    h('h1', null, 'Activity'),
    chartsArea,
    h('section', { class: 'card live' },
      h('div', { class: 'actions' }, h('h2', null, 'Live events'), state, pauseBtn, clearBtn),
      h('p', { class: 'hint' }, 'Accepted and rejected events as they arrive (rejections show the reason). Open a row for its properties and context.'),
      empty, list));

  const names = await propertyNames(ctx.can);
  const add = (row) => {
    if (paused) return;
    empty.remove();
    list.prepend(row);
    while (list.children.length > KEEP) list.lastElementChild.remove();
  };
  const close = openLive({}, {
    onEvent: (e) => add(eventRow(e, { names, person: true, fresh: true })),
    onRejection: (r) => add(rejectionRow(r, { names, fresh: true })),
    state: (t, on) => { state.textContent = t; state.classList.toggle('on', on); },
  });
  ctx.onLeave(close);

  try {
    const stats = await ctx.get('/api/stats/overview', { hours: HOURS, days: DAYS, top: 10 }, { signal: ctx.signal });
    replace(chartsArea, charts(stats, names));
  } catch (err) {
    if (err.name === 'AbortError') return;
    replace(chartsArea, errorBox(err));
  }
}
