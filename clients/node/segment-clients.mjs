// Drives the real @segment/analytics-node and @rudderstack/rudder-sdk-node
// libraries against an Onramp server, then checks through Onramp's Profile API
// that every event landed on the right person exactly once.
//
// env: ONRAMP_URL (http://127.0.0.1:PORT), ONRAMP_WRITE_KEY, ONRAMP_SECRET_KEY,
//      ONRAMP_RUN_ID (random per run), optional ONRAMP_VERIFY_TIMEOUT_MS (default 15000),
//      optional ONRAMP_DEBUG=1 (dump the raw requests each library made to stderr).
// exit 0: all checks passed; exit 1: any failure (the reason is printed).

import zlib from 'node:zlib'
import { Analytics } from '@segment/analytics-node'
import RudderAnalytics from '@rudderstack/rudder-sdk-node'
import { env } from './env.mjs'

const SEGMENT_LIBRARY_NAME = '@segment/analytics-node'
// rudder-sdk-node stamps context.library.name = 'analytics-node' (not its npm name),
// see node_modules/@rudderstack/rudder-sdk-node/cjs/index.js enqueue().
const RUDDER_LIBRARY_NAME = 'analytics-node'

const BASE = env('ONRAMP_URL').replace(/\/+$/, '')
const WRITE_KEY = env('ONRAMP_WRITE_KEY')
const SECRET_KEY = env('ONRAMP_SECRET_KEY')
const RUN = env('ONRAMP_RUN_ID')
const VERIFY_TIMEOUT_MS = Number(process.env.ONRAMP_VERIFY_TIMEOUT_MS || 15000)
const DEBUG = process.env.ONRAMP_DEBUG === '1'

let passed = 0
let failed = 0
const failures = []
function ok(msg) {
  passed++
  console.log(`ok   - ${msg}`)
}
function fail(msg) {
  failed++
  failures.push(msg)
  console.log(`FAIL - ${msg}`)
}
function check(cond, msg, detail) {
  if (cond) ok(msg)
  else fail(detail ? `${msg}: ${detail}` : msg)
  return cond
}
function finish() {
  console.log(`segment-clients: ${passed} passed, ${failed} failed`)
  if (failed) {
    console.error('segment-clients FAILED:\n  ' + failures.join('\n  '))
    process.exit(1)
  }
  process.exit(0)
}
function debug(label, obj) {
  if (DEBUG) console.error(`[debug] ${label}: ${JSON.stringify(obj, null, 2)}`)
}
function withTimeout(promise, ms, what) {
  let t
  return Promise.race([
    promise,
    new Promise((_, rej) => {
      t = setTimeout(() => rej(new Error(`${what} did not finish within ${ms} ms`)), ms)
    }),
  ]).finally(() => clearTimeout(t))
}

// ---------------------------------------------------------------------------
// 1. @segment/analytics-node
// ---------------------------------------------------------------------------
const segUser = `seg-node-${RUN}`
const segAnon = `anon-seg-${RUN}`
const segEmail = `seg-node-${RUN}@example.com`

// What we expect on the seg-node person's timeline, keyed by the label of the call.
// messageId is filled from the library (callback ctx + the wire capture).
const segCalls = [] // {label, type, event?, name?, messageId, sentOnWire, userId, anonymousId, properties}
const segWire = [] // parsed bodies of http_request
const segResponses = [] // http_response statuses
const segErrors = []

async function runSegment() {
  const analytics = new Analytics({
    writeKey: WRITE_KEY,
    host: BASE,
    path: '/v1/batch',
    flushAt: 3, // 6 calls -> 2 batches
    flushInterval: 1000,
    maxRetries: 3,
    httpRequestTimeout: 5000,
  })
  analytics.on('http_request', (req) => {
    let body
    try {
      body = JSON.parse(req.body)
    } catch {
      body = req.body
    }
    segWire.push({ url: req.url, method: req.method, headers: req.headers, body, rawBody: req.body })
    debug('analytics-node http_request', { url: req.url, method: req.method, headers: req.headers, body })
  })
  analytics.on('http_response', (res) => {
    segResponses.push({ status: res.status, statusText: res.statusText, body: res.body })
    debug('analytics-node http_response', { status: res.status, statusText: res.statusText })
  })
  analytics.on('error', (err) => {
    segErrors.push(`${err.code}: ${err.reason?.message ?? err.reason}`)
  })

  const call = (label, method, params, expect) =>
    new Promise((resolve) => {
      const entry = { label, ...expect, messageId: null, error: null }
      segCalls.push(entry)
      analytics[method](params, (err, ctx) => {
        entry.messageId = ctx?.event?.messageId ?? null
        if (err) entry.error = String(err?.message ?? err)
        resolve()
      })
    })

  const done = [
    call(
      'identify',
      'identify',
      { userId: segUser, traits: { email: segEmail, name: 'Ada' } },
      { type: 'identify', userId: segUser }
    ),
    call(
      'track Signed Up',
      'track',
      { userId: segUser, event: 'Signed Up', properties: { plan: 'pro', run: RUN, source: 'analytics-node' } },
      { type: 'track', event: 'Signed Up', userId: segUser, properties: { plan: 'pro', run: RUN } }
    ),
    call(
      'track Trial Started',
      'track',
      { userId: segUser, event: 'Trial Started', properties: { trial_days: 14, run: RUN } },
      { type: 'track', event: 'Trial Started', userId: segUser, properties: { trial_days: 14, run: RUN } }
    ),
    call(
      'page Pricing',
      'page',
      {
        userId: segUser,
        category: 'Docs',
        name: 'Pricing',
        properties: { path: '/pricing', url: 'https://example.com/pricing', run: RUN },
      },
      { type: 'page', name: 'Pricing', userId: segUser, properties: { path: '/pricing', run: RUN } }
    ),
    call(
      'anonymous track Viewed Landing',
      'track',
      { anonymousId: segAnon, event: 'Viewed Landing', properties: { run: RUN } },
      { type: 'track', event: 'Viewed Landing', userId: null, anonymousId: segAnon, properties: { run: RUN } }
    ),
    call(
      'identify linking anonymousId',
      'identify',
      { userId: segUser, anonymousId: segAnon, traits: { email: segEmail } },
      { type: 'identify', userId: segUser, anonymousId: segAnon }
    ),
  ]

  await analytics.closeAndFlush({ timeout: 20000 })
  await withTimeout(Promise.all(done), 5000, 'analytics-node callbacks')
}

// ---------------------------------------------------------------------------
// 2. @rudderstack/rudder-sdk-node (gzip on: the library default)
// ---------------------------------------------------------------------------
const rudUser = `rudder-node-${RUN}`
const rudEmail = `rudder-node-${RUN}@example.com`
const rudCalls = []
const rudBatches = new Map() // messageId -> message as the library sent it
const rudErrors = []

function decodeRudderPayload(data) {
  // The callback receives the request payload; with gzip on it is the gzipped Buffer.
  if (Buffer.isBuffer(data)) return JSON.parse(zlib.gunzipSync(data).toString('utf8'))
  if (data instanceof Uint8Array) return JSON.parse(zlib.gunzipSync(Buffer.from(data)).toString('utf8'))
  return data
}

async function runRudder() {
  const client = new RudderAnalytics(WRITE_KEY, {
    dataPlaneUrl: BASE,
    path: '/v1/batch',
    flushAt: 20,
    flushInterval: 1000,
    retryCount: 2,
    logLevel: 'error',
    errorHandler: (err) => {
      rudErrors.push(err?.response ? `HTTP ${err.response.status} ${err.response.statusText}` : String(err?.message ?? err))
    },
    // gzip deliberately left at its default (true)
  })
  if (client.gzip !== true) fail('rudder-sdk-node: gzip is expected to be on by default')

  const call = (label, method, params, expect) =>
    new Promise((resolve) => {
      const entry = { label, ...expect, messageId: null, error: null }
      rudCalls.push(entry)
      client[method](params, (err, data) => {
        if (err) entry.error = String(err?.message ?? err)
        try {
          const payload = decodeRudderPayload(data)
          debug('rudder-sdk-node batch (as sent, decoded)', payload)
          for (const m of payload?.batch ?? []) rudBatches.set(m.messageId, m)
        } catch (e) {
          entry.error = entry.error || `could not decode rudder payload: ${e.message}`
        }
        resolve()
      })
    })

  // rudder-sdk-node keeps the message object it enqueued; it assigns messageId in enqueue().
  // We cannot read it back from the call, so we match it in the sent batches by type+event.
  const done = [
    call(
      'identify',
      'identify',
      { userId: rudUser, traits: { email: rudEmail, name: 'Grace' } },
      { type: 'identify', userId: rudUser }
    ),
    call(
      'track Signed Up',
      'track',
      { userId: rudUser, event: 'Signed Up', properties: { plan: 'team', run: RUN, source: 'rudder-sdk-node' } },
      { type: 'track', event: 'Signed Up', userId: rudUser, properties: { plan: 'team', run: RUN } }
    ),
    call(
      'track Invited Teammate',
      'track',
      { userId: rudUser, event: 'Invited Teammate', properties: { seats: 3, run: RUN } },
      { type: 'track', event: 'Invited Teammate', userId: rudUser, properties: { seats: 3, run: RUN } }
    ),
  ]
  await withTimeout(client.flush(), 20000, 'rudder-sdk-node flush()')
  await withTimeout(Promise.all(done), 20000, 'rudder-sdk-node callbacks')

  for (const entry of rudCalls) {
    const m = [...rudBatches.values()].find(
      (b) => b.type === entry.type && (entry.event ? b.event === entry.event : true) && b.userId === entry.userId
    )
    entry.messageId = m?.messageId ?? null
  }
}

// ---------------------------------------------------------------------------
// 3. Verify through the Profile API
// ---------------------------------------------------------------------------
const authHeader = 'Basic ' + Buffer.from(`${SECRET_KEY}:`).toString('base64')

async function getJSON(url) {
  const res = await fetch(url, { headers: { Authorization: authHeader, Accept: 'application/json' } })
  const text = await res.text()
  let body
  try {
    body = JSON.parse(text)
  } catch {
    body = text
  }
  return { status: res.status, body }
}

async function fetchTimeline(userId) {
  const all = []
  let url = `${BASE}/v1/profiles/user_id:${encodeURIComponent(userId)}/events?limit=100`
  for (let page = 0; page < 20; page++) {
    const { status, body } = await getJSON(url)
    if (status !== 200) return { status, body, events: null }
    if (!body || !Array.isArray(body.data)) return { status, body, events: null, shapeError: 'no data array' }
    all.push(...body.data)
    const cur = body.cursor
    if (!cur || !cur.has_more) return { status, body, events: all }
    if (!cur.next) return { status, body, events: all, shapeError: 'cursor.has_more without cursor.next' }
    url = `${BASE}/v1/profiles/user_id:${encodeURIComponent(userId)}/events?limit=100&cursor=${encodeURIComponent(cur.next)}`
  }
  return { status: 200, events: all, shapeError: 'more than 20 pages' }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

// Poll until every expected messageId is on the timeline (or the deadline passes).
async function pollTimeline(userId, expectedIds) {
  const deadline = Date.now() + VERIFY_TIMEOUT_MS
  let last
  for (;;) {
    try {
      last = await fetchTimeline(userId)
    } catch (e) {
      last = { status: 0, body: String(e), events: null }
    }
    if (last.events && expectedIds.every((id) => last.events.some((e) => e.message_id === id))) return last
    if (Date.now() > deadline) return last
    await sleep(500)
  }
}

// The fields every event carries (the OpenAPI Event schema's required ones);
// optional ones such as event, name, traits are absent when empty.
const EVENT_FIELDS = [
  'seq', 'message_id', 'type', 'person_id', 'property_id', 'timestamp', 'received_at',
]

function verifyTimeline(lib, userId, calls, libraryName, tl) {
  const tag = `${lib} (${userId})`
  if (!check(tl.events !== null, `${tag}: GET profile events returns 200 with a data array`,
    `status ${tl.status} ${tl.shapeError ?? ''} body ${JSON.stringify(tl.body).slice(0, 300)}`)) return
  if (tl.shapeError) fail(`${tag}: ${tl.shapeError}`)
  const evs = tl.events
  const cursorOk = tl.body && typeof tl.body.cursor === 'object' && typeof tl.body.cursor.has_more === 'boolean'
  check(cursorOk, `${tag}: response has cursor.has_more (bool)`, JSON.stringify(tl.body?.cursor))

  const missingFields = new Set()
  for (const e of evs) for (const f of EVENT_FIELDS) if (!(f in e)) missingFields.add(f)
  check(missingFields.size === 0, `${tag}: every event row has the documented fields`, `missing ${[...missingFields].join(', ')}`)

  const ts = evs.map((e) => Date.parse(e.timestamp))
  const sorted = ts.every((t, i) => i === 0 || ts[i - 1] >= t)
  check(sorted, `${tag}: timeline is newest first by timestamp`, evs.map((e) => e.timestamp).join(' '))

  const persons = new Set(evs.map((e) => e.person_id))
  check(persons.size === 1 && !persons.has(null) && !persons.has(''), `${tag}: all timeline events share one person_id`,
    `person_ids: ${[...persons].join(', ')}`)

  for (const c of calls) {
    const what = `${tag}: ${c.label}`
    if (!c.messageId) {
      fail(`${what}: the library did not report a messageId (was it sent? ${c.error ?? ''})`)
      continue
    }
    const hits = evs.filter((e) => e.message_id === c.messageId)
    if (!check(hits.length === 1, `${what} is on the timeline exactly once`,
      `found ${hits.length} rows with message_id ${c.messageId}`)) continue
    const e = hits[0]
    const problems = []
    if (e.type !== c.type) problems.push(`type ${JSON.stringify(e.type)} != ${c.type}`)
    if (c.event !== undefined && e.event !== c.event) problems.push(`event ${JSON.stringify(e.event)} != ${c.event}`)
    if (c.name !== undefined && e.name !== c.name) problems.push(`name ${JSON.stringify(e.name)} != ${c.name}`)
    if (c.userId !== undefined && (e.user_id || null) !== c.userId) problems.push(`user_id ${JSON.stringify(e.user_id)} != ${JSON.stringify(c.userId)}`)
    if (c.anonymousId !== undefined && e.anonymous_id !== c.anonymousId) problems.push(`anonymous_id ${JSON.stringify(e.anonymous_id)} != ${c.anonymousId}`)
    for (const [k, v] of Object.entries(c.properties ?? {})) {
      if (e.properties?.[k] !== v) problems.push(`properties.${k} ${JSON.stringify(e.properties?.[k])} != ${JSON.stringify(v)}`)
    }
    const libName = e.context?.library?.name
    if (libName !== libraryName) problems.push(`context.library.name ${JSON.stringify(libName)} != ${JSON.stringify(libraryName)}`)
    check(problems.length === 0, `${what}: stored fields match what the library sent`, problems.join('; '))
  }
}

async function verifyTraits(lib, userId, email, name) {
  const tag = `${lib} (${userId})`
  const deadline = Date.now() + VERIFY_TIMEOUT_MS
  let last
  for (;;) {
    try {
      last = await getJSON(`${BASE}/v1/profiles/user_id:${encodeURIComponent(userId)}/traits`)
    } catch (e) {
      last = { status: 0, body: String(e) }
    }
    if (last.status === 200 && last.body?.traits?.email === email) break
    if (Date.now() > deadline) break
    await sleep(500)
  }
  const t = last.body?.traits
  if (!check(last.status === 200 && t && typeof t === 'object', `${tag}: GET profile traits returns 200 with a traits object`,
    `status ${last.status} body ${JSON.stringify(last.body).slice(0, 300)}`)) return
  check(t.email === email, `${tag}: traits.email is ${email}`, `got ${JSON.stringify(t.email)}`)
  check(t.name === name, `${tag}: traits.name is ${name}`, `got ${JSON.stringify(t.name)}`)
}

// ---------------------------------------------------------------------------
async function main() {
  console.log(`segment-clients: run ${RUN} against ${BASE}`)

  // --- send with analytics-node
  try {
    await runSegment()
  } catch (e) {
    fail(`@segment/analytics-node: sending failed: ${e.message}`)
  }
  check(segErrors.length === 0, '@segment/analytics-node: no delivery errors', segErrors.join('; '))
  check(segCalls.every((c) => !c.error), '@segment/analytics-node: every call callback succeeded',
    segCalls.filter((c) => c.error).map((c) => `${c.label}: ${c.error}`).join('; '))
  // A batch may be retried after a 5xx/429 (same messageIds, new sentAt, X-Retry-Count header);
  // what matters is that each batch was finally accepted.
  const batchKey = (bodyText) => {
    try {
      return (JSON.parse(bodyText).batch ?? []).map((m) => m.messageId).join(',')
    } catch {
      return bodyText
    }
  }
  const segBodies = [...new Set(segWire.map((w) => batchKey(w.rawBody)))]
  const unaccepted = segBodies.filter(
    (k) => !segResponses.some((r) => batchKey(r.body) === k && r.status >= 200 && r.status < 300)
  )
  check(segBodies.length > 0 && unaccepted.length === 0,
    `@segment/analytics-node: every POST /v1/batch was answered 2xx (${segBodies.length} batches, statuses ${segResponses.map((r) => r.status).join(',')})`,
    `${unaccepted.length} batch(es) never got a 2xx`)
  const segWireIds = new Set(segWire.flatMap((w) => (w.body?.batch ?? []).map((m) => m.messageId)))
  check(segCalls.every((c) => c.messageId && segWireIds.has(c.messageId)),
    '@segment/analytics-node: every call messageId was seen on the wire',
    segCalls.filter((c) => !segWireIds.has(c.messageId)).map((c) => c.label).join(', '))

  // --- send with rudder-sdk-node
  try {
    await runRudder()
  } catch (e) {
    fail(`@rudderstack/rudder-sdk-node: sending failed: ${e.message}`)
  }
  check(rudErrors.length === 0, '@rudderstack/rudder-sdk-node: no delivery errors', rudErrors.join('; '))
  check(rudCalls.every((c) => !c.error), '@rudderstack/rudder-sdk-node: every call callback succeeded',
    rudCalls.filter((c) => c.error).map((c) => `${c.label}: ${c.error}`).join('; '))
  check(rudCalls.every((c) => c.messageId), '@rudderstack/rudder-sdk-node: every call messageId was seen in a sent batch',
    rudCalls.filter((c) => !c.messageId).map((c) => c.label).join(', '))

  if (failed) {
    console.log('segment-clients: not verifying through the Profile API because sending failed')
    finish()
  }

  // --- verify
  const segTl = await pollTimeline(segUser, segCalls.map((c) => c.messageId))
  verifyTimeline('@segment/analytics-node', segUser, segCalls, SEGMENT_LIBRARY_NAME, segTl)
  const anon = segCalls.find((c) => c.anonymousId === segAnon && c.type === 'track')
  check(segTl.events?.some((e) => e.message_id === anon.messageId && e.anonymous_id === segAnon),
    `@segment/analytics-node: anonymous event (anonymousId ${segAnon}) is on ${segUser}'s timeline`)
  await verifyTraits('@segment/analytics-node', segUser, segEmail, 'Ada')

  const rudTl = await pollTimeline(rudUser, rudCalls.map((c) => c.messageId))
  verifyTimeline('@rudderstack/rudder-sdk-node', rudUser, rudCalls, RUDDER_LIBRARY_NAME, rudTl)
  await verifyTraits('@rudderstack/rudder-sdk-node', rudUser, rudEmail, 'Grace')

  // the two people must be distinct
  const sp = segTl.events?.[0]?.person_id, rp = rudTl.events?.[0]?.person_id
  check(sp && rp && sp !== rp, 'seg-node and rudder-node users are different people', `${sp} vs ${rp}`)

  finish()
}

main().catch((e) => {
  fail(`unexpected error: ${e.stack || e}`)
  finish()
})
