// api.js is the console's only way to the server: the JSON API with the
// staff session cookie, the CSRF header on unsafe methods, and RFC 9457
// problem documents turned into errors people can read.

import { h } from './dom.js';

let csrfToken = '';

// setCSRF keeps the token of GET /api/auth/session for unsafe calls.
export function setCSRF(token) {
  csrfToken = token || '';
}

// ApiError is a failed call: status, and the problem document if any.
export class ApiError extends Error {
  constructor(status, problem) {
    const p = problem || {};
    super(p.detail || p.title || `The server answered ${status}.`);
    this.status = status;
    this.problem = p;
  }
}

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

// api calls method path; body is sent as JSON; query (an object or
// URLSearchParams) is added to the URL, skipping empty values. It returns
// the decoded JSON (null for 204) or throws ApiError.
export async function api(method, path, { body, query, signal } = {}) {
  const url = new URL(path, location.origin);
  if (query) {
    const entries = query instanceof URLSearchParams ? query.entries() : Object.entries(query);
    for (const [k, v] of entries) {
      if (v !== undefined && v !== null && v !== '') url.searchParams.append(k, v);
    }
  }
  const headers = { Accept: 'application/json' };
  if (!SAFE.has(method)) headers['X-Onramp-CSRF'] = csrfToken;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let resp;
  try {
    resp = await fetch(url, {
      method, headers, signal, credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, { title: 'Network error', detail: 'The server could not be reached. Check the connection and try again.' });
  }
  if (resp.status === 401) {
    // The session ended: sign in again and come back here.
    location.assign('/auth/sign-in?return_to=' + encodeURIComponent(location.pathname + location.search));
    throw new ApiError(401, { title: 'Signed out', detail: 'Your session ended; sign in again.' });
  }
  if (resp.status === 204) return null;
  const type = resp.headers.get('Content-Type') || '';
  const data = type.includes('json') ? await resp.json().catch(() => null) : null;
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

export const get = (path, query, opts = {}) => api('GET', path, { ...opts, query });

// errorBox is an inline, announced error message for a part of a page.
export function errorBox(err) {
  const p = err instanceof ApiError ? err.problem : {};
  return h('div', { class: 'error-box', role: 'alert' },
    h('strong', null, p.title || 'Error'), ' ',
    err.message,
    p.code ? h('span', { class: 'muted' }, ` (${p.code})`) : null);
}

// showError puts err in the page-wide error area until dismissed.
export function showError(err) {
  if (err && err.name === 'AbortError') return;
  const area = document.getElementById('errors');
  if (!area) return;
  const box = errorBox(err);
  box.append(' ', h('button', { type: 'button', class: 'ghost', onclick: () => box.remove() }, 'Dismiss'));
  area.append(box);
}
