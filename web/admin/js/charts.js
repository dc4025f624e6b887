// charts.js draws the console's charts as SVG (no library, no canvas, so
// the CSP stays strict and colours come from console.css). Every chart is
// a <figure> with the SVG hidden from screen readers and a table with the
// same numbers beside it, which assistive technology reads instead.

import { h, s } from './dom.js';

const W = 640;
const H = 220;
const PAD = { top: 12, right: 12, bottom: 28, left: 44 };

// niceStep rounds a tick interval up to 1, 2 or 5 times a power of ten.
function niceStep(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return Number((m * p).toPrecision(12));
  return Number((10 * p).toPrecision(12));
}

// scaleOf picks the value axis for values: at most five intervals of a
// round step from 0 to max. Counts (all values whole numbers) get a step
// of at least 1, so no tick reads 1.3 events.
export function scaleOf(values) {
  const top = Math.max(0, ...values);
  let step = niceStep(top / 5);
  if (values.every(Number.isInteger)) step = Math.max(1, step);
  const n = Math.max(1, Math.ceil(top / step - 1e-9));
  return { max: step * n, step, n };
}

// tickLabel shows v with as many decimals as the step has.
function tickLabel(v, step) {
  const decimals = Math.max(0, -Math.floor(Math.log10(step)));
  return decimals ? v.toFixed(decimals) : String(Math.round(v));
}

function axes(sc, labels, every) {
  const plotH = H - PAD.top - PAD.bottom;
  const plotW = W - PAD.left - PAD.right;
  const out = [];
  for (let i = 0; i <= sc.n; i++) {
    const y = PAD.top + plotH - (plotH * i) / sc.n;
    out.push(s('line', { class: 'grid', x1: PAD.left, x2: W - PAD.right, y1: y, y2: y }));
    out.push(s('text', { class: 'tick value', x: PAD.left - 6, y: y + 4, 'text-anchor': 'end' }, tickLabel(sc.step * i, sc.step)));
  }
  const step = plotW / Math.max(labels.length, 1);
  labels.forEach((l, i) => {
    if (i % every !== 0) return;
    out.push(s('text', { class: 'tick', x: PAD.left + step * i + step / 2, y: H - 8, 'text-anchor': 'middle' }, l));
  });
  return out;
}

function frame(title, svgChildren, table, legend) {
  return h('figure', { class: 'chart' },
    h('figcaption', null, title),
    legend,
    s('svg', { viewBox: `0 0 ${W} ${H}`, 'aria-hidden': 'true', focusable: 'false', preserveAspectRatio: 'none' }, svgChildren),
    h('details', { class: 'chart-table' }, h('summary', null, 'Show as table'), table));
}

function legendOf(series) {
  if (series.length < 2) return null;
  return h('ul', { class: 'legend' }, series.map((sr, i) =>
    h('li', null, h('span', { class: `swatch series-${i % 8}`, 'aria-hidden': 'true' }), sr.name)));
}

function tableOf(title, labels, series) {
  return h('table', null,
    h('caption', { class: 'visually-hidden' }, title),
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, ''), series.map((sr) => h('th', { scope: 'col' }, sr.name)))),
    h('tbody', null, labels.map((l, i) =>
      h('tr', null, h('th', { scope: 'row' }, l), series.map((sr) => h('td', null, sr.values[i] || 0))))));
}

function labelEvery(n) {
  return Math.max(1, Math.ceil(n / 8));
}

// stackedBars: labels along x, one stacked segment per series.
// opts: {title, labels: [string], series: [{name, values: [number]}]}
export function stackedBars({ title, labels, series }) {
  const totals = labels.map((_, i) => series.reduce((a, sr) => a + (sr.values[i] || 0), 0));
  const sc = scaleOf(totals);
  const max = sc.max;
  const plotH = H - PAD.top - PAD.bottom;
  const step = (W - PAD.left - PAD.right) / Math.max(labels.length, 1);
  const bars = [];
  labels.forEach((l, i) => {
    let y = PAD.top + plotH;
    series.forEach((sr, j) => {
      const v = sr.values[i] || 0;
      if (!v) return;
      const bh = (plotH * v) / max;
      y -= bh;
      bars.push(s('rect', { class: `series-${j % 8}`, x: PAD.left + step * i + step * 0.1, y, width: step * 0.8, height: bh },
        s('title', null, `${l} · ${sr.name}: ${v}`)));
    });
  });
  return frame(title, [...axes(sc, labels, labelEvery(labels.length)), ...bars], tableOf(title, labels, series), legendOf(series));
}

// bars is stackedBars with one series.
export function bars({ title, labels, values, name = 'Count' }) {
  return stackedBars({ title, labels, series: [{ name, values }] });
}

// lines: one line per series over labels.
export function lines({ title, labels, series }) {
  const sc = scaleOf(series.flatMap((sr) => sr.values));
  const max = sc.max;
  const plotH = H - PAD.top - PAD.bottom;
  const step = (W - PAD.left - PAD.right) / Math.max(labels.length, 1);
  const paths = series.map((sr, j) => {
    const pts = labels.map((_, i) => `${PAD.left + step * i + step / 2},${PAD.top + plotH - (plotH * (sr.values[i] || 0)) / max}`);
    return s('polyline', { class: `line series-${j % 8}`, points: pts.join(' ') });
  });
  return frame(title, [...axes(sc, labels, labelEvery(labels.length)), ...paths], tableOf(title, labels, series), legendOf(series));
}

// hbars: horizontal bars, one per row, for rankings such as top events.
// opts: {title, rows: [{label, value}]}
export function hbars({ title, rows }) {
  const max = scaleOf(rows.map((r) => r.value)).max;
  return h('figure', { class: 'chart hbars' },
    h('figcaption', null, title),
    h('table', null,
      h('caption', { class: 'visually-hidden' }, title),
      h('thead', { class: 'visually-hidden' }, h('tr', null, h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Count'))),
      h('tbody', null, rows.map((r) => h('tr', null,
        h('th', { scope: 'row' }, r.label),
        h('td', null,
          s('svg', { viewBox: '0 0 100 10', 'aria-hidden': 'true', focusable: 'false', preserveAspectRatio: 'none', class: 'hbar' },
            s('rect', { class: 'series-0', x: 0, y: 0, height: 10, width: (100 * r.value) / max })),
          h('span', { class: 'num' }, r.value)))))));
}
