'use strict';

// ferry example: HTTP handlers in the AWS Lambda / API Gateway HTTP API payload 2.0 shape.
// The same code runs on AWS Lambda and on `ferry dev`, which sends events of this shape.
//
//   event.queryStringParameters  { name: "Ada" }     (absent when there is no query string)
//   event.pathParameters         { name: "Ada" }     (absent when the route has none)
//   event.body                   string or absent; base64 when event.isBase64Encoded
//   event.headers                lower-cased header names
//
// A handler returns { statusCode, headers, body } with body as a string.

const GREETING = process.env.GREETING || 'Hello';

function json(statusCode, value) {
  return {
    statusCode,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(value),
  };
}

function greeting(name) {
  return { message: `${GREETING}, ${name}!` };
}

// GET /hello?name=Ada
exports.hello = async (event) => {
  const name = (event.queryStringParameters || {}).name || 'world';
  return json(200, greeting(name));
};

// GET /greet/{name}
exports.greet = async (event) => {
  const name = (event.pathParameters || {}).name;
  if (!name) {
    return json(400, { error: 'missing path parameter `name`' });
  }
  // The gateway passes path parameters still percent-encoded on some providers.
  let decoded = name;
  try {
    decoded = decodeURIComponent(name);
  } catch (_) {
    // keep it as it came
  }
  return json(200, greeting(decoded));
};

// POST /echo with a JSON body
exports.echo = async (event) => {
  let raw = event.body || '';
  if (event.isBase64Encoded) {
    raw = Buffer.from(raw, 'base64').toString('utf8');
  }
  if (raw === '') {
    return json(400, { error: 'send a JSON body' });
  }
  let parsed;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    return json(400, { error: `body is not JSON: ${err.message}` });
  }
  const headers = event.headers || {};
  return json(200, {
    received: parsed,
    contentType: headers['content-type'] || null,
    requestId: (event.requestContext || {}).requestId || null,
  });
};
