'use strict';
// ferry's provider-neutral Lambda layer for Node.js handlers written in the AWS Lambda shape.
//
// A provider adapter (templates/azure/node/adapter.js, templates/gcp/node/index.js) sits next to
// this file as `ferry/lambda.js`, calls `configure(...)` once with what only it knows (where the
// app and `ferry/functions.json` are, the account and api ids, the log group and stream names),
// turns the provider's invocation into neutral fields, and uses what is here to build the event
// a handler gets on AWS Lambda and under `ferry dev` (API Gateway HTTP API 2.0 or REST 1.0, the
// Serverless Framework's `lambda` template, SQS, EventBridge Scheduled Event, S3, SNS), to call
// the handler with a Lambda-style context (async, callback and context.succeed/fail handlers),
// and to map an HTTP result back by API Gateway's rules.
//
// Only Node's standard library is used.

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { pathToFileURL } = require('node:url');

// What the adapter configures. A value may be a function, called each time it is needed.
const options = {
  root: path.resolve(__dirname, '..'),
  manifestPath: path.join(__dirname, 'functions.json'),
  accountId: '000000000000',
  apiId: 'local',
  logGroupName: '/ferry/functions/local',
  logStreamName: 'local',
};

let manifestCache = null;
const handlers = new Map();

// options: { root, manifestPath, accountId, apiId, logGroupName, logStreamName } (any subset).
function configure(opts) {
  Object.assign(options, opts);
  manifestCache = null;
  handlers.clear();
}

function option(name) {
  const v = options[name];
  return typeof v === 'function' ? v() : v;
}

function manifest() {
  if (manifestCache === null) {
    manifestCache = JSON.parse(fs.readFileSync(option('manifestPath'), 'utf8'));
  }
  return manifestCache;
}

function isFile(file) {
  return fs.statSync(file, { throwIfNoEntry: false })?.isFile() === true;
}

// Whether the nearest package.json above `dir` (not crossing node_modules) says
// "type": "module"; an unreadable one counts as not.
function typeModule(dir) {
  for (let d = dir; !d.endsWith(`${path.sep}node_modules`); d = path.dirname(d)) {
    const pj = path.join(d, 'package.json');
    if (isFile(pj)) {
      try {
        return JSON.parse(fs.readFileSync(pj, 'utf8'))?.type === 'module';
      } catch {
        return false;
      }
    }
    if (path.dirname(d) === d) return false;
  }
  return false;
}

// `dir/sub/module.export.path`, read as AWS's node runtime reads it: the module is the last path
// segment up to its first dot, the rest a property path.
async function loadHandler(full) {
  if (handlers.has(full)) return handlers.get(full);
  const root = option('root');
  const slash = full.lastIndexOf('/');
  const base = full.slice(slash + 1);
  const dot = base.indexOf('.');
  if (dot < 0) throw new Error(`Bad handler '${full}'`);
  const file = path.resolve(root, full.slice(0, slash + 1), base.slice(0, dot));
  // As AWS's runtime (and ferry dev's shim) load it: `require`, except `.mjs` and a `.js` whose
  // nearest package.json says "type": "module", which are ES modules.
  let mod;
  if (isFile(file)) mod = require(file);
  else {
    const ext = ['.js', '.mjs', '.cjs'].find((e) => isFile(file + e));
    if (!ext) throw new Error(`Cannot find module '${full.slice(0, slash + 1)}${base.slice(0, dot)}' in ${root}`);
    const esm = ext === '.mjs' || (ext === '.js' && typeModule(path.dirname(file)));
    mod = esm ? await import(pathToFileURL(file + ext).href) : require(file + ext);
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
// fn: the function's functions.json entry (function, memory, timeout, optional id).
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
      logGroupName: option('logGroupName'),
      logStreamName: option('logStreamName'),
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

// Loads the handler of a functions.json entry and calls it with the event.
async function invoke(fn, event, requestId) {
  return callHandler(await loadHandler(fn.handler), event, fn, requestId);
}

// --- HTTP -----------------------------------------------------------------------------------

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

// `ferry dev`'s route table: segments split on `/` with empty ones dropped; literal segments beat
// `{param}` segments, which beat a final `{proxy+}` (which needs at least one segment); exact
// methods beat ANY.
function segments(p) {
  return p.split('/').filter((s) => s !== '');
}

// `/items/{id}` against `/items/a%20b` -> { id: 'a b' } (decoded, `+` kept, as `ferry dev` gives
// them); null when it does not match.
function routeMatches(template, rawPath) {
  const segs = segments(template);
  const parts = segments(rawPath);
  const params = {};
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i];
    if (seg.startsWith('{') && seg.endsWith('+}')) {
      if (i >= parts.length) return null;
      params[seg.slice(1, -2)] = decodePath(parts.slice(i).join('/'));
      return params;
    }
    if (i >= parts.length) return null;
    if (seg.startsWith('{') && seg.endsWith('}')) params[seg.slice(1, -1)] = decodePath(parts[i]);
    else if (seg !== parts[i]) return null;
  }
  return segs.length === parts.length ? params : null;
}

function bySpecificity(triggers) {
  const key = (t) => {
    const segs = segments(t.path);
    const greedy = segs.some((s) => s.startsWith('{') && s.endsWith('+}')) ? 1 : 0;
    const lits = segs.filter((s) => !s.startsWith('{')).length;
    return [greedy, -lits, -segs.length, t.method === 'ANY' ? 1 : 0];
  };
  return triggers
    .map((t, i) => [key(t), i, t])
    .sort(([a, i], [b, j]) => {
      for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return a[k] - b[k];
      return i - j;
    })
    .map(([, , t]) => t);
}

// The http trigger a request goes to: { trigger, params } or null.
function findRoute(triggers, method, rawPath) {
  for (const t of bySpecificity(triggers || [])) {
    if (t.method !== method && t.method !== 'ANY') continue;
    const params = routeMatches(t.path, rawPath);
    if (params !== null) return { trigger: t, params };
  }
  return null;
}

// What `ferry dev`'s gateway answers a request no route takes: a CORS preflight (an OPTIONS
// request whose path a route with `cors: true` has) or 404. headers: [name, value] pairs.
// Returns { status, headers: [[name, value]], body: Buffer }.
function unrouted(triggers, method, rawPath, headers) {
  if (method === 'OPTIONS') {
    const r = bySpecificity(triggers || []).find((t) => routeMatches(t.path, rawPath) !== null);
    if (r && r.cors) {
      const h = (headers || []).find(([k]) => k.toLowerCase() === 'access-control-request-headers');
      const methods = (triggers || []).filter((t) => t.path === r.path).map((t) => t.method);
      return {
        status: 204,
        headers: [
          ['access-control-allow-origin', '*'],
          ['access-control-allow-methods', `${methods.join(',')},OPTIONS`],
          ['access-control-allow-headers', h ? String(h[1]) : '*'],
          ['access-control-max-age', '600'],
        ],
        body: Buffer.alloc(0),
      };
    }
  }
  return message(404, 'Not Found');
}

// `{"message": ...}` as JSON, the gateway's own answers.
function message(status, text) {
  return { status, headers: [['content-type', 'application/json']], body: Buffer.from(JSON.stringify({ message: text })) };
}

// What the gateway answers when the handler failed (threw, or its runtime crashed).
function handlerFailed(trigger) {
  return trigger.payload === 'lambda' ? message(500, 'Internal server error') : message(502, 'Internal Server Error');
}

// `ferry dev` adds `access-control-allow-origin: *` to the answers of a route with `cors: true`.
function withCors(trigger, response) {
  if (trigger.cors && !response.headers.some(([k]) => k === 'access-control-allow-origin')) {
    response.headers.push(['access-control-allow-origin', '*']);
  }
  return response;
}

// The API Gateway event for a request. headers: [name, value] pairs; body: a Buffer;
// params: the route parameters the platform matched, the fallback when the manifest's route does
// not match the raw path (`{*proxy}` is `proxy`, API Gateway's name too).
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
  // decode exactly as under `ferry dev`); the platform's route values are the fallback.
  let pathParameters = routeMatches(trigger.path, rawPath);
  if (pathParameters === null) {
    pathParameters = {};
    for (const [k, v] of Object.entries(params || {})) if (v != null) pathParameters[k] = String(v);
  }
  const routeKey = `${trigger.method} ${trigger.path}`;
  const now = new Date();
  const [text, b64] = bodyField(single, body);
  const stage = manifest().stage || 'dev';
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
      stage,
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
        accountId: option('accountId'),
        apiId: option('apiId'),
        domainName: domain,
        httpMethod: method,
        path: rawPath,
        protocol: 'HTTP/1.1',
        requestId,
        requestTime: apiTime(now),
        requestTimeEpoch: now.getTime(),
        resourcePath: trigger.path,
        stage,
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
      accountId: option('accountId'),
      apiId: option('apiId'),
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

// --- other events ---------------------------------------------------------------------------

const md5 = (s) => crypto.createHash('md5').update(s).digest('hex');

// The SQS event for one message. m: { messageId, body (a string), receiveCount, sentMs,
// senderId, attributes (optional string map: the message attributes) }.
function queueEvent(trigger, m) {
  const messageAttributes = {};
  for (const [k, v] of Object.entries(m.attributes || {})) {
    messageAttributes[k] = { stringValue: String(v), stringListValues: [], binaryListValues: [], dataType: 'String' };
  }
  return {
    Records: [
      {
        messageId: m.messageId,
        receiptHandle: m.messageId,
        body: m.body,
        attributes: {
          ApproximateReceiveCount: String(m.receiveCount),
          SentTimestamp: String(m.sentMs),
          SenderId: m.senderId,
          ApproximateFirstReceiveTimestamp: String(Date.now()),
        },
        messageAttributes,
        md5OfBody: md5(m.body),
        eventSource: 'aws:sqs',
        eventSourceARN: trigger.id || trigger.queue,
        awsRegion: manifest().region || '',
      },
    ],
  };
}

// EventBridge's Scheduled Event (or the trigger's fixed input). time: when it was due (a Date;
// now by default).
function scheduleEvent(trigger, requestId, time) {
  if (trigger.input != null) return trigger.input;
  return {
    version: '0',
    id: requestId,
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: option('accountId'),
    time: (time || new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region: manifest().region || '',
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

// The S3 notification for one object. o: { key (not encoded), created, size, eTag, sequencer,
// time, configurationId, principalId }; size and eTag are only given for created objects.
function s3Event(trigger, o) {
  const object = { key: encodeKey(o.key), sequencer: o.sequencer || '' };
  if (o.created) {
    object.size = o.size || 0;
    object.eTag = o.eTag || '';
  }
  return {
    Records: [
      {
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        awsRegion: manifest().region || '',
        eventTime: o.time || '',
        eventName: o.created ? 'ObjectCreated:Put' : 'ObjectRemoved:Delete',
        userIdentity: { principalId: o.principalId || '' },
        requestParameters: { sourceIPAddress: '' },
        responseElements: {},
        s3: {
          s3SchemaVersion: '1.0',
          configurationId: o.configurationId || 'ferry',
          bucket: { name: trigger.bucket, ownerIdentity: { principalId: '' }, arn: trigger.id || trigger.bucket },
          object,
        },
      },
    ],
  };
}

// Whether a storage trigger takes an object: its `events` (created/removed), `prefix`, `suffix`.
function storageWants(trigger, key, created) {
  const events = trigger.events || ['created', 'removed'];
  if (!events.includes(created ? 'created' : 'removed')) return false;
  if (trigger.prefix != null && !key.startsWith(trigger.prefix)) return false;
  if (trigger.suffix != null && !key.endsWith(trigger.suffix)) return false;
  return true;
}

// The SNS notification for one message. m: { id, subject, message (a string), time,
// attributes (optional string map), subscription (optional: the EventSubscriptionArn) }.
function snsEvent(trigger, m) {
  const MessageAttributes = {};
  for (const [k, v] of Object.entries(m.attributes || {})) MessageAttributes[k] = { Type: 'String', Value: String(v) };
  return {
    Records: [
      {
        EventSource: 'aws:sns',
        EventVersion: '1.0',
        EventSubscriptionArn: m.subscription || trigger.id || trigger.topic,
        Sns: {
          Type: 'Notification',
          MessageId: m.id || crypto.randomUUID(),
          TopicArn: trigger.id || trigger.topic,
          Subject: m.subject || null,
          Message: m.message,
          Timestamp: m.time || '',
          SignatureVersion: '1',
          Signature: '',
          MessageAttributes,
        },
      },
    ],
  };
}

// Throws when a queue handler reported its message in `batchItemFailures`.
function checkQueueResult(result) {
  const failures = result && typeof result === 'object' ? result.batchItemFailures : undefined;
  if (Array.isArray(failures) && failures.length) {
    throw new Error(`the handler reported the message in batchItemFailures: ${JSON.stringify(failures)}`);
  }
}

module.exports = {
  configure,
  manifest,
  loadHandler,
  callHandler,
  invoke,
  isText,
  parseQuery,
  findRoute,
  unrouted,
  message,
  handlerFailed,
  withCors,
  httpEvent,
  httpResponse,
  queueEvent,
  scheduleEvent,
  encodeKey,
  s3Event,
  storageWants,
  snsEvent,
  checkQueueResult,
};
