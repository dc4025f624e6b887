// dom.js builds the console's DOM. Data only ever becomes text nodes and
// attribute values: nothing here parses markup, so a trait holding
// "<img onerror=…>" shows as those characters and never runs.

const SVG_NS = 'http://www.w3.org/2000/svg';

// Attributes that navigate or load: only same-origin paths and http(s) or
// mailto URLs may go in them, so a "javascript:" value from data is dropped.
const URL_ATTRS = new Set(['href', 'src', 'action', 'formaction', 'xlink:href', 'poster', 'cite']);

// safeURL keeps a URL that cannot run script, else returns "#".
export function safeURL(value) {
  const v = String(value).trim();
  if (v.startsWith('/') && !v.startsWith('//')) return v;
  if (v.startsWith('#') || v.startsWith('?')) return v;
  try {
    const u = new URL(v, location.origin);
    if (u.protocol === 'http:' || u.protocol === 'https:' || u.protocol === 'mailto:') return u.href;
  } catch { /* not a URL */ }
  return '#';
}

function setAttrs(el, attrs) {
  if (!attrs) return;
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'innerHTML' || key === 'outerHTML' || key === 'srcdoc') {
      throw new Error(`h(): ${key} is not allowed; pass children instead`);
    }
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (key === 'value' && 'value' in el) {
      el.value = value;
    } else if (key === 'checked' || key === 'selected') {
      el[key] = Boolean(value);
    } else if (key.startsWith('on')) {
      throw new Error(`h(): ${key} must be a function`);
    } else {
      const v = value === true ? '' : String(value);
      el.setAttribute(key, URL_ATTRS.has(key.toLowerCase()) ? safeURL(v) : v);
    }
  }
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false || c === true) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// h makes an HTML element: h('a', {href: '/admin', class: 'x'}, 'text', child).
// Children are nodes, arrays of them, or values shown as text.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

// s makes an SVG element, with the same rules as h.
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

// replace empties el and appends children.
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// text is a value as people read it: strings as they are, the rest as JSON.
export function text(v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

// when is an ISO time as a <time> element with the local time as text.
export function when(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return h('span', null, iso);
  return h('time', { datetime: iso, title: iso }, dateFmt.format(d));
}

// ago is a short relative time ("3 min ago") for lists that update live.
export function ago(iso) {
  const d = new Date(iso);
  const sec = Math.round((Date.now() - d.getTime()) / 1000);
  if (Number.isNaN(sec)) return '';
  if (sec < 60) return `${Math.max(sec, 0)} s ago`;
  if (sec < 3600) return `${Math.round(sec / 60)} min ago`;
  if (sec < 86400) return `${Math.round(sec / 3600)} h ago`;
  return `${Math.round(sec / 86400)} d ago`;
}

// debounce delays fn until calls stop for ms.
export function debounce(fn, ms) {
  let t;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}
