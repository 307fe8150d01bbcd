// ferry's Node.js runtime shim: serves one function's handler in a warm worker process over
// the AWS Lambda Runtime API (2018-06-01), the way AWS's own Node.js runtime does.
//
//   node bootstrap.cjs            (cwd: the function's task root)
//
// Environment: AWS_LAMBDA_RUNTIME_API (host:port, required), _HANDLER, LAMBDA_TASK_ROOT (default:
// cwd), AWS_LAMBDA_FUNCTION_NAME / _VERSION / _MEMORY_SIZE, AWS_LAMBDA_LOG_GROUP_NAME /
// _LOG_STREAM_NAME; _FERRY_RUNTIME_API_SOCKET (optional: a Unix socket that serves the same
// Runtime API, see the README). No dependencies. Behaviour follows aws-lambda-nodejs-runtime-interface-client
// (handler resolution, callback and context.succeed semantics, the 'beforeExit' rules, error
// shapes); templates/runtime/README.md lists each choice and where it departs from AWS.
//
// The file is embedded in the ferry binary and must stay template-safe (see the README).

// CommonJS, as AWS's own runtime is: an ES module entry costs every worker start the ESM loader
// (about 20 ms here) even when the handler is CommonJS.
'use strict';

const net = require('node:net');
const { readFileSync, statSync } = require('node:fs');
const { createRequire } = require('node:module');
const path = require('node:path');
const { pathToFileURL } = require('node:url');
const { types } = require('node:util');

const env = process.env;
const API = '/2018-06-01/runtime';
const NEXT = `${API}/invocation/next`;
const ERROR_TYPE_HEADER = 'Lambda-Runtime-Function-Error-Type';

// Read once: AWS reads them per invocation, but nothing in a worker changes them.
const HANDLER = env._HANDLER || '';
const FUNCTION_NAME = env.AWS_LAMBDA_FUNCTION_NAME;
const FUNCTION_VERSION = env.AWS_LAMBDA_FUNCTION_VERSION;
const MEMORY_SIZE = env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE; // a string, as on AWS
const LOG_GROUP = env.AWS_LAMBDA_LOG_GROUP_NAME;
const LOG_STREAM = env.AWS_LAMBDA_LOG_STREAM_NAME;

const [HOST, PORT] = splitAddress(env.AWS_LAMBDA_RUNTIME_API);
// ferry dev also serves this worker's Runtime API on a Unix socket, cheaper than loopback TCP.
// Removed from the environment: the function sees Lambda's.
const SOCKET = env._FERRY_RUNTIME_API_SOCKET || null;
delete env._FERRY_RUNTIME_API_SOCKET;


// --- errors ---------------------------------------------------------------------------------

// An error the runtime names itself (errorType `Runtime.*`). Its stack is the cause's when there
// is one; the shim's own frames would tell the user nothing.
class RuntimeError extends Error {
  constructor(type, message, stack) {
    super(message);
    Object.defineProperty(this, 'name', { value: type, writable: true, configurable: true });
    this.stack = stack ?? `${type}: ${message}`;
  }
}

// A stack as lines, without the frames of this shim that called the handler.
const SHIM_FILE = __filename;
function stackLines(stack) {
  const lines = stack.split('\n');
  const cut = lines.findIndex((line, i) => i > 0 && line.includes(SHIM_FILE));
  return cut > 0 ? lines.slice(0, cut) : lines;
}

function isErrorLike(value) {
  return (
    value &&
    typeof value.name === 'string' &&
    typeof value.message === 'string' &&
    typeof value.stack === 'string'
  );
}

// The body posted to /error and /init/error. AWS's node runtime sends `trace`; the Runtime API
// spec (and every other runtime) says `stackTrace`. Both are sent, so ferry can read one field
// for every runtime and callers still see what a node Lambda returns.
function errorBody(err) {
  try {
    if (types.isNativeError(err) || isErrorLike(err)) {
      const trace = typeof err.stack === 'string' ? stackLines(err.stack) : [];
      return { errorType: err.name, errorMessage: err.message, trace, stackTrace: trace };
    }
    return { errorType: typeof err, errorMessage: String(err), trace: [], stackTrace: [] };
  } catch {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
    };
  }
}

// One log line per error, as AWS prints it: `<label> \t{"errorType":...,"stack":[...]}`.
function logError(label, err) {
  let text;
  try {
    text = JSON.stringify(err, (_key, value) => {
      if (!(value instanceof Error)) return value;
      const out = Object.assign(
        { errorType: value.name, errorMessage: value.message, code: value.code },
        value,
      );
      if (typeof value.stack === 'string') out.stack = stackLines(value.stack);
      return out;
    });
  } catch {
    text = JSON.stringify(errorBody(err));
  }
  process.stderr.write(`${label} \t${text}\n`);
}

function headerValue(text) {
  const clean = String(text).replace(/[^\x20-\x7e]/g, '');
  return clean || 'Unhandled';
}

// --- the Runtime API client -----------------------------------------------------------------

function splitAddress(address) {
  if (!address) {
    process.stderr.write('ferry runtime: AWS_LAMBDA_RUNTIME_API is not set\n');
    process.exit(1);
  }
  const colon = address.lastIndexOf(':');
  const host = colon > 0 ? address.slice(0, colon) : address;
  const port = colon > 0 ? Number(address.slice(colon + 1)) : 80;
  return [host.replace(/^\[(.*)\]$/, '$1'), port];
}

// The Runtime API client: one kept-alive connection (TCP, or ferry's Unix socket) and a minimal
// HTTP/1.1 exchange (request line, headers, Content-Length or chunked body). Node's `http`
// client costs several hundred microseconds of CPU per exchange, and every invocation needs two
// (`GET /next`, `POST /response`); AWS's own Node client avoids it with a native addon. An answer
// and the next `GET /next` go out together (HTTP/1.1 pipelining): one write and one wake-up
// fewer per invocation. The socket is unref'd while no response is awaited, so it never keeps
// the event loop (and so 'beforeExit') from happening.
let conn = null; // { socket, pending, waiting: [{ resolve, reject }], closed }

// Every read lands in this one buffer (net's `onread`), and each response is decoded out of it
// at once. A stream's 'data' events would allocate a Buffer per read and run the Readable
// machinery: garbage, and each minor collection pauses the request in flight.
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

function connect() {
  const c = { socket: null, pending: null, waiting: [], closed: false };
  const onread = { buffer: READ_BUFFER, callback: (nread, buf) => received(c, buf, nread) };
  const socket = SOCKET
    ? net.createConnection({ path: SOCKET, onread })
    : net.createConnection({ host: HOST, port: PORT, onread });
  if (!SOCKET) socket.setNoDelay(true);
  c.socket = socket;
  const gone = (err) => {
    if (c.closed) return;
    c.closed = true;
    if (conn === c) conn = null;
    const why = err ?? new Error('the Runtime API closed the connection');
    for (const w of c.waiting.splice(0)) w.reject(why);
  };
  socket.on('close', () => gone());
  socket.on('error', (err) => gone(err));
  return c;
}

// Bytes read on connection c: settles the awaited responses they complete; keeps (copies) the
// rest, since the read buffer is reused.
function received(c, buf, nread) {
  let data = buf.subarray(0, nread);
  if (c.pending) {
    data = Buffer.concat([c.pending, data]);
    c.pending = null;
  }
  let pos = 0;
  while (c.waiting.length > 0) {
    const res = parseResponse(data, pos);
    if (!res) break;
    pos = res.end;
    c.waiting.shift().resolve(res);
  }
  if (pos < data.length) c.pending = Buffer.from(data.subarray(pos));
  if (c.waiting.length === 0 && !c.closed) c.socket.unref();
}

// Parses one response at `start` in `buf`: { status, headers, body (a string), end }, or null
// when more bytes are needed.
function parseResponse(buf, start) {
  const end = buf.indexOf('\r\n\r\n', start);
  if (end < 0) return null;
  const head = buf.toString('latin1', start, end).split('\r\n');
  const status = Number(head[0].split(' ')[1]);
  const headers = {};
  for (let i = 1; i < head.length; i++) {
    const colon = head[i].indexOf(':');
    if (colon > 0) headers[head[i].slice(0, colon).trim().toLowerCase()] = head[i].slice(colon + 1).trim();
  }
  let pos = end + 4;
  if (headers['transfer-encoding'] && headers['transfer-encoding'].includes('chunked')) {
    const parts = [];
    for (;;) {
      const lineEnd = buf.indexOf('\r\n', pos);
      if (lineEnd < 0) return null;
      const size = parseInt(buf.toString('latin1', pos, lineEnd), 16);
      if (buf.length < lineEnd + 2 + size + 2) return null;
      if (size === 0) return { status, headers, body: Buffer.concat(parts).toString(), end: lineEnd + 4 };
      parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
      pos = lineEnd + 2 + size + 2;
    }
  }
  const length = Number(headers['content-length'] ?? 0);
  if (buf.length < pos + length) return null;
  return { status, headers, body: buf.toString('utf8', pos, pos + length), end: pos + length };
}

// One request's bytes: { method, path, body, headers }.
function requestText({ method, path: urlPath, body, headers }) {
  let head = `${method} ${urlPath} HTTP/1.1\r\nHost: ${HOST}:${PORT}\r\n`;
  for (const [k, v] of Object.entries(headers ?? {})) head += `${k}: ${v}\r\n`;
  if (body === undefined) return `${head}\r\n`;
  return `${head}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

// Writes the requests back to back on connection c: one promise per response, in order.
function send(c, texts) {
  const answers = texts.map(() => new Promise((resolve, reject) => c.waiting.push({ resolve, reject })));
  c.socket.ref();
  c.socket.write(texts.length === 1 ? texts[0] : texts.join(''));
  return answers;
}

// Requests on the kept-alive connection, pipelined: one promise per response, in order. A
// request left unanswered when the connection closes was never processed (responses come in
// order), so it is sent once more on a new connection, unless the connection was new and
// answered nothing (the Runtime API is gone): a server may close a kept-alive connection while
// it is idle, or right after a response.
function pipeline(requests) {
  const reused = conn !== null;
  if (!conn) conn = connect();
  const c = conn;
  const texts = requests.map(requestText);
  let answered = 0;
  let retry = null;
  let retryFrom = 0;
  const answers = send(c, texts).map((p, i) =>
    p.then(
      (res) => {
        answered = i + 1;
        return res;
      },
      (err) => {
        if (!reused && answered === 0) throw err;
        if (!retry) {
          retryFrom = i;
          if (!conn) conn = connect();
          retry = send(conn, texts.slice(i));
        }
        return retry[i - retryFrom];
      },
    ),
  );
  // A response nobody awaits yet must not count as an unhandled rejection.
  for (const a of answers) a.catch(() => {});
  return answers;
}

function request(method, urlPath, body, headers) {
  return pipeline([{ method, path: urlPath, body, headers }])[0];
}

// An answer (`POST .../response` or `.../error`), and with it the next `GET /next` when `next`
// is set. Resolves when the answer is accepted; `nextAnswer` is the pipelined GET's response.
function answer(urlPath, json, errorType, next) {
  const headers = { 'Content-Type': 'application/json' };
  if (errorType !== undefined) headers[ERROR_TYPE_HEADER] = headerValue(errorType);
  const requests = [{ method: 'POST', path: urlPath, body: json, headers }];
  if (next) requests.push({ method: 'GET', path: NEXT });
  const [posted, following] = pipeline(requests);
  nextAnswer = following ?? null;
  return posted.then((res) => {
    if (res.status < 200 || res.status > 299) {
      process.stderr.write(
        `ferry runtime: POST ${urlPath} was refused with ${res.status}: ${res.body}\n`,
      );
    }
  });
}

function post(urlPath, json, errorType) {
  return answer(urlPath, json, errorType, false);
}

// --- loading the handler --------------------------------------------------------------------

function isFile(file) {
  return statSync(file, { throwIfNoEntry: false })?.isFile() === true;
}

// Whether the nearest package.json above `dir` (not crossing node_modules) says
// `"type": "module"`, as AWS's runtime decides; an unreadable one counts as not.
function typeModule(dir) {
  for (let d = dir; !d.endsWith(`${path.sep}node_modules`); d = path.dirname(d)) {
    const pj = path.join(d, 'package.json');
    if (isFile(pj)) {
      try {
        return JSON.parse(readFileSync(pj, 'utf8'))?.type === 'module';
      } catch {
        return false;
      }
    }
    if (path.dirname(d) === d) return false;
  }
  return false;
}

// `dir/sub/module.export.path`: the module is the last path segment up to its FIRST dot, and
// the rest is a (possibly nested) property path, exactly as AWS's node runtime reads it. So
// dots in directory names are fine, and `handler.v2.fn` means `handler.js` -> v2 -> fn.
async function loadHandler(taskRoot, full) {
  if (full.includes('..')) {
    throw new RuntimeError(
      'Runtime.MalformedHandlerName',
      `'${full}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  const slash = full.lastIndexOf('/');
  const moduleRoot = full.slice(0, slash + 1);
  const base = full.slice(slash + 1);
  const dot = base.indexOf('.');
  if (dot < 0) throw new RuntimeError('Runtime.MalformedHandlerName', `Bad handler '${full}'`);
  const moduleName = base.slice(0, dot);
  const exportPath = base.slice(dot + 1).split('.');

  const mod = await loadModule(taskRoot, moduleRoot, moduleName);
  const lookup = (object) => exportPath.reduce((nested, key) => nested && nested[key], object);
  // An ES module's namespace has the named exports; a CommonJS module loaded through import()
  // has them when Node's static analysis finds them, and always has module.exports on default.
  let fn = lookup(mod);
  if (fn == null && mod != null && mod.default != null) fn = lookup(mod.default);
  if (!fn) throw new RuntimeError('Runtime.HandlerNotFound', `${full} is undefined or not exported`);
  if (typeof fn !== 'function') {
    throw new RuntimeError('Runtime.HandlerNotFound', `${full} is not a function`);
  }
  return fn;
}

async function loadModule(taskRoot, moduleRoot, moduleName) {
  const file = path.resolve(taskRoot, moduleRoot, moduleName);
  try {
    // As AWS's runtime does: the extensionless file and `.cjs` as CommonJS (`require`), `.mjs`
    // as an ES module (`import()`), and `.js` as CommonJS unless the nearest package.json says
    // `"type": "module"`.
    const load = createRequire(file);
    if (isFile(file)) return load(file);
    if (isFile(`${file}.js`)) {
      return typeModule(path.dirname(file))
        ? await import(pathToFileURL(`${file}.js`).href)
        : load(`${file}.js`);
    }
    if (isFile(`${file}.mjs`)) return await import(pathToFileURL(`${file}.mjs`).href);
    if (isFile(`${file}.cjs`)) return load(`${file}.cjs`);
    // Last, like AWS: a package of that name in node_modules.
    let resolved;
    try {
      resolved = createRequire(path.join(taskRoot, 'index.js')).resolve(moduleName, {
        paths: [taskRoot, path.resolve(taskRoot, moduleRoot)],
      });
    } catch (err) {
      if (err?.code !== 'MODULE_NOT_FOUND') throw err;
    }
    if (!resolved || !path.isAbsolute(resolved)) {
      const shown = moduleRoot + moduleName;
      throw new RuntimeError(
        'Runtime.ImportModuleError',
        `Error: Cannot find module '${shown}' (looked for ${shown}.js, ${shown}.mjs and ${shown}.cjs in ${taskRoot})`,
      );
    }
    return createRequire(resolved)(resolved);
  } catch (err) {
    if (err instanceof RuntimeError) throw err;
    if (err instanceof SyntaxError) {
      throw new RuntimeError('Runtime.UserCodeSyntaxError', String(err), err.stack);
    }
    if (err?.code === 'MODULE_NOT_FOUND' || err?.code === 'ERR_MODULE_NOT_FOUND') {
      throw new RuntimeError('Runtime.ImportModuleError', String(err), err.stack);
    }
    throw err;
  }
}

function isAsyncFunction(fn) {
  try {
    return fn.constructor?.name === 'AsyncFunction';
  } catch {
    return false;
  }
}

// --- state ----------------------------------------------------------------------------------

let handler;
let handlerIsAsync = false;
let handlerTakesCallback = false;
let phase = 'init'; // 'init' -> 'idle' <-> 'invoke'; 'failed' once init failed
let currentId = null; // the invocation that has not been answered yet
let inflight = null; // the POST answering the last invocation, while it is in flight
let nextAnswer = null; // the response to a GET /next sent with the last answer
let onLoopEmpty = null; // what the pending invocation does when the event loop drains
let dying = false;
let initErrorSent = false;
let warnedSyncReturn = false;

function parseHeaderJson(text, name) {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`Cannot parse ${name} as json: ${err}`);
  }
}

function warnSyncReturn() {
  if (warnedSyncReturn) return;
  warnedSyncReturn = true;
  process.stderr.write(
    `ferry: handler ${HANDLER} is not async and returned a value without calling its callback. ` +
      'ferry answers with that value, but AWS Lambda ignores it and answers null: make the ' +
      'handler async (or return a Promise) to get the same result on AWS.\n',
  );
}

// Runs the handler for one event. Resolves to { ok, value } once the invocation is decided: the
// first of the returned promise, callback, context.succeed/fail/done wins; a callback success
// waits for the event loop to drain unless context.callbackWaitsForEmptyEventLoop is false.
function invoke(id, headers, body) {
  return new Promise((resolve) => {
    let called = false;
    let settled = false;
    let waits = true;
    const deadline = Number(headers['lambda-runtime-deadline-ms']);

    const settle = (ok, value) => {
      if (settled) return;
      settled = true;
      onLoopEmpty = null;
      resolve({ ok, value });
    };
    const once =
      (fn) =>
      (...args) => {
        if (called) return;
        called = true;
        fn(...args);
      };
    const succeed = once((result) => settle(true, result));
    const fail = once((err) => settle(false, err == null ? 'handled' : err));
    const done = once((err, result) => (err != null ? settle(false, err) : settle(true, result)));
    const callback = once((err, result) => {
      if (err != null) settle(false, err);
      else if (waits) onLoopEmpty = () => settle(true, result);
      else settle(true, result);
    });

    // Nothing answered and nothing left to run: AWS fails an async handler (its promise can no
    // longer settle) and answers null for any other.
    onLoopEmpty = handlerIsAsync
      ? () => settle(false, new RuntimeError('Runtime.NodeJsExit', 'Runtime exited without providing a reason'))
      : () => settle(true, null);

    try {
      const event = JSON.parse(body);
      const context = {
        get callbackWaitsForEmptyEventLoop() {
          return waits;
        },
        set callbackWaitsForEmptyEventLoop(value) {
          waits = value;
        },
        succeed,
        fail,
        done,
        functionVersion: FUNCTION_VERSION,
        functionName: FUNCTION_NAME,
        memoryLimitInMB: MEMORY_SIZE,
        logGroupName: LOG_GROUP,
        logStreamName: LOG_STREAM,
        clientContext: parseHeaderJson(headers['lambda-runtime-client-context'], 'ClientContext'),
        identity: parseHeaderJson(headers['lambda-runtime-cognito-identity'], 'CognitoIdentity'),
        invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
        awsRequestId: id,
        tenantId: headers['lambda-runtime-aws-tenant-id'],
        getRemainingTimeInMillis() {
          return deadline - Date.now();
        },
      };
      const result = handler(event, context, callback);
      if (result != null && typeof result.then === 'function') {
        result.then(succeed, fail);
      } else if (!called && result !== undefined && !handlerTakesCallback) {
        warnSyncReturn();
        succeed(result);
      }
    } catch (err) {
      callback(err);
    }
  });
}

async function serveOne() {
  const pending = nextAnswer;
  nextAnswer = null;
  const next = await (pending ?? request('GET', NEXT));
  // ferry answers 410 Gone when it shuts the worker's Runtime API down: a normal end.
  if (next.status === 410) process.exit(0);
  if (next.status !== 200) {
    throw new Error(`GET ${NEXT} answered ${next.status}: ${next.body}`);
  }
  const headers = next.headers;
  const id = headers['lambda-runtime-aws-request-id'];
  if (!id) throw new Error(`GET ${NEXT} answered without Lambda-Runtime-Aws-Request-Id`);

  const trace = headers['lambda-runtime-trace-id'];
  if (trace) env._X_AMZN_TRACE_ID = trace;
  else delete env._X_AMZN_TRACE_ID;

  currentId = id;
  phase = 'invoke';
  const outcome = await invoke(id, headers, next.body);
  if (dying) return; // an uncaught error already answered this invocation
  currentId = null;
  phase = 'idle';

  const base = `${API}/invocation/${encodeURIComponent(id)}`;
  let { ok, value } = outcome;
  let json;
  if (ok) {
    try {
      json = JSON.stringify(value === undefined ? null : value) ?? 'null';
    } catch (err) {
      ok = false;
      value = new RuntimeError('Runtime.JSONStringifyError', `Unable to stringify response body: ${err.message}`);
    }
  }
  if (ok) {
    inflight = answer(`${base}/response`, json, undefined, true);
  } else {
    logError('Invoke Error', value);
    inflight = answer(`${base}/error`, JSON.stringify(errorBody(value)), 'Unhandled', true);
  }
  await inflight;
  inflight = null;
}

async function initFailed(err) {
  if (initErrorSent) return;
  initErrorSent = true;
  phase = 'failed';
  logError('Uncaught Exception', err);
  const body = errorBody(err);
  try {
    await post(`${API}/init/error`, JSON.stringify(body), body.errorType);
  } catch (postErr) {
    process.stderr.write(`ferry runtime: could not report the init error: ${postErr.message}\n`);
  }
  process.exit(1);
}

// An exception nobody caught, or a rejection nobody handled: the worker is in an unknown state.
// Answer the pending invocation with it (or report the init error), then exit; ferry starts a
// new worker, as AWS starts a new sandbox.
function fatal(label, err) {
  if (phase === 'init' || phase === 'failed') {
    initFailed(err);
    return;
  }
  logError(label, err);
  if (dying) return;
  dying = true;
  setTimeout(() => process.exit(1), 2000).unref();
  const id = currentId;
  currentId = null;
  const pending = [inflight];
  if (id !== null) {
    pending.push(
      post(`${API}/invocation/${encodeURIComponent(id)}/error`, JSON.stringify(errorBody(err)), 'Unhandled'),
    );
  }
  Promise.allSettled(pending).then(() => process.exit(1));
}

class UnhandledPromiseRejection extends RuntimeError {
  constructor(reason) {
    let message;
    try {
      message = String(reason);
    } catch {
      message = typeof reason;
    }
    super('Runtime.UnhandledPromiseRejection', message, isErrorLike(reason) ? reason.stack : undefined);
  }
}

process.on('uncaughtException', (err) => fatal('Uncaught Exception', err));
process.on('unhandledRejection', (reason) =>
  fatal('Unhandled Promise Rejection', new UnhandledPromiseRejection(reason)),
);
process.on('beforeExit', () => {
  const action = onLoopEmpty;
  if (action) {
    onLoopEmpty = null;
    action();
  } else if (phase === 'init') {
    initFailed(
      new RuntimeError(
        'Runtime.NodeJsExit',
        `Runtime exited without providing a reason: loading ${HANDLER} never finished (a top-level await waits on a promise that nothing settles)`,
      ),
    );
  }
});

async function main() {
  const taskRoot = env.LAMBDA_TASK_ROOT || process.cwd();
  try {
    handler = await loadHandler(taskRoot, HANDLER);
  } catch (err) {
    await initFailed(err);
    return;
  }
  handlerIsAsync = isAsyncFunction(handler);
  handlerTakesCallback = handler.length >= 3;
  phase = 'idle';
  while (!dying) await serveOne();
}

main().catch((err) => {
  if (dying) return;
  process.stderr.write(`ferry runtime: ${err?.stack ?? err}\n`);
  process.exit(1);
});
