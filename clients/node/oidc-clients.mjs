// Drives Onramp's OpenID Connect provider with the real npm openid-client
// (v6) library, as a public client (a single-page app: PKCE, no secret)
// and as a confidential client (a server: client secret). The "browser"
// is fetch with a manual cookie jar that posts the hosted sign-in form and
// follows redirects on Onramp only, stopping where Onramp sends it back to
// the client, as a real browser would leave the site.
//
// env: ONRAMP_URL (http://127.0.0.1:PORT, the issuer), ONRAMP_EMAIL,
//      ONRAMP_PASSWORD and ONRAMP_SUBJECT (an account that exists),
//      ONRAMP_PUBLIC_CLIENT_ID, ONRAMP_CLIENT_ID, ONRAMP_CLIENT_SECRET,
//      ONRAMP_REDIRECT_URI (registered for both clients),
//      ONRAMP_POST_LOGOUT_URI (registered for the confidential client).
// exit 0: all checks passed; exit 1: any failure (the reasons are printed).

import * as client from 'openid-client'
import { env } from './env.mjs'

const BASE = env('ONRAMP_URL').replace(/\/+$/, '')
const EMAIL = env('ONRAMP_EMAIL')
const PASSWORD = env('ONRAMP_PASSWORD')
const SUBJECT = env('ONRAMP_SUBJECT')
const PUBLIC_ID = env('ONRAMP_PUBLIC_CLIENT_ID')
const CLIENT_ID = env('ONRAMP_CLIENT_ID')
const CLIENT_SECRET = env('ONRAMP_CLIENT_SECRET')
const REDIRECT_URI = env('ONRAMP_REDIRECT_URI')
const POST_LOGOUT_URI = env('ONRAMP_POST_LOGOUT_URI')
const ORIGIN = new URL(BASE).origin

let passed = 0
let failed = 0
const failures = []
function check(cond, msg, detail) {
  if (cond) {
    passed++
    console.log(`ok   - ${msg}`)
  } else {
    failed++
    const m = detail === undefined ? msg : `${msg}: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`
    failures.push(m)
    console.log(`FAIL - ${m}`)
  }
  return cond
}
function finish() {
  console.log(`oidc-clients: ${passed} passed, ${failed} failed`)
  if (failed) {
    console.error('oidc-clients FAILED:\n  ' + failures.join('\n  '))
    process.exit(1)
  }
  process.exit(0)
}

// expectOAuthError runs fn and reports whether it threw the library's
// error for this OAuth error code (a token endpoint ResponseBodyError, or
// an AuthorizationResponseError for an error sent back to the client).
async function expectOAuthError(fn, code) {
  try {
    await fn()
    return 'it succeeded'
  } catch (e) {
    if (e && e.error === code) return null
    return `${e && e.name}: ${e && (e.error || e.code)} ${e && e.message}`
  }
}

// --- a browser without JavaScript: fetch, a cookie jar, the forms ---

class Browser {
  constructor() {
    this.cookies = new Map() // Onramp's cookies; it is the only host we keep any for
  }

  cookieHeader() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
  }

  remember(res) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';')
      const eq = pair.indexOf('=')
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      const gone = attrs.some((a) => /^\s*max-age\s*=\s*(0|-\d+)\s*$/i.test(a)) || value === ''
      if (gone) this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
  }

  // go requests url and follows redirects while they stay on Onramp. It
  // returns {url, status, body, location, visited}: location is set when
  // Onramp sent the browser elsewhere (to the client).
  async go(url, init = {}) {
    const visited = []
    let method = init.method || 'GET'
    let body = init.body
    let headers = init.headers || {}
    for (let hop = 0; hop < 12; hop++) {
      const u = new URL(url)
      if (u.origin !== ORIGIN) throw new Error(`the browser was asked to load ${url}, off Onramp`)
      visited.push(u.pathname)
      const res = await fetch(u, {
        method,
        body,
        redirect: 'manual',
        headers: { ...headers, cookie: this.cookieHeader(), accept: 'text/html' },
      })
      this.remember(res)
      const text = await res.text()
      if (res.status >= 300 && res.status < 400) {
        const next = new URL(res.headers.get('location'), u)
        if (next.origin !== ORIGIN) return { url: u, status: res.status, body: text, location: next, visited }
        url = next.href
        method = 'GET'
        body = undefined
        headers = {}
        continue
      }
      return { url: u, status: res.status, body: text, location: null, visited }
    }
    throw new Error(`more than 12 redirects from ${url}`)
  }

  // submit posts the page's form whose action starts with action, with its
  // hidden fields and values.
  async submit(page, action, values) {
    const form = findForm(page.body, action)
    if (!form) throw new Error(`${page.url} (${page.status}) has no form posting to ${action}:\n${page.body}`)
    const params = new URLSearchParams({ ...form.hidden, ...values })
    return this.go(new URL(form.action, page.url).href, {
      method: 'POST',
      body: params.toString(),
      // A browser says where a form post comes from; Onramp refuses
      // cross-site posts.
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN, 'sec-fetch-site': 'same-origin' },
    })
  }
}

function decodeEntities(s) {
  return s.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (m, e) => {
    const lower = e.toLowerCase()
    if (lower.startsWith('#x')) return String.fromCodePoint(parseInt(lower.slice(2), 16))
    if (lower.startsWith('#')) return String.fromCodePoint(parseInt(lower.slice(1), 10))
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[lower]
  })
}

function attr(tag, name) {
  const m = tag.match(new RegExp(`\\s${name}\\s*=\\s*("([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i'))
  return m ? decodeEntities(m[2] ?? m[3] ?? m[4]) : null
}

// findForm reads the first <form> whose action starts with action: its
// action and its hidden inputs. The hosted pages are simple, server-made
// HTML; a regular expression reads them well enough.
function findForm(html, action) {
  for (const m of html.matchAll(/<form\b[^>]*>([\s\S]*?)<\/form>/gi)) {
    const open = m[0].slice(0, m[0].indexOf('>') + 1)
    const a = attr(open, 'action')
    if (a === null || !a.startsWith(action)) continue
    const hidden = {}
    for (const inp of m[1].matchAll(/<input\b[^>]*>/gi)) {
      if ((attr(inp[0], 'type') || '').toLowerCase() === 'hidden') hidden[attr(inp[0], 'name')] = attr(inp[0], 'value') ?? ''
    }
    return { action: a, hidden }
  }
  return null
}

// --- the relying parties ---

const insecure = { execute: [client.allowInsecureRequests] } // the test server speaks http
const scope = 'openid profile email offline_access'

// authorize builds an authorization URL with S256 PKCE, a state and a
// nonce, sends the browser there, signs in with the password if the
// sign-in page shows, and returns where Onramp sent the browser back.
async function authorize(config, browser, extra = {}) {
  const checks = {
    pkceCodeVerifier: client.randomPKCECodeVerifier(),
    expectedState: client.randomState(),
    expectedNonce: client.randomNonce(),
    idTokenExpected: true,
  }
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope,
    code_challenge: await client.calculatePKCECodeChallenge(checks.pkceCodeVerifier),
    code_challenge_method: 'S256',
    state: checks.expectedState,
    nonce: checks.expectedNonce,
    ...extra,
  })
  let page = await browser.go(url.href)
  let signedIn = false
  if (!page.location && page.url.pathname === '/auth/sign-in') {
    page = await browser.submit(page, '/auth/sign-in', { email: EMAIL, password: PASSWORD, action: 'password' })
    signedIn = true
  }
  if (!page.location) throw new Error(`the sign-in did not send the browser back: ${page.status} at ${page.url}\n${page.body.slice(0, 2000)}`)
  return { callback: page.location, checks, signedIn }
}

// loginFlow runs the code flow up to verified tokens.
async function loginFlow(name, config, browser) {
  const a = await authorize(config, browser)
  check(a.callback.href.startsWith(REDIRECT_URI + '?'), `${name}: back at the redirect URI`, a.callback.href)
  const tokens = await client.authorizationCodeGrant(config, a.callback, a.checks)
  const claims = tokens.claims()
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud]
  check(claims.sub === SUBJECT && aud.includes(config.clientMetadata().client_id),
    `${name}: ID token for the account and the client (nonce, state and PKCE checked by openid-client)`, claims)
  check(typeof claims.sid === 'string' && claims.sid.startsWith('ses_'), `${name}: ID token carries the session id`, claims)
  return { tokens, claims, signedIn: a.signedIn }
}

async function main() {
  // Discovery: once as the public client (no authentication), once as the
  // confidential one (client_secret_basic).
  const spa = await client.discovery(new URL(BASE), PUBLIC_ID, undefined, client.None(), insecure)
  const app = await client.discovery(new URL(BASE), CLIENT_ID, CLIENT_SECRET, client.ClientSecretBasic(CLIENT_SECRET), insecure)
  const meta = app.serverMetadata()
  check(meta.issuer === BASE, 'discovery: issuer is the public URL', meta.issuer)
  check(['end_session_endpoint', 'introspection_endpoint', 'revocation_endpoint', 'userinfo_endpoint'].every((k) => meta[k]?.startsWith(BASE + '/oauth/')),
    'discovery: userinfo, introspection, revocation and end_session endpoints', meta)
  check(meta.code_challenge_methods_supported?.includes('S256'), 'discovery: S256 PKCE', meta.code_challenge_methods_supported)

  const browser = new Browser()

  // --- public client ---
  const noPKCE = client.buildAuthorizationUrl(spa, { redirect_uri: REDIRECT_URI, scope, state: 'st-no-pkce', nonce: client.randomNonce() })
  const refused = await browser.go(noPKCE.href)
  check(refused.location?.searchParams.get('error') === 'invalid_request' && !refused.location.searchParams.has('code'),
    'public client: an authorization request without PKCE is refused (invalid_request)', refused.location?.href ?? refused.status)

  const pub = await loginFlow('public client', spa, browser)
  check(pub.signedIn, 'public client: the browser signed in on the hosted form')
  const ui = await client.fetchUserInfo(spa, pub.tokens.access_token, pub.claims.sub)
  check(ui.email === EMAIL && ui.email_verified === true && ui.name === 'Grace Hopper', 'public client: userinfo has the verified email and the name', ui)
  check(typeof pub.tokens.refresh_token === 'string', 'public client: a refresh token for offline_access')
  const pubRotated = await client.refreshTokenGrant(spa, pub.tokens.refresh_token)
  check(pubRotated.refresh_token && pubRotated.refresh_token !== pub.tokens.refresh_token && pubRotated.access_token !== pub.tokens.access_token,
    'public client: refresh rotates the refresh token')
  let err = await expectOAuthError(() => client.refreshTokenGrant(spa, pub.tokens.refresh_token), 'invalid_grant')
  check(err === null, 'public client: reusing the rotated refresh token is invalid_grant', err)
  err = await expectOAuthError(() => client.refreshTokenGrant(spa, pubRotated.refresh_token), 'invalid_grant')
  check(err === null, 'public client: after the reuse the newest refresh token is dead too', err)
  err = await expectOAuthError(() => client.clientCredentialsGrant(spa, { scope: 'reports:read' }), 'invalid_client')
  check(err === null || /invalid_client|unauthorized_client|unsupported_grant_type/.test(err), 'public client: no client credentials grant', err)

  // --- confidential client: the same browser, so single sign-on ---
  const conf = await loginFlow('confidential client', app, browser)
  check(!conf.signedIn, 'confidential client: signed in from the live session, no form')
  check(conf.claims.sid === pub.claims.sid, 'confidential client: the same session as the public client', [conf.claims.sid, pub.claims.sid])
  let intro = await client.tokenIntrospection(app, conf.tokens.access_token)
  check(intro.active === true && intro.sub === SUBJECT && intro.client_id === CLIENT_ID, 'confidential client: introspection says active, for the account and the client', intro)
  const confRotated = await client.refreshTokenGrant(app, conf.tokens.refresh_token)
  check(confRotated.refresh_token && confRotated.refresh_token !== conf.tokens.refresh_token, 'confidential client: refresh rotates')
  intro = await client.tokenIntrospection(app, confRotated.access_token)
  check(intro.active === true, 'confidential client: the refreshed access token is active', intro)
  err = await expectOAuthError(() => client.refreshTokenGrant(app, conf.tokens.refresh_token), 'invalid_grant')
  check(err === null, 'confidential client: reusing the rotated refresh token is invalid_grant', err)
  intro = await client.tokenIntrospection(app, confRotated.access_token)
  check(intro.active === false, 'confidential client: after the reuse the family is dead (introspection inactive)', intro)
  err = await expectOAuthError(() => client.refreshTokenGrant(app, confRotated.refresh_token), 'invalid_grant')
  check(err === null, 'confidential client: after the reuse the newest refresh token is refused', err)

  // Revocation: of an access token, then of a refresh token (its family).
  const rev = await loginFlow('confidential client (revocation)', app, browser)
  await client.tokenRevocation(app, rev.tokens.access_token)
  intro = await client.tokenIntrospection(app, rev.tokens.access_token)
  check(intro.active === false, 'revocation: a revoked access token is inactive', intro)
  await client.tokenRevocation(app, rev.tokens.refresh_token)
  err = await expectOAuthError(() => client.refreshTokenGrant(app, rev.tokens.refresh_token), 'invalid_grant')
  check(err === null, 'revocation: a revoked refresh token is refused', err)

  // Client credentials.
  const cc = await client.clientCredentialsGrant(app, { scope: 'reports:read' })
  intro = await client.tokenIntrospection(app, cc.access_token)
  check(intro.active === true && intro.sub === CLIENT_ID && intro.scope === 'reports:read', 'client credentials: a token for the client itself', intro)
  err = await expectOAuthError(() => client.fetchUserInfo(app, cc.access_token, client.skipSubjectCheck), 'invalid_token')
  check(err !== 'it succeeded', "client credentials: the client's token reads no userinfo", err)

  // RP-initiated logout with the ID token as hint.
  const last = await loginFlow('confidential client (logout)', app, browser)
  const endSession = client.buildEndSessionUrl(app, {
    id_token_hint: last.tokens.id_token,
    post_logout_redirect_uri: POST_LOGOUT_URI,
    state: 'bye-node',
  })
  const out = await browser.go(endSession.href)
  check(out.location?.href === `${POST_LOGOUT_URI}?state=bye-node`, 'logout: end_session sends the browser to the registered URI with the state', out.location?.href ?? `${out.status} at ${out.url}`)
  // The session is over: prompt=none answers login_required.
  const none = await authorize(app, browser, { prompt: 'none' })
  err = await expectOAuthError(() => client.authorizationCodeGrant(app, none.callback, none.checks), 'login_required')
  check(err === null, 'logout: prompt=none afterwards answers login_required', err)
  console.log(`logged-out-session: ${last.claims.sid}`)
}

try {
  await main()
} catch (e) {
  check(false, 'the script ran to the end', `${e && e.name}: ${e && e.message}${e && e.cause ? ' ' + JSON.stringify(e.cause) : ''}\n${e && e.stack}`)
}
finish()
