// imports.js: bulk work. A CSV import goes upload → preview and a mapping
// of columns → start → progress → report with the rejected rows; exports
// of people and events are files to download. Both run as server jobs
// (docs/design/console.md "Jobs"): leaving the page stops nothing, and the
// list of recent jobs shows their progress when the page is opened again.

import { h, replace, when } from '../dom.js';
import { ApiError, errorBox } from '../api.js';
import { confirmDialog } from '../widgets.js';

const POLL_MS = 700;
const FINISHED = new Set(['done', 'failed', 'cancelled']);

// guessTarget is a column's default mapping from its header: the usual
// names of identifiers map to them, anything else to a trait of that name.
function guessTarget(header) {
  const k = header.toLowerCase().replace(/[\s_-]+/g, '');
  if (['email', 'emailaddress', 'mail'].includes(k)) return { kind: 'identifier:email' };
  if (['userid', 'user'].includes(k)) return { kind: 'identifier:user_id' };
  if (['phone', 'phonenumber', 'mobile'].includes(k)) return { kind: 'identifier:phone' };
  return { kind: 'trait', name: header };
}

// progressBar is an accessible bar: role=progressbar with aria values,
// its width set through the CSSOM (the CSP allows no style attributes).
function progressBar(id, label) {
  const fill = h('span', { class: 'fill' });
  const el = h('div', { class: 'progress', role: 'progressbar', id, 'aria-label': label, 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': '0' }, fill);
  const set = (job) => {
    const total = Math.max(job.rows_total || 0, 0);
    const done = Math.min(job.rows_done || 0, total || Infinity);
    const finished = FINISHED.has(job.status);
    // An export does not know its total until it ends: show it as running.
    const pct = total > 0 ? Math.round((100 * done) / total) : (finished ? 100 : 0);
    el.setAttribute('aria-valuemax', String(total || 100));
    el.setAttribute('aria-valuenow', String(total > 0 ? done : pct));
    el.setAttribute('aria-valuetext', total > 0 ? `${done} of ${total} rows, ${job.status}` : `${done} rows, ${job.status}`);
    el.dataset.status = job.status;
    el.classList.toggle('indeterminate', total === 0 && !finished);
    fill.style.width = `${pct}%`;
  };
  return { el, set };
}

function jobName(j) {
  if (j.kind === 'import') return 'Import of people (CSV)';
  return `Export of ${j.target || 'people'} (${(j.format || '').toUpperCase()})`;
}

function statusBadge(j) {
  const cls = j.status === 'done' ? 'ok' : (j.status === 'failed' || j.status === 'cancelled' ? 'bad' : '');
  return h('span', { class: `badge ${cls}`, dataset: { status: j.status } }, j.status);
}

function n(v) {
  return (v || 0).toLocaleString();
}

// uploadCSV sends the file as the request body (text/csv), with the CSRF
// header api.js would add; api() itself only sends JSON.
async function uploadCSV(ctx, file, signal) {
  let resp;
  try {
    resp = await fetch('/api/imports', {
      method: 'POST', body: file, signal, credentials: 'same-origin',
      headers: { 'Content-Type': 'text/csv', Accept: 'application/json', 'X-Onramp-CSRF': ctx.me.csrf_token || '' },
    });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, { title: 'Network error', detail: 'The upload did not reach the server. Check the connection and try again.' });
  }
  const data = (resp.headers.get('Content-Type') || '').includes('json') ? await resp.json().catch(() => null) : null;
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

export default async function render(ctx) {
  const canImport = ctx.can('people:write');
  const canExport = ctx.can('people:export');
  const importCard = h('section', { class: 'card', 'aria-labelledby': 'import-title', id: 'import-card' });
  const exportCard = canExport ? h('section', { class: 'card', 'aria-labelledby': 'export-title', id: 'export-card' }) : null;
  const jobsCard = h('section', { class: 'card', 'aria-labelledby': 'jobs-title', id: 'jobs-card' });

  // watched maps job ids to functions fed each fresh copy of the job; the
  // poller runs while any watched or listed job is unfinished.
  const watched = new Map();
  let timer = null;
  let listed = [];
  const poll = async () => {
    timer = null;
    if (ctx.signal.aborted) return;
    try {
      await refreshJobs();
      for (const [id, fn] of watched) {
        const j = listed.find((x) => x.id === id) || await ctx.get(`/api/jobs/${encodeURIComponent(id)}`, null, { signal: ctx.signal });
        fn(j);
        if (FINISHED.has(j.status)) watched.delete(id);
      }
    } catch (err) {
      if (err.name === 'AbortError') return;
      console.error('jobs poll', err);
    }
    schedule();
  };
  const schedule = () => {
    if (timer || ctx.signal.aborted) return;
    const busy = watched.size > 0 || listed.some((j) => !FINISHED.has(j.status) && j.status !== 'uploaded');
    if (busy) timer = setTimeout(poll, POLL_MS);
  };
  ctx.onLeave(() => { if (timer) clearTimeout(timer); });
  const watch = (id, fn) => { watched.set(id, fn); schedule(); };

  // --- recent jobs ---

  const refreshJobs = async () => {
    const res = await ctx.get('/api/jobs', { limit: 20 }, { signal: ctx.signal });
    listed = res.data || [];
    drawJobs();
  };

  const drawJobs = () => {
    const rows = listed.map((j) => {
      const bar = progressBar(`job-progress-${j.id}`, `Progress of ${jobName(j)}`);
      bar.set(j);
      const links = [];
      if (j.kind === 'export' && j.status === 'done') links.push(h('a', { href: `/api/jobs/${encodeURIComponent(j.id)}/download`, download: '', class: 'job-download' }, 'Download'));
      if (j.kind === 'import' && j.rows_rejected > 0 && canImport) links.push(h('a', { href: `/api/jobs/${encodeURIComponent(j.id)}/rejections`, download: '' }, 'Rejected rows'));
      if (j.kind === 'import' && j.status === 'uploaded' && canImport) {
        links.push(h('button', { type: 'button', class: 'secondary small', onclick: () => showMapping(j, j.headers || [], []) }, 'Map and start'));
      }
      const mayCancel = j.kind === 'import' ? canImport : canExport;
      if (!FINISHED.has(j.status) && mayCancel) {
        links.push(h('button', {
          type: 'button', class: 'danger small',
          onclick: async () => {
            if (!await confirmDialog({ title: 'Cancel this job?', message: `${jobName(j)} stops where it is; what it already did stays done.`, confirmLabel: 'Cancel job', danger: true })) return;
            try {
              await ctx.api('POST', `/api/jobs/${encodeURIComponent(j.id)}/cancel`);
              await refreshJobs();
            } catch (err) {
              jobsCard.append(errorBox(err));
            }
          },
        }, 'Cancel'));
      }
      return h('tr', { dataset: { jobId: j.id, status: j.status } },
        h('td', null, jobName(j), h('br'), h('span', { class: 'muted mono' }, j.id)),
        h('td', null, statusBadge(j), j.error ? h('div', { class: 'hint' }, j.error) : null),
        h('td', { class: 'wide' }, bar.el),
        h('td', { class: 'num' }, n(j.rows_done), j.rows_total ? ` / ${n(j.rows_total)}` : '', j.rows_rejected ? h('div', { class: 'muted' }, `${n(j.rows_rejected)} rejected`) : null),
        h('td', null, when(j.created_at)),
        h('td', null, h('div', { class: 'job-actions' }, links)));
    });
    replace(jobsCard,
      h('h2', { id: 'jobs-title' }, 'Recent jobs'),
      listed.length
        ? h('div', { class: 'data' }, h('table', { id: 'jobs-table' },
          h('caption', { class: 'visually-hidden' }, 'Recent imports and exports, newest first'),
          h('thead', null, h('tr', null, ['Job', 'Status', 'Progress', 'Rows', 'Created', ''].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', null, rows)))
        : h('p', { class: 'muted' }, 'No imports or exports yet.'),
      h('p', { class: 'hint' }, 'Jobs run on the server: closing this page does not stop them.'));
  };

  // --- import: choose a file and upload it ---

  const showUpload = (message) => {
    const input = h('input', { type: 'file', id: 'import-file', name: 'file', accept: '.csv,text/csv', required: true });
    const errors = h('div');
    const form = h('form', { id: 'import-form', class: 'filters' },
      h('div', { class: 'field grow' }, h('label', { for: 'import-file' }, 'CSV file (first line: column names; up to 50 MB)'), input),
      h('button', { type: 'submit', id: 'import-upload' }, 'Upload'));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const file = input.files && input.files[0];
      if (!file) { replace(errors, errorBox(new Error('Choose a CSV file first.'))); return; }
      const btn = form.querySelector('#import-upload');
      btn.disabled = true;
      replace(errors, h('p', { class: 'muted', role: 'status' }, `Uploading ${file.name}…`));
      try {
        const up = await uploadCSV(ctx, file, ctx.signal);
        showMapping(up.job, up.headers || [], up.preview || [], file.name);
        refreshJobs().catch(() => {});
      } catch (err) {
        if (err.name === 'AbortError') return;
        replace(errors, errorBox(err));
        btn.disabled = false;
      }
    });
    replace(importCard,
      h('h2', { id: 'import-title' }, 'Import people from CSV'),
      message || null,
      h('p', { class: 'hint' }, 'Each row becomes a person or updates the person its identifiers name. You see the first rows and choose what each column is before anything is imported.'),
      form, errors);
  };

  // --- import: preview and mapping ---

  const showMapping = (job, headers, preview, fileName) => {
    const cells = headers.map((header, i) => {
      const guess = guessTarget(header);
      const sel = h('select', { id: `map-${i}`, class: 'map-kind', 'aria-label': `Column ${header}: import as` },
        h('option', { value: 'identifier:email', selected: guess.kind === 'identifier:email' }, 'Email (identifier)'),
        h('option', { value: 'identifier:user_id', selected: guess.kind === 'identifier:user_id' }, 'User id (identifier)'),
        h('option', { value: 'identifier:phone', selected: guess.kind === 'identifier:phone' }, 'Phone (identifier)'),
        h('option', { value: 'external' }, 'External id of type…'),
        h('option', { value: 'trait', selected: guess.kind === 'trait' }, 'Trait named…'),
        h('option', { value: 'ignore' }, 'Ignore'));
      const name = h('input', { id: `map-name-${i}`, class: 'map-name', value: guess.name || '', autocomplete: 'off', spellcheck: 'false', 'aria-label': `Column ${header}: trait name or external id type` });
      const sync = () => {
        const k = sel.value;
        name.hidden = k !== 'trait' && k !== 'external';
        if (k === 'external' && name.value === header) name.value = header.toLowerCase().replace(/[^a-z0-9_]+/g, '_');
        if (k === 'trait' && !name.value) name.value = header;
        name.placeholder = k === 'external' ? 'type, e.g. stripe' : 'trait name';
      };
      sel.addEventListener('change', sync);
      sync();
      return { header, sel, name, th: h('th', { scope: 'col' }, sel, name) };
    });
    const mapping = () => {
      const m = {};
      for (const c of cells) {
        const k = c.sel.value;
        if (k === 'trait') m[c.header] = `trait:${c.name.value.trim() || c.header}`;
        else if (k === 'external') m[c.header] = `identifier:external:${c.name.value.trim()}`;
        else m[c.header] = k;
      }
      return m;
    };
    const errors = h('div', { id: 'mapping-errors' });
    const start = h('button', { type: 'button', id: 'import-start' }, `Import ${n(job.rows_total)} rows`);
    start.addEventListener('click', async () => {
      start.disabled = true;
      errors.replaceChildren();
      try {
        const j = await ctx.api('POST', `/api/imports/${encodeURIComponent(job.id)}/start`, { body: { mapping: mapping() } });
        showProgress(j);
      } catch (err) {
        if (err.name === 'AbortError') return;
        replace(errors, errorBox(err));
        start.disabled = false;
      }
    });
    replace(importCard,
      h('h2', { id: 'import-title' }, 'Map the columns'),
      h('p', null, fileName ? [h('strong', null, fileName), ': '] : null,
        `${n(job.rows_total)} rows, ${headers.length} columns.`,
        preview.length ? ` The first ${preview.length} rows are below.` : ''),
      h('p', { class: 'hint' }, 'Choose what each column is. A row needs at least one identifier; rows that cannot be imported are listed in a report you can download.'),
      h('div', { class: 'data' }, h('table', { id: 'import-preview', class: 'preview' },
        h('caption', { class: 'visually-hidden' }, 'The first rows of the file, with the mapping of each column'),
        h('thead', null,
          h('tr', null, headers.map((hd) => h('th', { scope: 'col', class: 'mono' }, hd))),
          h('tr', { class: 'mapping' }, cells.map((c) => c.th))),
        h('tbody', null, preview.map((row) => h('tr', null, headers.map((_, i) => h('td', null, row[i] ?? ''))))))),
      errors,
      h('div', { class: 'actions' }, start,
        h('button', { type: 'button', class: 'ghost', onclick: () => showUpload() }, 'Choose another file')));
    importCard.querySelector('select')?.focus();
  };

  // --- import: progress and report ---

  const showProgress = (job) => {
    const bar = progressBar('import-progress', 'Import progress');
    const counts = h('p', { id: 'import-counts', role: 'status' });
    const report = h('div', { id: 'import-report' });
    const update = (j) => {
      bar.set(j);
      counts.textContent = `${n(j.rows_done)} of ${n(j.rows_total)} rows done, ${n(j.rows_rejected)} rejected (${j.status}).`;
      if (!FINISHED.has(j.status)) return;
      replace(report,
        h('h3', null, j.status === 'done' ? 'Import finished' : `Import ${j.status}`),
        h('dl', { class: 'kv', id: 'import-summary' },
          h('dt', null, 'Rows in the file'), h('dd', { dataset: { count: 'total' } }, n(j.rows_total)),
          h('dt', null, 'Imported'), h('dd', { dataset: { count: 'imported' } }, n(Math.max((j.rows_done || 0) - (j.rows_rejected || 0), 0))),
          h('dt', null, 'Rejected'), h('dd', { id: 'import-rejected', dataset: { count: 'rejected' } }, n(j.rows_rejected)),
          h('dt', null, 'Finished'), h('dd', null, when(j.finished_at))),
        j.error ? errorBox(new Error(j.error)) : null,
        h('div', { class: 'actions' },
          j.rows_rejected > 0 ? h('a', { href: `/api/jobs/${encodeURIComponent(j.id)}/rejections`, download: '', id: 'import-rejections', class: 'button secondary' }, 'Download the rejected rows (CSV)') : null,
          h('button', { type: 'button', class: 'ghost', onclick: () => showUpload() }, 'Import another file')));
    };
    replace(importCard,
      h('h2', { id: 'import-title' }, 'Importing'),
      bar.el, counts, report,
      h('p', { class: 'hint' }, 'You can leave this page: the import goes on, and its progress shows under Recent jobs.'));
    update(job);
    if (!FINISHED.has(job.status)) watch(job.id, update);
  };

  // --- exports ---

  const drawExports = () => {
    const out = h('div', { id: 'export-result' });
    const start = (kind, format) => async (ev) => {
      ev.target.disabled = true;
      try {
        const j = await ctx.api('POST', '/api/exports', { body: { kind, format } });
        const bar = progressBar(`export-progress-${j.id}`, `Progress of ${jobName(j)}`);
        const line = h('p', { class: 'muted', role: 'status' });
        const link = h('span');
        const box = h('div', { class: 'export-run', dataset: { jobId: j.id } }, h('strong', null, jobName(j)), bar.el, line, link);
        out.prepend(box);
        const update = (x) => {
          bar.set(x);
          line.textContent = `${n(x.rows_done)} rows, ${x.status}.`;
          if (x.status === 'done') replace(link, h('a', { href: `/api/jobs/${encodeURIComponent(x.id)}/download`, download: '', class: 'button secondary export-download' }, 'Download'));
          else if (x.error) replace(link, errorBox(new Error(x.error)));
        };
        update(j);
        if (!FINISHED.has(j.status)) watch(j.id, update);
        refreshJobs().catch(() => {});
      } catch (err) {
        out.prepend(errorBox(err));
      } finally {
        ev.target.disabled = false;
      }
    };
    const btn = (kind, format, label) => h('button', { type: 'button', class: 'secondary', id: `export-${kind}-${format}`, onclick: start(kind, format) }, label);
    replace(exportCard,
      h('h2', { id: 'export-title' }, 'Export'),
      h('p', { class: 'hint' }, 'A file of every person (with their identifiers) or every event. NDJSON keeps every value as it is; CSV opens in a spreadsheet. Exports are written to the audit log.'),
      h('div', { class: 'actions' },
        btn('people', 'ndjson', 'People as NDJSON'), btn('people', 'csv', 'People as CSV'),
        btn('events', 'ndjson', 'Events as NDJSON'), btn('events', 'csv', 'Events as CSV')),
      out);
  };

  replace(ctx.main,
    h('h1', null, 'Imports and exports'),
    h('div', { class: exportCard ? 'grid2' : 'stack' }, importCard, exportCard),
    jobsCard);
  showUpload();
  if (exportCard) drawExports();
  try {
    await refreshJobs();
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    replace(jobsCard, h('h2', { id: 'jobs-title' }, 'Recent jobs'), errorBox(err));
  }
  schedule();
}
