'use strict';
// Replays Azure-shaped invocations through ferry's node adapter in an unpacked app folder.
//
// Usage: node replay.js APP_DIR < cases.json > results.json
//
// Each case is {"function": <azure function>, "kind": "http"|"queue", ...}. The request and
// context objects have the shape the v3 Node.js programming model documents: `req` with method,
// url, headers (lower-case), query, params, body (parsed when the content type is JSON, as the
// worker does), rawBody (the body as a string) and bufferBody (its bytes; workers since 3.5);
// `context` with invocationId,
// executionContext.functionName and, for queues, bindingData (id, dequeueCount, insertionTime,
// queueTrigger). Unlike the Python replay, no Microsoft library builds them: the v3 worker is
// not published as a package that can construct them outside the host.

const path = require('node:path');
const crypto = require('node:crypto');

const adapter = require(path.resolve(process.argv[2], 'ferry', 'adapter.js'));

function context(name, bindingData) {
  return { invocationId: crypto.randomUUID(), executionContext: { functionName: name }, bindingData: bindingData || {} };
}

async function httpCase(c) {
  const raw = Buffer.from(c.body_b64 || '', 'base64');
  const headers = {};
  for (const [k, v] of Object.entries(c.headers || {})) headers[k.toLowerCase()] = v;
  const u = new URL(c.url);
  const query = Object.fromEntries(u.searchParams.entries());
  let body = raw.length ? raw.toString('utf8') : undefined;
  if (body !== undefined && (headers['content-type'] || '').includes('json')) {
    try {
      body = JSON.parse(body);
    } catch {
      // the worker leaves an unparseable body as a string
    }
  }
  const req = {
    method: c.method,
    url: c.url,
    originalUrl: c.url,
    headers,
    query,
    params: c.params || {},
    body,
    rawBody: raw.length ? raw.toString('utf8') : undefined,
    bufferBody: raw,
  };
  const res = await adapter.http(context(c.function), req);
  return {
    status: res.status,
    headers: res.headers,
    cookies: (res.cookies || []).map((k) => `${k.name}=${k.value}`),
    body_b64: Buffer.from(res.body).toString('base64'),
  };
}

async function queueCase(c) {
  const message = (() => {
    try {
      return JSON.parse(c.body); // the v3 worker hands JSON messages over parsed
    } catch {
      return c.body;
    }
  })();
  const b = { id: c.id || crypto.randomUUID(), dequeueCount: c.dequeueCount || 1, insertionTime: '2026-12-02T10:00:00+00:00', queueTrigger: c.body };
  try {
    await adapter.queue(context(c.function, b), message);
    return { ok: true };
  } catch (e) {
    return { ok: false, error: String(e) };
  }
}

async function main() {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const results = [];
  for (const c of JSON.parse(input)) results.push(await (c.kind === 'http' ? httpCase(c) : queueCase(c)));
  process.stdout.write(JSON.stringify(results));
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
