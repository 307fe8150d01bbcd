'use strict';
// ferry's Google Cloud Functions adapter for Node.js handlers written in the AWS Lambda shape.
//
// The function's source zip has this file as `ferry/index.js` (the root package.json's "main"),
// `ferry/lambda.js` (templates/adapters/node/lambda.js) and `ferry/functions.json` (written by
// `ferry package --provider gcp`) next to it, and the function's own files at the root. Google's
// Functions Framework (@google-cloud/functions-framework) calls `ferry(req, res)` (the HTTP
// signature: Express req/res, `req.rawBody` the raw Buffer) for every request:
//
//   POST /_ferry/events/<id>   a delivery for the event trigger `<id>` of functions.json: a
//                              Pub/Sub push (queue, topic), a Cloud Scheduler job (schedule) or
//                              an Eventarc CloudEvent (storage); 204 when the handler succeeded,
//                              500 when it failed, so that Pub/Sub or Eventarc redelivers
//   anything else              an HTTP request, routed to the function's http triggers and
//                              answered as `ferry dev`'s gateway answers it
//
// The event the handler gets is the one it gets on AWS Lambda and under `ferry dev` (API Gateway
// HTTP API 2.0 or REST 1.0, SQS, EventBridge Scheduled Event, S3, SNS).
//
// Only Node's standard library is used.

const crypto = require('node:crypto');
const path = require('node:path');
const lambda = require('./lambda.js');

const EVENTS_PREFIX = '/_ferry/events/';

let selected = null;

// The functions.json entry this deployment runs: FERRY_FUNCTION, or the only one.
function current() {
  if (selected !== null) return selected;
  const functions = lambda.manifest().functions || {};
  const names = Object.keys(functions);
  const name = process.env.FERRY_FUNCTION || (names.length === 1 ? names[0] : undefined);
  if (name === undefined) {
    throw new Error(`ferry: FERRY_FUNCTION is not set and ferry/functions.json has ${names.length} functions`);
  }
  if (!functions[name]) {
    throw new Error(`ferry: ${name} is not in ferry/functions.json; the package is stale, run ferry deploy again`);
  }
  selected = functions[name];
  return selected;
}

const service = () => process.env.K_SERVICE || current().function;

lambda.configure({
  root: path.resolve(__dirname, '..'),
  manifestPath: path.join(__dirname, 'functions.json'),
  accountId: () => lambda.manifest().project || '000000000000',
  apiId: service,
  logGroupName: () => `/gcp/functions/${service()}`,
  logStreamName: () => process.env.K_REVISION || 'local',
});

// The trace id of `x-cloud-trace-context: TRACE/SPAN;o=1` or `traceparent: 00-TRACE-SPAN-01`.
function traceId(req) {
  const cloud = req.get('x-cloud-trace-context');
  if (cloud && cloud.split('/')[0]) return cloud.split('/')[0];
  const parent = (req.get('traceparent') || '').split('-');
  if (parent.length >= 4 && parent[1]) return parent[1];
  return null;
}

function rawBody(req) {
  if (Buffer.isBuffer(req.rawBody)) return req.rawBody;
  if (Buffer.isBuffer(req.body)) return req.body;
  if (typeof req.body === 'string') return Buffer.from(req.body, 'utf8');
  return Buffer.alloc(0);
}

// [name, value] pairs as received (repeated headers stay separate, as ferry dev sees them).
function headerPairs(req) {
  const out = [];
  const raw = req.rawHeaders || [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i], raw[i + 1]]);
  return out;
}

function send(res, { status, headers, body }) {
  const grouped = new Map();
  for (const [k, v] of headers) {
    if (!grouped.has(k)) grouped.set(k, []);
    grouped.get(k).push(v);
  }
  res.status(status);
  for (const [k, vs] of grouped) res.setHeader(k, vs.length === 1 && k !== 'set-cookie' ? vs[0] : vs);
  res.end(body);
}

function fail(res, status, text) {
  send(res, lambda.message(status, text));
}

// --- HTTP -----------------------------------------------------------------------------------

async function httpRequest(fn, req, res) {
  const method = req.method.toUpperCase();
  // The path as sent (still percent-encoded), the query string untouched.
  const url = req.originalUrl || req.url;
  const rawPath = url.split('?')[0] || '/';
  const headers = headerPairs(req);
  const found = lambda.findRoute(fn.http || [], method, rawPath);
  if (found === null) return send(res, lambda.unrouted(fn.http || [], method, rawPath, headers));
  const { trigger, params } = found;
  const rid = traceId(req) || crypto.randomUUID();
  const forwarded = (req.get('x-forwarded-for') || '').split(',')[0].trim();
  const peer = (req.socket && req.socket.remoteAddress) || '';
  const ip = forwarded || peer.replace(/^::ffff:/, '') || undefined;
  const event = lambda.httpEvent(trigger, method, url, headers, rawBody(req), params, rid, ip);
  let out;
  try {
    out = lambda.httpResponse(trigger, await lambda.invoke(fn, event, rid));
  } catch (err) {
    console.error(`ferry: ${fn.function} failed: ${(err && err.stack) || err}`);
    out = lambda.handlerFailed(trigger);
  }
  send(res, lambda.withCors(trigger, out));
}

// --- event deliveries -----------------------------------------------------------------------

function json(buf) {
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch {
    return undefined;
  }
}

// A Pub/Sub push body: { message: { data, attributes, messageId, publishTime }, subscription,
// deliveryAttempt }.
function pushMessage(req) {
  const push = json(rawBody(req));
  if (!push || typeof push !== 'object' || !push.message || typeof push.message !== 'object') return null;
  const m = push.message;
  return {
    id: String(m.messageId || m.message_id || ''),
    data: Buffer.from(m.data || '', 'base64').toString('utf8'),
    attributes: m.attributes || {},
    publishTime: m.publishTime || m.publish_time || '',
    subscription: push.subscription,
    deliveryAttempt: push.deliveryAttempt,
  };
}

// An Eventarc CloudEvent in binary mode (ce-* headers, the GCS object as the body) or
// structured mode (application/cloudevents+json).
function cloudEvent(req) {
  const ct = (req.get('content-type') || '').split(';')[0].trim().toLowerCase();
  if (ct === 'application/cloudevents+json') {
    const e = json(rawBody(req));
    if (!e || typeof e !== 'object') return null;
    let data = e.data;
    if (data === undefined && typeof e.data_base64 === 'string') data = json(Buffer.from(e.data_base64, 'base64'));
    return { type: e.type, id: e.id, time: e.time, subject: e.subject, source: e.source, data: data || {} };
  }
  if (!req.get('ce-type')) return null;
  return {
    type: req.get('ce-type'),
    id: req.get('ce-id'),
    time: req.get('ce-time'),
    subject: req.get('ce-subject'),
    source: req.get('ce-source'),
    data: json(rawBody(req)) || {},
  };
}

// GCS's generation (microseconds, decimal) as S3's sequencer (16 upper-case hex digits).
function sequencer(generation) {
  try {
    return BigInt(String(generation)).toString(16).toUpperCase().padStart(16, '0');
  } catch {
    return '';
  }
}

// S3's eTag is the hex MD5 of the object; GCS gives it in base64 (md5Hash), else its own etag.
function eTag(data) {
  if (typeof data.md5Hash === 'string' && data.md5Hash !== '') {
    return Buffer.from(data.md5Hash, 'base64').toString('hex');
  }
  return String(data.etag || '');
}

// Builds the event for a delivery: { event, requestId, queue } or { skip: true } (a storage
// object the trigger does not take) or { error: [status, text] }.
function delivery(id, trigger, req) {
  switch (trigger.kind) {
    case 'queue': {
      const m = pushMessage(req);
      if (!m) return { error: [400, 'not a Pub/Sub push request'] };
      const rid = m.id || crypto.randomUUID();
      const sent = Date.parse(m.publishTime);
      const event = lambda.queueEvent(trigger, {
        messageId: rid,
        body: m.data,
        receiveCount: m.deliveryAttempt || 1,
        sentMs: Number.isNaN(sent) ? Date.now() : sent,
        senderId: 'google-cloud-pubsub',
        attributes: m.attributes,
      });
      return { event, requestId: rid, queue: true };
    }
    case 'topic': {
      const m = pushMessage(req);
      if (!m) return { error: [400, 'not a Pub/Sub push request'] };
      const rid = m.id || crypto.randomUUID();
      const event = lambda.snsEvent(trigger, {
        id: rid,
        subject: null,
        message: m.data,
        time: m.publishTime,
        attributes: m.attributes,
      });
      return { event, requestId: rid };
    }
    case 'schedule': {
      const rid = traceId(req) || crypto.randomUUID();
      const due = Date.parse(req.get('x-cloudscheduler-scheduletime') || '');
      return { event: lambda.scheduleEvent(trigger, rid, Number.isNaN(due) ? undefined : new Date(due)), requestId: rid };
    }
    case 'storage': {
      const e = cloudEvent(req);
      if (!e) return { error: [400, 'not a CloudEvent'] };
      const type = String(e.type || '');
      let created;
      if (type.endsWith('.finalized')) created = true;
      else if (type.endsWith('.deleted')) created = false;
      else return { skip: true };
      const data = e.data || {};
      const subject = String(e.subject || '');
      const key = typeof data.name === 'string' ? data.name : subject.replace(/^objects\//, '');
      if (!lambda.storageWants(trigger, key, created)) return { skip: true };
      const rid = e.id || crypto.randomUUID();
      const event = lambda.s3Event(trigger, {
        key,
        created,
        size: Number(data.size || 0),
        eTag: eTag(data),
        sequencer: sequencer(data.generation),
        time: e.time || '',
        configurationId: id,
        principalId: '',
      });
      return { event, requestId: rid };
    }
    default:
      return { error: [500, `ferry: event trigger ${id} has an unknown kind ${trigger.kind}`] };
  }
}

async function eventRequest(fn, id, req, res) {
  const trigger = Object.prototype.hasOwnProperty.call(fn.events || {}, id) ? fn.events[id] : undefined;
  if (!trigger) return fail(res, 404, 'Not Found');
  const d = delivery(id, trigger, req);
  if (d.error) return fail(res, d.error[0], d.error[1]);
  if (d.skip) return res.status(204).end();
  try {
    const result = await lambda.invoke(fn, d.event, d.requestId);
    if (d.queue) lambda.checkQueueResult(result);
  } catch (err) {
    console.error(`ferry: ${fn.function} failed on ${id} (${d.requestId}): ${(err && err.stack) || err}`);
    return fail(res, 500, 'the handler failed; the event is delivered again');
  }
  res.status(204).end();
}

// --- the Functions Framework's entry point (--target=ferry) ---------------------------------

async function ferry(req, res) {
  try {
    const fn = current();
    const rawPath = (req.originalUrl || req.url).split('?')[0];
    if (req.method === 'POST' && rawPath.startsWith(EVENTS_PREFIX)) {
      let id = rawPath.slice(EVENTS_PREFIX.length);
      try {
        id = decodeURIComponent(id);
      } catch {
        // an id with a stray `%` matches no trigger: 404 below
      }
      return await eventRequest(fn, id, req, res);
    }
    return await httpRequest(fn, req, res);
  } catch (err) {
    console.error(`ferry: ${(err && err.stack) || err}`);
    if (!res.headersSent) fail(res, 500, 'Internal Server Error');
    else res.end();
  }
}

module.exports = { ferry };
