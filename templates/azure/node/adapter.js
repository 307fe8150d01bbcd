'use strict';
// ferry's Azure Functions adapter for Node.js handlers written in the AWS Lambda shape.
//
// Every Azure function of the app points its `scriptFile` here (the v3 programming model) with
// an entry point per trigger kind (`http`, `queue`, `timer`, `event`). The adapter reads
// `ferry/functions.json` (written by `ferry package --provider azure`) to learn which handler an
// Azure function runs and what its trigger looks like in the manifest, turns the invocation into
// neutral fields, and hands them to `ferry/lambda.js` (templates/adapters/node/lambda.js, shared
// with the other providers), which builds the event the handler gets on AWS Lambda and under
// `ferry dev` (API Gateway HTTP API 2.0 or REST 1.0, SQS, EventBridge Scheduled Event, S3, SNS)
// and calls the handler with a Lambda-style context. The result is mapped back: an HTTP
// response, or a thrown error so that Azure retries the message (a queue handler's
// `batchItemFailures` fail the message, as on SQS with partial batch responses).
//
// Only Node's standard library is used.

const crypto = require('node:crypto');
const path = require('node:path');
const lambda = require('./lambda.js');

function account() {
  // WEBSITE_OWNER_NAME is `<subscription>+<resource group>-<region>webspace`.
  return (process.env.WEBSITE_OWNER_NAME || '').split('+')[0] || '000000000000';
}

function site() {
  return process.env.WEBSITE_SITE_NAME || 'local';
}

lambda.configure({
  root: path.resolve(__dirname, '..'),
  manifestPath: path.join(__dirname, 'functions.json'),
  accountId: account,
  apiId: site,
  logGroupName: () => `/azure/functions/${site()}`,
  logStreamName: () => process.env.WEBSITE_INSTANCE_ID || 'local',
});

function entry(azureName) {
  const fn = lambda.manifest().functions[azureName];
  if (!fn) {
    throw new Error(
      `ferry: ${azureName} is not in ferry/functions.json; the package is stale, run ferry deploy again`,
    );
  }
  return fn;
}

async function run(azureName, event, requestId) {
  return lambda.invoke(entry(azureName), event, requestId);
}

const { httpEvent, httpResponse, scheduleEvent, checkQueueResult } = lambda;

// --- Azure events -> neutral fields ----------------------------------------------------------

// The SQS event for one Azure Storage queue message.
function queueEvent(trigger, messageId, body, dequeueCount, insertedMs) {
  return lambda.queueEvent(trigger, {
    messageId,
    body,
    receiveCount: dequeueCount,
    sentMs: insertedMs,
    senderId: 'azure-storage-queue',
  });
}

// The S3 notification for an Event Grid Microsoft.Storage.Blob* event.
function storageEvent(trigger, ev) {
  const data = ev.data || {};
  const subject = ev.subject || '';
  const i = subject.indexOf('/blobs/');
  const created = (ev.eventType || '').endsWith('BlobCreated');
  return lambda.s3Event(trigger, {
    key: i < 0 ? '' : subject.slice(i + '/blobs/'.length),
    created,
    size: data.contentLength || 0,
    eTag: String(data.eTag || '').replace(/^"|"$/g, ''),
    sequencer: data.sequencer || '',
    time: ev.eventTime || '',
    configurationId: ev.topic || 'ferry',
    principalId: data.clientRequestId || '',
  });
}

// The SNS notification for an Event Grid event published on the topic.
function topicEvent(trigger, ev) {
  return lambda.snsEvent(trigger, {
    id: ev.id,
    subject: ev.subject,
    message: typeof ev.data === 'string' ? ev.data : JSON.stringify(ev.data),
    time: ev.eventTime || '',
  });
}

// `a=1; Path=/; HttpOnly` -> the v3 model's cookie object.
function cookie(text) {
  const [pair, ...attrs] = text.split(';').map((s) => s.trim());
  const eq = pair.indexOf('=');
  const c = { name: pair.slice(0, eq), value: pair.slice(eq + 1) };
  for (const a of attrs) {
    const [k, ...rest] = a.split('=');
    const v = rest.join('=');
    switch (k.toLowerCase()) {
      case 'domain': c.domain = v; break;
      case 'path': c.path = v; break;
      case 'expires': c.expires = new Date(v); break;
      case 'max-age': c.maxAge = Number(v); break;
      case 'secure': c.secure = true; break;
      case 'httponly': c.httpOnly = true; break;
      case 'samesite': c.sameSite = v.charAt(0).toUpperCase() + v.slice(1).toLowerCase(); break;
      default: break;
    }
  }
  return c;
}

function requestBody(req) {
  if (Buffer.isBuffer(req.bufferBody)) return req.bufferBody;
  if (typeof req.rawBody === 'string') return Buffer.from(req.rawBody, 'utf8');
  if (Buffer.isBuffer(req.rawBody)) return req.rawBody;
  if (Buffer.isBuffer(req.body)) return req.body;
  if (req.body == null) return Buffer.alloc(0);
  return Buffer.from(typeof req.body === 'string' ? req.body : JSON.stringify(req.body));
}

const azureName = (context) => context.executionContext.functionName;
const requestIdOf = (context) => context.invocationId || crypto.randomUUID();

// --- Azure entry points (function.json's entryPoint) -----------------------------------------

async function http(context, req) {
  const name = azureName(context);
  const { trigger } = entry(name);
  const rid = requestIdOf(context);
  const event = httpEvent(trigger, req.method.toUpperCase(), req.url, Object.entries(req.headers || {}), requestBody(req), req.params, rid);
  const out = httpResponse(trigger, await run(name, event, rid));
  const headers = {};
  const cookies = [];
  for (const [k, v] of out.headers) {
    if (k === 'set-cookie') cookies.push(cookie(v));
    else headers[k] = k in headers ? `${headers[k]}, ${v}` : v;
  }
  return { status: out.status, headers, body: out.body, isRaw: true, cookies };
}

async function queue(context, message) {
  const name = azureName(context);
  const { trigger } = entry(name);
  const b = context.bindingData || {};
  let body;
  if (typeof b.queueTrigger === 'string') body = b.queueTrigger;
  else if (typeof message === 'string') body = message;
  else if (Buffer.isBuffer(message)) body = message.toString('utf8');
  else body = JSON.stringify(message);
  const inserted = b.insertionTime ? Date.parse(b.insertionTime) : Date.now();
  const event = queueEvent(trigger, String(b.id || requestIdOf(context)), body, b.dequeueCount || 1, inserted);
  checkQueueResult(await run(name, event, requestIdOf(context)));
}

async function timer(context) {
  const name = azureName(context);
  const rid = requestIdOf(context);
  await run(name, scheduleEvent(entry(name).trigger, rid), rid);
}

async function event(context, ev) {
  const name = azureName(context);
  const { trigger } = entry(name);
  const built = trigger.kind === 'storage' ? storageEvent(trigger, ev) : topicEvent(trigger, ev);
  await run(name, built, requestIdOf(context));
}

module.exports = { http, queue, timer, event, httpEvent, httpResponse, queueEvent, scheduleEvent, storageEvent, topicEvent, checkQueueResult, run };
