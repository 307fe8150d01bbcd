'use strict';
// ferry's Azure Functions adapter for Node.js handlers written in the AWS Lambda shape.
//
// Every Azure function of the app points its `scriptFile` here (the v3 programming model) with
// an entry point per trigger kind (`http`, `queue`, `timer`, `event`). The adapter reads
// `ferry/functions.json` (written by `ferry package --provider azure`) to learn which handler an
// Azure function runs and what its trigger looks like in the manifest, turns the invocation into
// the event the handler gets on AWS Lambda and under `ferry dev` (API Gateway HTTP API 2.0 or
// REST 1.0, SQS, EventBridge Scheduled Event, S3, SNS), calls the handler with a Lambda-style
// context (async, callback and context.succeed/fail handlers), and maps the result back: an
// HTTP response, or a thrown error so that Azure retries the message (a queue handler's
// `batchItemFailures` fail the message, as on SQS with partial batch responses).
//
// Only Node's standard library is used.

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { pathToFileURL } = require('node:url');

const APP_ROOT = path.resolve(__dirname, '..');
let manifest = null;
const handlers = new Map();

function loadManifest() {
  if (manifest === null) {
    manifest = JSON.parse(fs.readFileSync(path.join(__dirname, 'functions.json'), 'utf8'));
  }
  return manifest;
}

function entry(azureName) {
  const fn = loadManifest().functions[azureName];
  if (!fn) {
    throw new Error(
      `ferry: ${azureName} is not in ferry/functions.json; the package is stale, run ferry deploy again`,
    );
  }
  return fn;
}

function isFile(file) {
  return fs.statSync(file, { throwIfNoEntry: false })?.isFile() === true;
}

// `dir/sub/module.export.path`, read as AWS's node runtime reads it: the module is the last path
// segment up to its first dot, the rest a property path.
async function loadHandler(full) {
  if (handlers.has(full)) return handlers.get(full);
  const slash = full.lastIndexOf('/');
  const base = full.slice(slash + 1);
  const dot = base.indexOf('.');
  if (dot < 0) throw new Error(`Bad handler '${full}'`);
  const file = path.resolve(APP_ROOT, full.slice(0, slash + 1), base.slice(0, dot));
  let mod;
  if (isFile(file)) mod = require(file);
  else {
    const ext = ['.js', '.mjs', '.cjs'].find((e) => isFile(file + e));
    if (!ext) throw new Error(`Cannot find module '${full.slice(0, slash + 1)}${base.slice(0, dot)}' in ${APP_ROOT}`);
    mod = await import(pathToFileURL(file + ext).href);
  }
  const keys = base.slice(dot + 1).split('.');
  const lookup = (o) => keys.reduce((n, k) => n && n[k], o);
  let fn = lookup(mod);
  if (fn == null && mod != null && mod.default != null) fn = lookup(mod.default);
  if (typeof fn !== 'function') throw new Error(`${full} is undefined or not a function`);
  handlers.set(full, fn);
  return fn;
}

// Calls a Lambda handler: the first of its promise, callback or context.succeed/fail/done wins.
function callHandler(handler, event, fn, requestId) {
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (err, value) => {
      if (done) return;
      done = true;
      if (err != null) reject(err instanceof Error ? err : new Error(String(err)));
      else resolve(value);
    };
    const deadline = Date.now() + fn.timeout * 1000;
    const context = {
      callbackWaitsForEmptyEventLoop: true,
      functionName: fn.function,
      functionVersion: '$LATEST',
      memoryLimitInMB: String(fn.memory),
      invokedFunctionArn: fn.id || fn.function,
      awsRequestId: requestId,
      logGroupName: `/azure/functions/${process.env.WEBSITE_SITE_NAME || 'local'}`,
      logStreamName: process.env.WEBSITE_INSTANCE_ID || 'local',
      getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
      succeed: (v) => finish(null, v),
      fail: (e) => finish(e == null ? new Error('handled') : e),
      done: (e, v) => finish(e, v),
    };
    try {
      const result = handler(event, context, (err, value) => finish(err, value));
      if (result != null && typeof result.then === 'function') {
        result.then((v) => finish(null, v), (e) => finish(e == null ? new Error('rejected') : e));
      } else if (result !== undefined && handler.length < 3) {
        finish(null, result);
      }
    } catch (err) {
      finish(err);
    }
  });
}

async function run(azureName, event, requestId) {
  const fn = entry(azureName);
  return callHandler(await loadHandler(fn.handler), event, fn, requestId);
}

// --- events ---------------------------------------------------------------------------------

const TEXT_TYPES = new Set([
  'application/json',
  'application/xml',
  'application/javascript',
  'application/x-www-form-urlencoded',
  'application/graphql',
]);

function isText(contentType) {
  if (contentType == null) return true;
  const ct = contentType.split(';')[0].trim().toLowerCase();
  return ct === '' || ct.startsWith('text/') || ct.endsWith('+json') || ct.endsWith('+xml') || TEXT_TYPES.has(ct);
}

function decode(s) {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

function decodePath(s) {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function parseQuery(q) {
  return q
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const i = p.indexOf('=');
      return i < 0 ? [decode(p), ''] : [decode(p.slice(0, i)), decode(p.slice(i + 1))];
    });
}

function apiTime(d) {
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n) => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())}/${months[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

function account() {
  // WEBSITE_OWNER_NAME is `<subscription>+<resource group>-<region>webspace`.
  return (process.env.WEBSITE_OWNER_NAME || '').split('+')[0] || '000000000000';
}

function site() {
  return process.env.WEBSITE_SITE_NAME || 'local';
}

function bodyField(single, body) {
  if (!body || body.length === 0) return [undefined, false];
  if (isText(single['content-type'])) {
    const text = new TextDecoder('utf-8', { fatal: true });
    try {
      return [text.decode(body), false];
    } catch {
      // not UTF-8: base64 below
    }
  }
  return [body.toString('base64'), true];
}

// `/items/{id}` against `/items/a%20b` -> { id: 'a b' } (decoded, `+` kept, as the local runtime
// gives them); null when it does not match.
function matchPath(template, rawPath) {
  const want = template.replace(/^\/+|\/+$/g, '').split('/');
  const got = rawPath.replace(/^\/+|\/+$/g, '').split('/');
  const out = {};
  for (let i = 0; i < want.length; i++) {
    const seg = want[i];
    if (seg.startsWith('{') && seg.endsWith('+}')) {
      out[seg.slice(1, -2)] = decodePath(got.slice(i).join('/'));
      return out;
    }
    if (i >= got.length) return null;
    if (seg.startsWith('{') && seg.endsWith('}')) out[seg.slice(1, -1)] = decodePath(got[i]);
    else if (seg !== got[i]) return null;
  }
  return got.length === want.length ? out : null;
}

// The API Gateway event for a request. headers: [name, value] pairs; body: a Buffer;
// params: the route parameters Azure matched (`{*proxy}` is `proxy`, API Gateway's name too).
function httpEvent(trigger, method, url, headers, body, params, requestId, sourceIp) {
  headers = headers.map(([k, v]) => [k.toLowerCase(), String(v)]);
  const u = new URL(url, 'http://localhost');
  const rawPath = u.pathname || '/';
  const query = u.search.startsWith('?') ? u.search.slice(1) : u.search;
  const single = {};
  for (const [k, v] of headers) single[k] = k in single ? `${single[k]},${v}` : v;
  const domain = single.host || u.host;
  const ip = sourceIp || (single['x-forwarded-for'] || '').split(',')[0].trim() || '127.0.0.1';
  // Path parameters come from the raw path, matched against the manifest's route (so they
  // decode exactly as under `ferry dev`); Azure's route values are the fallback (`{*proxy}` is
  // `proxy` there too).
  let pathParameters = matchPath(trigger.path, rawPath);
  if (pathParameters === null) {
    pathParameters = {};
    for (const [k, v] of Object.entries(params || {})) if (v != null) pathParameters[k] = String(v);
  }
  const routeKey = `${trigger.method} ${trigger.path}`;
  const now = new Date();
  const [text, b64] = bodyField(single, body);
  if (trigger.payload === 'lambda') {
    // The Serverless Framework's default request template for `integration: lambda`.
    let parsed = {};
    if (body.length) {
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        parsed = body.toString('utf8');
      }
    }
    return {
      body: parsed,
      method,
      principalId: '',
      stage: loadManifest().stage || 'dev',
      cognitoPoolClaims: { sub: '' },
      enhancedAuthContext: {},
      headers: Object.fromEntries(headers),
      query: Object.fromEntries(parseQuery(query)),
      path: pathParameters,
      identity: { sourceIp: ip, userAgent: single['user-agent'] ?? null },
      stageVariables: {},
      requestPath: trigger.path,
    };
  }
  if (trigger.payload === '1.0') {
    const qs = {};
    const mqs = {};
    for (const [k, v] of parseQuery(query)) {
      qs[k] = v;
      (mqs[k] ||= []).push(v);
    }
    const last = {};
    const multi = {};
    for (const [k, v] of headers) {
      last[k] = v;
      (multi[k] ||= []).push(v);
    }
    const orNull = (o) => (Object.keys(o).length ? o : null);
    return {
      resource: trigger.path,
      path: rawPath,
      httpMethod: method,
      headers: orNull(last),
      multiValueHeaders: orNull(multi),
      queryStringParameters: orNull(qs),
      multiValueQueryStringParameters: orNull(mqs),
      pathParameters: orNull(pathParameters),
      stageVariables: null,
      requestContext: {
        accountId: account(),
        apiId: site(),
        domainName: domain,
        httpMethod: method,
        path: rawPath,
        protocol: 'HTTP/1.1',
        requestId,
        requestTime: apiTime(now),
        requestTimeEpoch: now.getTime(),
        resourcePath: trigger.path,
        stage: loadManifest().stage || 'dev',
        identity: { sourceIp: ip, userAgent: single['user-agent'] ?? null },
      },
      body: text ?? null,
      isBase64Encoded: b64,
    };
  }
  const cookies = [];
  for (const [k, v] of headers) {
    if (k === 'cookie') cookies.push(...v.split(';').map((c) => c.trim()).filter((c) => c !== ''));
  }
  delete single.cookie;
  const qs = {};
  for (const [k, v] of parseQuery(query)) qs[k] = k in qs ? `${qs[k]},${v}` : v;
  const event = {
    version: '2.0',
    routeKey,
    rawPath,
    rawQueryString: query,
    headers: single,
    requestContext: {
      accountId: account(),
      apiId: site(),
      domainName: domain,
      domainPrefix: domain.split('.')[0],
      http: { method, path: rawPath, protocol: 'HTTP/1.1', sourceIp: ip, userAgent: single['user-agent'] || '' },
      requestId,
      routeKey,
      stage: '$default',
      time: apiTime(now),
      timeEpoch: now.getTime(),
    },
    isBase64Encoded: b64,
  };
  if (cookies.length) event.cookies = cookies;
  if (Object.keys(qs).length) event.queryStringParameters = qs;
  if (Object.keys(pathParameters).length) event.pathParameters = pathParameters;
  if (text !== undefined) event.body = text;
  return event;
}

const scalar = (v) => (typeof v === 'string' ? v : JSON.stringify(v));

// { status, headers: [[name, value]], body: Buffer } for a handler's result, by API Gateway's rules.
function httpResponse(trigger, result) {
  const json = [['content-type', 'application/json']];
  const error = () => ({ status: 502, headers: json, body: Buffer.from('{"message":"Internal Server Error"}') });
  if (result === undefined) result = null;
  if (trigger.payload === 'lambda') return { status: 200, headers: json, body: Buffer.from(JSON.stringify(result)) };
  const structured = result !== null && typeof result === 'object' && !Array.isArray(result) && 'statusCode' in result;
  if (!structured) {
    if (trigger.payload === '1.0') return { status: 502, headers: json, body: Buffer.from('{"message":"Internal server error"}') };
    return { status: 200, headers: json, body: Buffer.from(typeof result === 'string' ? result : JSON.stringify(result)) };
  }
  let status = Number.parseInt(result.statusCode, 10);
  if (Number.isNaN(status)) status = 500;
  if (status < 0 || status > 65535) return error();
  const headers = [];
  for (const [k, v] of Object.entries(result.headers || {})) headers.push([k.toLowerCase(), scalar(v)]);
  for (const [k, vs] of Object.entries(result.multiValueHeaders || {})) {
    for (const v of vs || []) headers.push([k.toLowerCase(), scalar(v)]);
  }
  for (const c of result.cookies || []) headers.push(['set-cookie', scalar(c)]);
  let body;
  if (result.body == null) body = Buffer.alloc(0);
  else if (typeof result.body === 'string' && result.isBase64Encoded === true) {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(result.body) || result.body.length % 4 !== 0) return error();
    body = Buffer.from(result.body, 'base64');
  } else if (typeof result.body === 'string') body = Buffer.from(result.body);
  else body = Buffer.from(JSON.stringify(result.body));
  if (body.length && !headers.some(([k]) => k === 'content-type')) headers.push(...json);
  return { status, headers, body };
}

const md5 = (s) => crypto.createHash('md5').update(s).digest('hex');

// The SQS event for one Azure Storage queue message.
function queueEvent(trigger, messageId, body, dequeueCount, insertedMs) {
  return {
    Records: [
      {
        messageId,
        receiptHandle: messageId,
        body,
        attributes: {
          ApproximateReceiveCount: String(dequeueCount),
          SentTimestamp: String(insertedMs),
          SenderId: 'azure-storage-queue',
          ApproximateFirstReceiveTimestamp: String(Date.now()),
        },
        messageAttributes: {},
        md5OfBody: md5(body),
        eventSource: 'aws:sqs',
        eventSourceARN: trigger.id || trigger.queue,
        awsRegion: loadManifest().region || '',
      },
    ],
  };
}

// EventBridge's Scheduled Event (or the trigger's fixed input).
function scheduleEvent(trigger, requestId) {
  if (trigger.input != null) return trigger.input;
  return {
    version: '0',
    id: requestId,
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: account(),
    time: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region: loadManifest().region || '',
    resources: [trigger.id || trigger.rule],
    detail: {},
  };
}

// S3 event keys are URL-encoded with spaces as `+`, slashes kept.
const encodeKey = (key) =>
  key
    .split('/')
    .map((p) => encodeURIComponent(p).replace(/%20/g, '+').replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
    .join('/');

// The S3 notification for an Event Grid Microsoft.Storage.Blob* event.
function storageEvent(trigger, ev) {
  const data = ev.data || {};
  const subject = ev.subject || '';
  const i = subject.indexOf('/blobs/');
  const key = i < 0 ? '' : subject.slice(i + '/blobs/'.length);
  const created = (ev.eventType || '').endsWith('BlobCreated');
  const object = { key: encodeKey(key), sequencer: data.sequencer || '' };
  if (created) {
    object.size = data.contentLength || 0;
    object.eTag = String(data.eTag || '').replace(/^"|"$/g, '');
  }
  return {
    Records: [
      {
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        awsRegion: loadManifest().region || '',
        eventTime: ev.eventTime || '',
        eventName: created ? 'ObjectCreated:Put' : 'ObjectRemoved:Delete',
        userIdentity: { principalId: data.clientRequestId || '' },
        requestParameters: { sourceIPAddress: '' },
        responseElements: {},
        s3: {
          s3SchemaVersion: '1.0',
          configurationId: ev.topic || 'ferry',
          bucket: { name: trigger.bucket, ownerIdentity: { principalId: '' }, arn: trigger.id || trigger.bucket },
          object,
        },
      },
    ],
  };
}

// The SNS notification for an Event Grid event published on the topic.
function topicEvent(trigger, ev) {
  const message = typeof ev.data === 'string' ? ev.data : JSON.stringify(ev.data);
  return {
    Records: [
      {
        EventSource: 'aws:sns',
        EventVersion: '1.0',
        EventSubscriptionArn: trigger.id || trigger.topic,
        Sns: {
          Type: 'Notification',
          MessageId: ev.id || crypto.randomUUID(),
          TopicArn: trigger.id || trigger.topic,
          Subject: ev.subject || null,
          Message: message,
          Timestamp: ev.eventTime || '',
          SignatureVersion: '1',
          Signature: '',
          MessageAttributes: {},
        },
      },
    ],
  };
}

function checkQueueResult(result) {
  const failures = result && typeof result === 'object' ? result.batchItemFailures : undefined;
  if (Array.isArray(failures) && failures.length) {
    throw new Error(`the handler reported the message in batchItemFailures: ${JSON.stringify(failures)}`);
  }
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

module.exports = { matchPath, http, queue, timer, event, httpEvent, httpResponse, queueEvent, scheduleEvent, storageEvent, topicEvent, checkQueueResult, run };
