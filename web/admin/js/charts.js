// charts.js draws the console's charts as SVG (no library, no canvas, so
// the CSP stays strict and colours come from console.css). Every chart is
// a <figure> with the SVG hidden from screen readers and a table with the
// same numbers beside it, which assistive technology reads instead.

import { h, s } from './dom.js';

const W = 640;
const H = 220;
const PAD = { top: 12, right: 12, bottom: 28, left: 44 };

// niceMax rounds a maximum up to 1, 2 or 5 times a power of ten.
function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function axes(max, labels, every) {
  const plotH = H - PAD.top - PAD.bottom;
  const plotW = W - PAD.left - PAD.right;
  const out = [];
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    const y = PAD.top + plotH - (plotH * i) / 4;
    out.push(s('line', { class: 'grid', x1: PAD.left, x2: W - PAD.right, y1: y, y2: y }));
    out.push(s('text', { class: 'tick', x: PAD.left - 6, y: y + 4, 'text-anchor': 'end' }, Number.isInteger(v) ? v : v.toFixed(1)));
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
  const max = niceMax(Math.max(0, ...totals));
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
  return frame(title, [...axes(max, labels, labelEvery(labels.length)), ...bars], tableOf(title, labels, series), legendOf(series));
}

// bars is stackedBars with one series.
export function bars({ title, labels, values, name = 'Count' }) {
  return stackedBars({ title, labels, series: [{ name, values }] });
}

// lines: one line per series over labels.
export function lines({ title, labels, series }) {
  const max = niceMax(Math.max(0, ...series.flatMap((sr) => sr.values)));
  const plotH = H - PAD.top - PAD.bottom;
  const step = (W - PAD.left - PAD.right) / Math.max(labels.length, 1);
  const paths = series.map((sr, j) => {
    const pts = labels.map((_, i) => `${PAD.left + step * i + step / 2},${PAD.top + plotH - (plotH * (sr.values[i] || 0)) / max}`);
    return s('polyline', { class: `line series-${j % 8}`, points: pts.join(' ') });
  });
  return frame(title, [...axes(max, labels, labelEvery(labels.length)), ...paths], tableOf(title, labels, series), legendOf(series));
}

// hbars: horizontal bars, one per row, for rankings such as top events.
// opts: {title, rows: [{label, value}]}
export function hbars({ title, rows }) {
  const max = niceMax(Math.max(0, ...rows.map((r) => r.value)));
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
