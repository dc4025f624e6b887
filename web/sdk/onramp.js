/*!
 * onramp.js 0.1.0 - browser tracking SDK for Onramp (Segment-compatible wire format).
 * One file, no dependencies, ES2017, never throws into the host page. Docs: docs/sdk.md
 */
(() => {
  'use strict';

  const w = typeof window !== 'undefined' ? window : null;
  if (!w || (w.onramp && w.onramp.VERSION)) return; // not a browser, or already loaded

  const VERSION = '0.1.0';
  const d = w.document || {};
  const nav = w.navigator || {};

  const COOKIE = 'onramp_anon_id';
  const K_CONSENT = 'onramp_consent';
  const K_USER = 'onramp_user';
  const K_QUEUE = 'onramp_queue:'; // + writeKey

  const MAX_EVENT = 32000;  // bytes per message (server limit: 32 KB)
  const MAX_BATCH = 450000; // bytes per request body (server limit: 500 KB)
  const MAX_BEACON = 60000; // bytes per beacon or keepalive body (browser quota: 64 KB)
  const MAX_QUEUE = 1000;   // messages kept at most; beyond this the oldest are dropped
  const MAX_ATTEMPTS = 10;  // failed sends of one batch before it is dropped

  // ------------------------------------------------------------------ state

  let cfg = null;        // set by load(): {writeKey, url, cookieDomain, flushAt, flushInterval}
  let consent = 'pending';
  let debugOn = false;
  let anonId = null;
  let userId = null;
  let traits = {};
  let queue = [];        // [{id, s: JSON text, n: bytes}], oldest first
  let inflight = {};     // messageId -> true while a request carrying it is open
  let pre = [];          // calls made before load(); run once loaded
  let timer = null;
  let retryPending = false;
  let attempt = 0;       // consecutive failed sends
  let notBefore = 0;     // no request before this time (429 Retry-After)
  let sending = null;    // promise of the running drain()
  let markReady;
  const readyP = new Promise(r => { markReady = r; });

  // ------------------------------------------------------------------ helpers

  const log = (...a) => { if (debugOn) try { console.log('[onramp]', ...a); } catch (e) { /* no console */ } };
  const isObj = v => v !== null && typeof v === 'object' && !Array.isArray(v);
  const obj = v => (isObj(v) ? v : {});
  const iso = () => new Date().toISOString();
  // A user or group id: a non-empty string, or a finite number turned into a string.
  const idStr = v => (typeof v === 'number' && isFinite(v) ? String(v) : typeof v === 'string' && v ? v : null);

  function uuid() {
    const c = w.crypto;
    try { return c.randomUUID(); } catch (e) { /* only in secure contexts */ }
    const b = c.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    const h = Array.from(b, x => (x + 256).toString(16).slice(1)).join('');
    return h.replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-');
  }

  const encoder = w.TextEncoder ? new w.TextEncoder() : null;
  const bytes = s => (encoder ? encoder.encode(s).length : s.length * 3);

  // ------------------------------------------------------------------ storage

  // Every localStorage access can throw (disabled storage, quota, sandboxed iframe).
  const ls = (op, k, v) => { try { return w.localStorage[op](k, v); } catch (e) { return null; } };
  const lsGet = k => ls('getItem', k);
  const lsSet = (k, v) => ls('setItem', k, v);
  const lsDel = k => ls('removeItem', k);

  function getCookie(name) {
    try {
      for (const part of String(d.cookie).split(/;\s*/)) {
        const eq = part.indexOf('=');
        if (eq > 0 && part.slice(0, eq) === name) return decodeURIComponent(part.slice(eq + 1));
      }
    } catch (e) { /* malformed */ }
    return null;
  }

  function setCookie(value, maxAge, domain) {
    try {
      d.cookie = `${COOKIE}=${encodeURIComponent(value)}; Max-Age=${maxAge}; Path=/; SameSite=Lax` +
        (w.location.protocol === 'https:' ? '; Secure' : '') + (domain ? '; Domain=' + domain : '');
    } catch (e) { log('cookie write failed', e); }
  }

  function writeCookie(value) {
    const domain = cfg && cfg.cookieDomain;
    setCookie(value, 31536000, domain); // one year
    // The browser refuses a domain the page is not under: fall back to a host-only cookie.
    if (domain && getCookie(COOKIE) !== value) setCookie(value, 31536000, '');
  }

  function deleteCookie() {
    setCookie('', 0, '');
    if (cfg && cfg.cookieDomain) setCookie('', 0, cfg.cookieDomain);
  }

  // analytics.js stores its id JSON-encoded ("abc" with the quotes); newer versions store it raw.
  function cookieId(name) {
    const v = (getCookie(name) || '').replace(/^"(.*)"$/, '$1');
    return v && v.length <= 200 ? v : null;
  }

  function getAnon() {
    if (!anonId) anonId = cookieId(COOKIE) || cookieId('ajs_anonymous_id') || uuid();
    return anonId;
  }

  const granted = () => consent === 'granted';
  const canSend = () => !!cfg && granted();

  function saveUser() {
    if (!granted()) return;
    if (userId === null && !Object.keys(traits).length) lsDel(K_USER);
    else lsSet(K_USER, JSON.stringify({ userId, traits }));
  }

  function loadUser() {
    try {
      const u = JSON.parse(lsGet(K_USER));
      if (isObj(u)) { userId = idStr(u.userId); traits = obj(u.traits); }
    } catch (e) { /* corrupt: ignore */ }
  }

  // The unsent queue is mirrored to localStorage (consent granted only) so a reload loses nothing.
  function saveQueue() {
    if (!canSend()) return;
    const key = K_QUEUE + cfg.writeKey;
    if (queue.length) lsSet(key, '[' + queue.map(i => i.s).join(',') + ']');
    else lsDel(key);
  }

  function item(msg) {
    const s = JSON.stringify(msg);
    return { id: msg.messageId, s, n: bytes(s) };
  }

  function adoptStoredQueue() {
    try {
      const list = JSON.parse(lsGet(K_QUEUE + cfg.writeKey));
      if (!Array.isArray(list)) return;
      const have = new Set(queue.map(i => i.id));
      const old = list.filter(m => isObj(m) && m.messageId && !have.has(m.messageId)).map(item);
      if (old.length) log('restored', old.length, 'unsent events');
      queue = old.concat(queue).slice(-MAX_QUEUE);
    } catch (e) { log('stored queue unreadable', e); }
  }

  function purge() {
    queue = [];
    clearTimeout(timer);
    timer = null;
    retryPending = false;
    attempt = notBefore = 0;
    deleteCookie();
    lsDel(K_USER);
    if (cfg) lsDel(K_QUEUE + cfg.writeKey);
  }

  // ------------------------------------------------------------------ context

  function pageInfo() {
    const loc = w.location || {};
    return {
      path: loc.pathname || '',
      referrer: d.referrer || '',
      search: loc.search || '',
      title: d.title || '',
      url: String(loc.href || '').split('#')[0]
    };
  }

  function context() {
    const scr = w.screen || {};
    const ctx = {
      library: { name: 'onramp.js', version: VERSION },
      page: pageInfo(),
      userAgent: nav.userAgent,
      locale: nav.language || (nav.languages && nav.languages[0]),
      screen: { width: scr.width, height: scr.height }
    };
    try { ctx.timezone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { /* old engine */ }
    try {
      const camp = {};
      new URLSearchParams(w.location.search).forEach((v, k) => {
        if (/^utm_./.test(k)) camp[k === 'utm_campaign' ? 'name' : k.slice(4)] = v;
      });
      if (Object.keys(camp).length) ctx.campaign = camp;
    } catch (e) { /* ignore */ }
    return ctx;
  }

  // ------------------------------------------------------------------ queue and sending

  // Builds a message and queues it. Returns the message, or null when it is dropped.
  function build(type, fields, ts) {
    if (consent === 'denied') { log('consent denied: dropped', type); return null; }
    const msg = { type, messageId: uuid(), anonymousId: getAnon() };
    if (userId !== null) msg.userId = userId;
    msg.timestamp = ts;
    for (const k in fields) if (fields[k] != null) msg[k] = fields[k];
    msg.context = context();

    let it;
    try { it = item(msg); } catch (e) { log('not serializable: dropped', type, e); return null; }
    if (it.n > MAX_EVENT) { log('over 32 KB: dropped', type, it.n); return null; }
    queue.push(it);
    if (queue.length > MAX_QUEUE) queue.splice(0, queue.length - MAX_QUEUE);
    log(granted() ? 'queued' : 'held until consent', type, msg);
    if (granted()) {
      saveQueue();
      if (!retryPending && queue.length >= cfg.flushAt) flush();
      schedule(cfg.flushInterval);
    }
    return msg;
  }

  function schedule(ms) {
    if (timer) return; // a flush (or retry) is already planned
    timer = setTimeout(() => {
      timer = null;
      retryPending = false;
      flush();
    }, ms);
  }

  const unsent = () => queue.filter(i => !inflight[i.id]);

  // The longest prefix of items whose request body fits in limit bytes (always at least one item).
  function take(items, limit) {
    let size = 100 + bytes(cfg.writeKey);
    const out = [];
    for (const i of items) {
      size += i.n + 1;
      if (out.length && size > limit) break;
      out.push(i);
    }
    return out;
  }

  const body = items => '{"batch":[' + items.map(i => i.s).join(',') + '],"writeKey":' +
    JSON.stringify(cfg.writeKey) + ',"sentAt":"' + iso() + '"}';

  function remove(items) {
    const gone = new Set(items.map(i => i.id));
    queue = queue.filter(i => !gone.has(i.id));
    saveQueue();
  }

  function retryAfter(res) {
    const h = res.headers.get('Retry-After');
    const ms = !h ? 0 : isFinite(h) ? h * 1000 : Date.parse(h) - Date.now();
    return ms > 0 ? Math.min(ms, 3600000) : 0;
  }

  // POSTs items. Resolves to 'ok', 'drop' (do not retry) or {retry: ms the server asked us to wait}.
  async function post(items, keepalive) {
    const text = body(items);
    items.forEach(i => { inflight[i.id] = true; });
    try {
      const res = await w.fetch(cfg.url, {
        method: 'POST',
        headers: { 'Content-Type': 'text/plain' }, // a CORS "simple" request: no preflight
        body: text,
        keepalive: keepalive && bytes(text) <= MAX_BEACON,
        credentials: 'omit',
        mode: 'cors'
      });
      const s = res.status;
      if (s >= 200 && s < 300) {
        if (debugOn) res.json().then(j => log('sent', items.length, 'response', j), () => log('sent', items.length));
        return 'ok';
      }
      if (s === 429 || s === 408 || s >= 500) {
        log('HTTP', s, '- will retry');
        return { retry: s === 429 ? retryAfter(res) : 0 };
      }
      log('HTTP', s, '- dropping', items.length, 'events');
      return 'drop';
    } catch (e) {
      log('network error - will retry', e);
      return { retry: 0 };
    } finally {
      items.forEach(i => { delete inflight[i.id]; });
    }
  }

  // 1s, 2s, 4s ... capped at 60s, each +-25% jitter.
  const backoff = n => Math.min(60000, Math.round(Math.min(60000, 1000 * 2 ** (n - 1)) * (0.75 + Math.random() / 2)));

  // Sends the queue batch by batch. Resolves true when nothing is left to send.
  async function drain() {
    while (canSend()) {
      const batch = take(unsent(), MAX_BATCH);
      if (!batch.length) break;
      const r = await post(batch, attempt === 0);
      if (r !== 'ok' && r !== 'drop') {
        attempt++;
        if (attempt < MAX_ATTEMPTS || nav.onLine === false) { // offline: keep waiting, never give up
          attempt = Math.min(attempt, MAX_ATTEMPTS - 1);
          if (r.retry) notBefore = Date.now() + r.retry;
          const wait = Math.max(r.retry, backoff(attempt));
          log('retry', attempt, 'in', wait, 'ms');
          clearTimeout(timer);
          timer = null;
          schedule(wait);
          retryPending = true;
          return false;
        }
        log('giving up after', attempt, 'attempts;', batch.length, 'events dropped');
      }
      attempt = 0;
      remove(batch);
    }
    return !queue.length;
  }

  function flush() {
    if (sending) return sending;
    if (Date.now() < notBefore) { // the server asked us to wait
      schedule(notBefore - Date.now());
      return Promise.resolve(false);
    }
    clearTimeout(timer);
    timer = null;
    retryPending = false;
    sending = drain().catch(e => { log('flush failed', e); return false; }).then(r => { sending = null; return r; });
    return sending;
  }

  // The page is being hidden or unloaded, perhaps for good: beacon what is queued.
  function onHide() {
    try {
      // While the server is failing, keep events in localStorage for the next page instead.
      if (!canSend() || attempt > 0 || Date.now() < notBefore) return;
      let items = unsent();
      while (items.length) {
        const chunk = take(items, MAX_BEACON);
        items = items.slice(chunk.length);
        let ok = false;
        try { ok = nav.sendBeacon(cfg.url, new Blob([body(chunk)], { type: 'text/plain' })); } catch (e) { /* no beacon */ }
        if (ok) {
          log('beacon sent', chunk.length, 'events');
          remove(chunk);
          continue;
        }
        // Refused (browser quota) or unsupported: try one keepalive fetch. Whatever is still
        // unsent stays in localStorage and goes out on the next page load.
        log('beacon refused; keepalive fetch for', chunk.length, 'events');
        post(chunk, true).then(r => { if (r === 'ok' || r === 'drop') remove(chunk); });
        break;
      }
    } catch (e) { log('pagehide flush failed', e); }
  }

  // ------------------------------------------------------------------ commands

  // Each takes (args array, call timestamp). What it returns is what the public Promise resolves to.
  const commands = {
    // page([category], [name], [properties])
    // A lone string is the name: page('Home'), page('Home', {...}), page('Docs', 'Install', {...}).
    page(a, ts) {
      let [category, name, props] = a;
      if (isObj(category)) [category, name, props] = [null, null, category];
      else if (isObj(name)) [category, name, props] = [null, category, name];
      if (name == null) [category, name] = [null, category];
      const extra = {};
      if (name != null) extra.name = name = String(name);
      if (category != null) extra.category = category = String(category);
      return build('page', { name, category, properties: Object.assign(pageInfo(), extra, obj(props)) }, ts);
    },

    track(a, ts) {
      if (typeof a[0] !== 'string' || !a[0]) { log('track: an event name is required'); return null; }
      return build('track', { event: a[0], properties: obj(a[1]) }, ts);
    },

    // identify([userId], [traits])
    identify(a, ts) {
      let [id, t] = a;
      if (isObj(id)) [id, t] = [null, id];
      id = idStr(id);
      // Traits accumulate for the same user; a different user starts afresh.
      traits = Object.assign({}, id === null || userId === null || id === userId ? traits : {}, obj(t));
      if (id !== null) userId = id;
      saveUser();
      return build('identify', { traits }, ts);
    },

    group(a, ts) {
      const groupId = idStr(a[0]);
      if (groupId === null) { log('group: a groupId is required'); return null; }
      return build('group', { groupId, traits: obj(a[1]) }, ts);
    },

    // alias(userId, [previousId]); previousId defaults to the current userId, else the anonymousId.
    alias(a, ts) {
      const to = idStr(a[0]);
      if (to === null) { log('alias: a userId is required'); return null; }
      let from = idStr(a[1]);
      if (from === null) from = userId !== null ? userId : getAnon();
      return build('alias', { userId: to, previousId: from }, ts);
    },

    reset() {
      anonId = uuid();
      userId = null;
      traits = {};
      lsDel(K_USER);
      if (granted()) writeCookie(anonId);
      log('reset; new anonymousId', anonId);
    },

    // consent() reads the state; consent('granted' | 'denied') sets and remembers it.
    consent([v]) {
      if (v === undefined) return consent;
      if (v !== 'granted' && v !== 'denied') { log('consent: expected "granted" or "denied", got', v); return consent; }
      lsSet(K_CONSENT, v);
      if (v === consent) return v;
      consent = v;
      log('consent', v);
      if (v === 'denied') {
        purge();
      } else {
        writeCookie(getAnon());
        saveUser();
        saveQueue();
        if (queue.length) flush();
      }
      return v;
    },

    flush
  };

  // ------------------------------------------------------------------ load

  let script = null;
  try { script = d.currentScript || d.querySelector('script[data-write-key]'); } catch (e) { /* ignore */ }

  function scriptOptions() {
    const o = {};
    try {
      const attr = n => script.getAttribute('data-' + n);
      o.writeKey = attr('write-key');
      o.apiHost = attr('api-host');
      o.cookieDomain = attr('cookie-domain');
      o.consent = attr('consent');
      o.flushAt = attr('flush-at');
      o.flushInterval = attr('flush-interval');
      if (!o.apiHost && script.src) o.apiHost = new URL(script.src, w.location.href).origin;
    } catch (e) { /* no script element */ }
    return o;
  }

  function num(v, def, min) {
    const n = v == null || v === '' ? NaN : Number(v);
    return n >= min ? Math.floor(n) : def; // false for NaN
  }

  function host(h) {
    const loc = w.location || {};
    h = String(h || '').trim().replace(/\/+$/, '');
    if (!h) return loc.origin || '';
    if (h.startsWith('//')) return (loc.protocol || 'https:') + h;
    return /^https?:\/\//i.test(h) ? h : 'https://' + h;
  }

  function load(opts) {
    if (cfg) { log('load: already loaded; ignored'); return; }
    const o = scriptOptions();
    opts = obj(opts);
    for (const k in opts) if (opts[k] != null) o[k] = opts[k];
    if (!o.writeKey) {
      try { console.warn('[onramp] load: a writeKey is required'); } catch (e) { /* no console */ }
      return;
    }
    cfg = {
      writeKey: String(o.writeKey),
      url: host(o.apiHost) + '/v1/batch',
      cookieDomain: o.cookieDomain ? String(o.cookieDomain) : '',
      flushAt: num(o.flushAt, 20, 1),
      flushInterval: num(o.flushInterval, 1000, 0)
    };
    // A choice made with onramp.consent() (remembered in localStorage) wins over the configured default.
    const saved = lsGet(K_CONSENT);
    consent = saved === 'granted' || saved === 'denied' ? saved
      : o.consent === 'pending' || o.consent === 'denied' ? o.consent : 'granted';

    if (consent === 'denied') {
      purge();
    } else {
      loadUser();
      if (granted()) {
        writeCookie(getAnon()); // also renews the one-year expiry
        adoptStoredQueue();
        saveQueue();
      }
    }

    try {
      w.addEventListener('pagehide', onHide);
      w.addEventListener('online', () => { if (queue.length) flush(); });
      d.addEventListener('visibilitychange', () => { if (d.visibilityState === 'hidden') onHide(); });
    } catch (e) { /* ignore */ }

    log('loaded', { url: cfg.url, consent, anonymousId: getAnon(), userId });
    const calls = pre;
    pre = [];
    calls.forEach(run => run());
    if (canSend() && queue.length) schedule(0);
    markReady();
  }

  // ------------------------------------------------------------------ public API

  const api = { VERSION };

  // Calls made before load() wait in `pre` and run, in order, once it has happened.
  Object.keys(commands).forEach(name => {
    api[name] = (...args) => {
      const ts = iso();
      return new Promise(resolve => {
        const run = () => {
          try {
            const r = commands[name](args, ts);
            resolve(r === undefined ? null : r);
          } catch (e) {
            log(name, 'failed', e);
            resolve(null);
          }
        };
        if (cfg) run();
        else if (pre.length < MAX_QUEUE) pre.push(run);
        else resolve(null);
      });
    };
  });

  api.load = opts => {
    try { load(opts); } catch (e) { log('load failed', e); }
    return readyP;
  };

  api.ready = fn => readyP.then(() => {
    if (typeof fn === 'function') try { fn(); } catch (e) { log('ready callback failed', e); }
  });

  api.debug = on => { debugOn = on === undefined || !!on; };

  api.anonymousId = () => { try { return getAnon(); } catch (e) { return null; } };

  api.user = () => ({ anonymousId: api.anonymousId(), userId });

  // onramp.push(['track', 'Signed Up', {...}]) works before and after load.
  api.push = call => {
    try {
      if (call && call[0] !== 'push' && typeof api[call[0]] === 'function') return api[call[0]](...[].slice.call(call, 1));
      log('push: unknown call', call);
    } catch (e) { log('push failed', e); }
  };

  // ------------------------------------------------------------------ boot

  try {
    const stub = w.onramp;
    w.onramp = api;
    const calls = stub && typeof stub.length === 'number' ? Array.from(stub) : [];
    // Code that kept a reference to the stub array (or the stub's own methods) keeps working.
    if (stub && typeof stub.push === 'function') try { stub.push = api.push; } catch (e) { /* frozen */ }
    calls.forEach(c => { if (c && c[0] === 'debug') api.debug(c[1]); }); // so that loading is logged too
    if (!calls.some(c => c && c[0] === 'load') && scriptOptions().writeKey) load();
    calls.forEach(c => api.push(c));
  } catch (e) {
    log('boot failed', e);
  }
})();
