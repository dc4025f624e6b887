// app.js is the console shell: who is signed in, the route table, the
// history-API router, the navigation (only what the role may use), the
// theme toggle and the keyboard shortcuts. Screens are modules under
// pages/ (see "Adding a screen" in docs/design/console.md).

import { h, replace } from './dom.js';
import { api, get, setCSRF, showError, errorBox } from './api.js';

const page = (name) => () => import(`./pages/${name}.js`);

// routes is the console's route table. The server checks the same
// permissions (consolePages in httpapi/console.go) before it serves a
// page; here they only decide what the navigation shows.
// nav: the label in the navigation bar (entries without one are reached by links).
export const routes = [
  { path: '/admin', title: 'Home', nav: 'Home', perm: 'people:read', load: page('home') },
  { path: '/admin/people', title: 'People', nav: 'People', perm: 'people:read', load: page('people') },
  { path: '/admin/people/:id', title: 'Person', perm: 'people:read', load: page('person') },
  { path: '/admin/properties', title: 'Properties', nav: 'Properties', perm: 'properties:read', load: page('properties') },
  { path: '/admin/properties/new', title: 'New property', perm: 'properties:manage', load: page('property') },
  { path: '/admin/properties/:id', title: 'Property', perm: 'properties:read', load: page('property') },
  { path: '/admin/staff', title: 'Staff', nav: 'Staff', perm: 'staff:manage', load: page('staff') },
  { path: '/admin/audit', title: 'Audit log', nav: 'Audit', perm: 'audit:read', load: page('audit') },
  { path: '/admin/imports', title: 'Imports and exports', nav: 'Imports', perm: 'people:write', load: page('imports') },
];

// match finds the route of a path and its parameters.
function match(pathname) {
  const got = pathname.replace(/\/+$/, '').split('/');
  for (const r of routes) {
    const want = r.path.split('/');
    if (want.length !== got.length) continue;
    const params = {};
    let ok = true;
    for (let i = 0; i < want.length; i++) {
      if (want[i].startsWith(':')) {
        if (!got[i]) { ok = false; break; }
        params[want[i].slice(1)] = decodeURIComponent(got[i]);
      } else if (want[i] !== got[i]) { ok = false; break; }
    }
    if (ok) return { route: r, params };
  }
  return null;
}

// me is the signed-in staff member: role, permissions, account, csrf token.
let me = null;

function can(perm) {
  return !!me && me.permissions.includes(perm);
}

let current = null; // { controller, leave: [] } of the page on screen

// navigate shows url; replace swaps the history entry instead of adding one.
export function navigate(url, { replace: swap = false } = {}) {
  if (swap) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  render();
}

async function render() {
  const main = document.getElementById('main');
  if (current) {
    current.controller.abort();
    for (const fn of current.leave) {
      try { fn(); } catch (err) { console.error(err); }
    }
  }
  const ctl = new AbortController();
  const leave = [];
  current = { controller: ctl, leave };
  const found = match(location.pathname);
  drawNav(found && found.route);
  if (!found) {
    document.title = 'Not found · Onramp';
    replace(main, h('h1', null, 'No such page'), h('p', null, 'The console has no page here.'));
    return;
  }
  const { route, params } = found;
  document.title = `${route.title} · Onramp`;
  if (!can(route.perm)) {
    replace(main, h('h1', null, route.title), h('p', null, `Your role (${me.role}) may not open this page.`));
    return;
  }
  const ctx = {
    main, params, route,
    query: new URLSearchParams(location.search),
    me, can, api, get, navigate,
    signal: ctl.signal,
    onLeave: (fn) => leave.push(fn),
    setTitle: (t) => { document.title = `${t} · Onramp`; },
  };
  try {
    const mod = await route.load();
    if (ctl.signal.aborted) return;
    replace(main, h('p', { class: 'loading' }, 'Loading…'));
    await mod.default(ctx);
  } catch (err) {
    if (err.name === 'AbortError' || ctl.signal.aborted) return;
    console.error(err);
    replace(main, h('h1', null, route.title), errorBox(err));
  }
}

function drawNav(active) {
  const nav = document.getElementById('nav');
  const items = routes.filter((r) => r.nav && can(r.perm)).map((r) => {
    const on = active && (active === r || (r.path !== '/admin' && active.path.startsWith(r.path + '/')));
    return h('li', null, h('a', { href: r.path, 'aria-current': on ? 'page' : null }, r.nav));
  });
  replace(nav, h('ul', null, items));
}

// Links inside the console navigate without a reload.
function onClick(ev) {
  if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  const a = ev.target.closest('a[href]');
  if (!a || a.target || a.hasAttribute('download')) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || !(url.pathname === '/admin' || url.pathname.startsWith('/admin/'))) return;
  if (url.pathname.startsWith('/admin/assets/')) return;
  ev.preventDefault();
  if (url.pathname === location.pathname && url.search === location.search) return;
  navigate(url.pathname + url.search + url.hash);
  document.getElementById('main').focus({ preventScroll: true });
}

// --- theme ---

const THEME_KEY = 'onramp.console.theme';

function applyTheme(theme) {
  const root = document.documentElement;
  if (theme === 'dark' || theme === 'light') root.dataset.theme = theme;
  else delete root.dataset.theme;
  const dark = theme ? theme === 'dark' : matchMedia('(prefers-color-scheme: dark)').matches;
  const btn = document.getElementById('theme-toggle');
  btn.setAttribute('aria-pressed', String(dark));
  btn.textContent = dark ? 'Light theme' : 'Dark theme';
}

function toggleTheme() {
  const dark = document.getElementById('theme-toggle').getAttribute('aria-pressed') === 'true';
  const next = dark ? 'light' : 'dark';
  try { localStorage.setItem(THEME_KEY, next); } catch { /* storage off: this page only */ }
  applyTheme(next);
}

function storedTheme() {
  try { return localStorage.getItem(THEME_KEY); } catch { return null; }
}

// --- keyboard shortcuts ---

function typing(el) {
  return el && (el.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(el.tagName));
}

let pendingG = 0;

function onKey(ev) {
  if (ev.ctrlKey || ev.metaKey || ev.altKey || typing(ev.target)) return;
  const dialog = document.getElementById('shortcuts');
  if (dialog.open) return;
  if (pendingG && Date.now() - pendingG < 1500) {
    pendingG = 0;
    if (ev.key === 'p') { ev.preventDefault(); navigate('/admin/people'); return; }
    if (ev.key === 'h') { ev.preventDefault(); navigate('/admin'); return; }
  }
  pendingG = 0;
  if (ev.key === 'g') { pendingG = Date.now(); return; }
  if (ev.key === '?') { ev.preventDefault(); dialog.showModal(); return; }
  if (ev.key === '/') {
    ev.preventDefault();
    focusSearch();
  }
}

// focusSearch focuses the page's search box ([data-search]), going to the
// people list when the page has none.
function focusSearch() {
  const box = document.querySelector('[data-search]');
  if (box) { box.focus(); box.select?.(); return; }
  navigate('/admin/people');
  const wait = setInterval(() => {
    const b = document.querySelector('[data-search]');
    if (b) { clearInterval(wait); b.focus(); }
  }, 30);
  setTimeout(() => clearInterval(wait), 3000);
}

// --- start ---

async function start() {
  applyTheme(storedTheme());
  document.getElementById('theme-toggle').addEventListener('click', toggleTheme);
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => applyTheme(storedTheme()));
  document.getElementById('shortcuts-open').addEventListener('click', () => document.getElementById('shortcuts').showModal());
  document.addEventListener('click', onClick);
  document.addEventListener('keydown', onKey);
  window.addEventListener('popstate', render);
  try {
    const who = await get('/api/auth/session');
    me = { ...who, permissions: who.permissions || [] };
  } catch (err) {
    replace(document.getElementById('main'), h('h1', null, 'Console unavailable'), errorBox(err));
    return;
  }
  setCSRF(me.csrf_token);
  document.querySelector('#sign-out input[name=csrf]').value = me.csrf_token || '';
  const who = document.getElementById('whoami');
  replace(who, (me.account && me.account.primary_email) || '', ' ', h('span', { class: 'role' }, me.role));
  await render();
}

window.addEventListener('unhandledrejection', (ev) => showError(ev.reason));
start();
