/**
 * The contract's conventions for every request (§2, §7): error bodies and statuses for each kind of malformed
 * input, X-Request-Id on every response, the order of checks, JSON content type, and logs without secrets.
 */
import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import t, { type Test } from 'tap';
import type { FastifyInstance } from 'fastify';
import { formatSdkDate, signRequest } from '../../src/auth/sdk-hmac.ts';
import { errors } from '../../src/errors.ts';
import { MAX_JSON_DEPTH } from '../../src/http/plugins/json-body.ts';
import { createTestApp } from '../helpers/app.ts';
import { CA, client } from '../ca/support.ts';

const probeBody = { type: 'object', required: ['name'], properties: { name: { type: 'string', maxLength: 5 } } } as const;

function probeRoutes(app: FastifyInstance): void {
  app.post('/v1/test/probe', { config: { action: 'pca:ca:create' }, schema: { body: probeBody } }, async (request) => ({
    echoed: (request.body as { name: string }).name,
  }));
  app.get('/v1/test/explode', { config: { action: 'pca:ca:get' } }, async () => {
    throw new Error('database exploded: secret detail 42');
  });
  app.get('/v1/test/busy', { config: { action: 'pca:ca:get' } }, async () => {
    throw Object.assign(new Error('Transaction API error: Unable to start a transaction in the given time.'), { code: 'P2028' });
  });
  app.post('/v1/test/private', { config: { action: 'pca:ca:get' } }, async () => ({ ok: true }));
  const tokenGone = () => {
    throw errors.keyStoreUnavailable("no PKCS#11 token labelled 'prod-ca-token' (initialised tokens: 'other')");
  };
  app.get('/test/public-key-store', { config: { public: true } }, tokenGone);
  app.get('/v1/test/key-store', { config: { action: 'pca:ca:get' } }, tokenGone);
}

const harness = await createTestApp({ extraRoutes: probeRoutes, env: { BODY_LIMIT_BYTES: '2048' } });
t.teardown(() => harness.close());
const { app } = harness;
const auth = harness.auth();

function assertError(
  t: Test,
  response: Awaited<ReturnType<FastifyInstance['inject']>>,
  status: number,
  code: string,
  messagePart?: RegExp,
) {
  t.equal(response.statusCode, status, `status ${status}`);
  t.match(response.headers['content-type'], /^application\/json;charset=UTF-8$/);
  t.match(response.headers['x-request-id'], /^[A-Za-z0-9._:-]+$/, 'has X-Request-Id');
  const body = response.json() as { error_code: string; error_msg: string };
  t.equal(body.error_code, code);
  t.type(body.error_msg, 'string');
  if (messagePart) t.match(body.error_msg, messagePart);
}

t.test('unknown route: 404 PCA.10010002', async (t) => {
  assertError(t, await app.inject({ method: 'GET', url: '/v1/nothing-here', headers: auth }), 404, 'PCA.10010002');
  assertError(t, await app.inject({ method: 'GET', url: '/nothing' }), 404, 'PCA.10010002', /route GET \/nothing/);
});

t.test('wrong method on a known path: 404 PCA.10010002', async (t) => {
  assertError(t, await app.inject({ method: 'DELETE', url: '/health' }), 404, 'PCA.10010002');
  assertError(t, await app.inject({ method: 'PUT', url: '/v1/test/probe', headers: auth, payload: { name: 'a' } }), 404, 'PCA.10010002');
});

t.test('malformed JSON: 400 PCA.00020001', async (t) => {
  const response = await app.inject({
    method: 'POST',
    url: '/v1/test/probe',
    headers: { ...auth, 'content-type': 'application/json' },
    payload: '{"name": "x",',
  });
  assertError(t, response, 400, 'PCA.00020001', /not valid JSON/);
});

t.test('a NUL or an unpaired surrogate in a JSON string, a key or the URL: 400 PCA.00020001, never a 500 or a U+FFFD', async (t) => {
  const post = (payload: string) =>
    app.inject({
      method: 'POST',
      url: '/v1/private-certificate-authorities',
      headers: { ...auth, 'content-type': 'application/json' },
      payload,
    });
  assertError(t, await post('{"type":"ROOT","enterprise_project_id":"a\\u0000b"}'), 400, 'PCA.00020001', /NUL/);
  assertError(t, await post('{"tags":[{"key":"k","value":"v"}],"x\\u0000":1}'), 400, 'PCA.00020001', /NUL/);
  assertError(
    t,
    await app.inject({ method: 'GET', url: '/v1/private-certificate-authorities?name=a%00b', headers: auth }),
    400,
    'PCA.00020001',
    /NUL/,
  );
  assertError(t, await app.inject({ method: 'GET', url: '/v1/private-certificate-authorities?name=a%00b' }), 401, 'APIG.0303', undefined);
  assertError(t, await post('{"type":"ROOT","enterprise_project_id":"a\\ud800"}'), 400, 'PCA.00020001', /unpaired UTF-16 surrogate/);
  assertError(t, await post('{"type":"ROOT","enterprise_project_id":"a\\udc00\\ud800"}'), 400, 'PCA.00020001', /unpaired/);
  // A pair is a character like any other; an escaped backslash followed by "u0000" is no NUL: both go on to schema validation.
  assertError(t, await post('{"type":"ROOT","enterprise_project_id":"\\ud83d\\ude00"}'), 400, 'PCA.00020101', /distinguished_name/);
  assertError(t, await post('{"type":"ROOT","enterprise_project_id":"a\\\\u0000"}'), 400, 'PCA.00020101', /distinguished_name/);
});

t.test('numbers past what the database or a Date can hold: 400 PCA.00020001, never a 500', async (t) => {
  const get = (url: string) => app.inject({ method: 'GET', url, headers: auth });
  assertError(t, await get('/v1/private-certificate-authorities?offset=99999999999999999999'), 400, 'PCA.00020001', /offset/);
  assertError(t, await get('/v1/private-certificates?offset=9223372036854775808'), 400, 'PCA.00020001', /offset/);
  assertError(t, await get('/v1/billing-records?start_time=99999999999999999'), 400, 'PCA.00020001', /start_time/);
  assertError(t, await get('/v1/audit-events?end_time=99999999999999999'), 400, 'PCA.00020001', /end_time/);
  t.equal((await get('/v1/private-certificate-authorities?offset=2147483647')).statusCode, 200, 'the largest offset is served');
});

t.test('malformed URL (bad percent-encoding): 400 PCA.00020001', async (t) => {
  assertError(
    t,
    await app.inject({ method: 'GET', url: '/v1/private-certificate-authorities/%ZZ', headers: { ...auth, 'x-request-id': 'bad-url-1' } }),
    400,
    'PCA.00020001',
    /URL/,
  );
});

/** Bodies a route with a body schema refuses 400 before reading them (json-body.ts); one that takes none ignores them. */
const MALFORMED_BODIES = [
  '{"name": "x",',
  '{"x":"a\\u0000b"}',
  '{"x":"\\ud800"}',
  `${'['.repeat(MAX_JSON_DEPTH + 1)}${']'.repeat(MAX_JSON_DEPTH + 1)}`,
];

t.test('an endpoint that takes no body ignores one, even malformed JSON (§2); the others still refuse it', async (t) => {
  const document = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
    paths: Record<string, Record<string, { requestBody?: unknown }>>;
  };
  const bodiless = Object.entries(document.paths)
    .filter(([path]) => path.startsWith('/v1/') && !path.startsWith('/v1/test/'))
    .flatMap(([path, operations]) =>
      Object.entries(operations)
        .filter(([method, operation]) => ['post', 'put', 'patch', 'delete'].includes(method) && operation.requestBody === undefined)
        .map(([method]) => ({ method: method.toUpperCase() as 'POST', path })),
    );
  t.ok(bodiless.length >= 10, `${bodiless.length} mutations take no body`);
  // Every one answers a malformed body as it answers none (here an unknown resource: a 404, or its own refusal).
  for (const { method, path } of bodiless) {
    const url = path.replace(/\{([^}]+)\}/g, (_, name: string) => (name.endsWith('_id') ? randomUUID() : 'absent'));
    const none = await app.inject({ method, url, headers: auth });
    for (const payload of MALFORMED_BODIES) {
      const response = await app.inject({ method, url, headers: { ...auth, 'content-type': 'application/json' }, payload });
      t.equal(response.statusCode, none.statusCode, `${method} ${path} with ${payload.slice(0, 20)}: ${response.body.slice(0, 120)}`);
      t.equal(response.json().error_code, none.json().error_code, `${method} ${path}: the same answer`);
    }
    // A media type other than JSON is still refused (contract-notes: 415 on every route), once the caller is known.
    const plain = await app.inject({ method, url, headers: { ...auth, 'content-type': 'text/plain' }, payload: 'x' });
    t.equal(plain.statusCode, none.statusCode === 401 ? 401 : 415, `${method} ${path}: text/plain is 415`);
  }

  // Each action on a real CA, with a malformed body, does what it does without one.
  const api = client(harness);
  const ca = await api.root();
  const send = (method: 'POST' | 'DELETE', url: string, payload = '{bad') =>
    app.inject({ method, url, headers: { ...auth, 'content-type': 'application/json' }, payload });
  t.equal((await send('POST', `${CA}/${ca}/disable`)).statusCode, 204, 'disable');
  t.equal((await api.show(ca)).status, 'DISABLED');
  t.equal((await send('POST', `${CA}/${ca}/enable`, MALFORMED_BODIES[1])).statusCode, 204, 'enable');
  t.equal((await api.show(ca)).status, 'ACTIVED');
  const exported = await send('POST', `${CA}/${ca}/export`, MALFORMED_BODIES[3]);
  t.equal(exported.statusCode, 200, 'CA certificate export');
  t.match(exported.json(), { certificate: /^-----BEGIN CERTIFICATE-----/ });
  t.equal((await send('POST', `${CA}/${ca}/crl/disable`)).statusCode, 204, 'CRL disable');
  t.equal((await send('POST', `${CA}/${ca}/disable`)).statusCode, 204);
  t.equal((await send('DELETE', `${CA}/${ca}?pending_days=7`)).statusCode, 204, 'delete');
  t.equal((await api.show(ca)).status, 'DELETED');
  t.equal((await send('POST', `${CA}/${ca}/restore`, MALFORMED_BODIES[2])).statusCode, 204, 'restore');
  t.equal((await api.show(ca)).status, 'DISABLED');

  // A signed request's body hash still covers the bytes sent, malformed or not.
  const { access, secret } = (await app.inject({ method: 'POST', url: '/v1/access-keys', headers: auth, payload: {} })).json().credential;
  const signed = (url: string, sent: string, signedBody = sent) => {
    const headers = { host: 'pca.example.test', 'content-type': 'application/json', 'x-sdk-date': formatSdkDate(new Date()) };
    const authorization = signRequest(
      { method: 'POST', url, headers, body: Buffer.from(signedBody) },
      access,
      secret,
      Object.keys(headers),
    );
    return app.inject({ method: 'POST', url, headers: { ...headers, authorization }, payload: sent });
  };
  t.equal((await signed(`${CA}/${ca}/enable`, '{bad')).statusCode, 204, 'signed over the malformed bytes: served');
  const altered = await signed(`${CA}/${ca}/disable`, '{bad', '{bad!');
  t.equal(altered.statusCode, 401, 'signed over other bytes: refused');
  t.equal((await api.show(ca)).status, 'ACTIVED', 'and not disabled');

  // A route that takes a body refuses each of them, before its handler.
  for (const payload of MALFORMED_BODIES) {
    const response = await send('POST', `${CA}/${ca}/crl/enable`, payload);
    assertError(t, response, 400, 'PCA.00020001', /not valid JSON|NUL|surrogate|nests deeper/);
  }
  t.equal((await signed(`${CA}/${ca}/crl/enable`, '{bad')).statusCode, 400, 'signed too');
});

t.test('wrong content type: 415 PCA.00020001', async (t) => {
  const response = await app.inject({
    method: 'POST',
    url: '/v1/test/probe',
    headers: { ...auth, 'content-type': 'text/plain' },
    payload: 'name=x',
  });
  assertError(t, response, 415, 'PCA.00020001', /Content-Type/);
});

t.test('JSON without Content-Type is parsed; with a charset too', async (t) => {
  const bare = await app.inject({ method: 'POST', url: '/v1/test/probe', headers: auth, payload: Buffer.from('{"name":"abc"}') });
  t.equal(bare.statusCode, 200);
  t.same(bare.json(), { echoed: 'abc' });
  const charset = await app.inject({
    method: 'POST',
    url: '/v1/test/probe',
    headers: { ...auth, 'content-type': 'application/json; charset=utf-8' },
    payload: '{"name":"d"}',
  });
  t.same(charset.json(), { echoed: 'd' });
  t.equal(charset.headers['content-type'], 'application/json;charset=UTF-8');
});

t.test('body too large: 413 PCA.00020001', async (t) => {
  const response = await app.inject({
    method: 'POST',
    url: '/v1/test/probe',
    headers: { ...auth, 'content-type': 'application/json' },
    payload: JSON.stringify({ name: 'x'.repeat(5000) }),
  });
  assertError(t, response, 413, 'PCA.00020001', /too large/);
});

t.test('schema violations name the field: 400 PCA.00020001', async (t) => {
  assertError(t, await app.inject({ method: 'POST', url: '/v1/test/probe', headers: auth, payload: {} }), 400, 'PCA.00020001', /name/);
  assertError(
    t,
    await app.inject({ method: 'POST', url: '/v1/test/probe', headers: auth, payload: { name: 'toolong' } }),
    400,
    'PCA.00020001',
    /^name /,
  );
  assertError(
    t,
    await app.inject({ method: 'POST', url: '/v1/test/probe', headers: auth, payload: { name: 5 } }),
    400,
    'PCA.00020001',
    /name/,
  );
});

t.test('unexpected exception: 500 with a generic message, details only in the log', async (t) => {
  const response = await app.inject({ method: 'GET', url: '/v1/test/explode', headers: auth });
  assertError(t, response, 500, 'PCA.00050001', /^internal error$/);
  t.notMatch(response.body, /exploded|secret detail/);
  const logged = harness.logs.records().find((record) => record.requestId === response.headers['x-request-id'] && record.level === 50);
  t.ok(logged, 'the failure is logged with its request id');
  t.match(JSON.stringify(logged), /database exploded/);
});

t.test('database exhausted or unreachable: 503 PCA.00050002 with Retry-After', async (t) => {
  const response = await app.inject({ method: 'GET', url: '/v1/test/busy', headers: auth });
  assertError(t, response, 503, 'PCA.00050002', /temporarily unavailable/);
  t.equal(response.headers['retry-after'], '5');
});

t.test('a server-side failure tells an anonymous caller only its status; the log and a credentialed caller get the message', async (t) => {
  const anonymous = await app.inject({ method: 'GET', url: '/test/public-key-store', headers: { 'x-request-id': 'anon-503' } });
  assertError(t, anonymous, 503, 'PCA.00050002', /^the service is temporarily unavailable; retry later$/);
  t.notOk(anonymous.body.includes('prod-ca-token'), 'no token label for anyone on the Internet');
  t.ok(
    harness.logs.records().some((record) => record.requestId === 'anon-503' && /prod-ca-token/.test(String(record.errorMsg))),
    'the log names it',
  );
  assertError(t, await app.inject({ method: 'GET', url: '/v1/test/key-store', headers: auth }), 503, 'PCA.00050002', /prod-ca-token/);
});

/** Writes `text` on a fresh connection to `address`, ends it, and reads everything answered until it closes. */
const exchangeOnSocket = (address: URL, text: string) =>
  new Promise<string>((resolve, reject) => {
    const socket = connect(Number(address.port), address.hostname, () => socket.end(text));
    let answer = '';
    socket.on('data', (chunk) => (answer += chunk));
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
  });

t.test('a request the HTTP parser refuses gets the contract body and an X-Request-Id too (a real socket)', async (t) => {
  const server = await createTestApp();
  t.teardown(() => server.close());
  const address = new URL(await server.app.listen({ host: '127.0.0.1', port: 0 }));
  const rawExchange = (head: string) => exchangeOnSocket(address, head);
  const cases: [what: string, head: string, status: string, message: RegExp][] = [
    [
      'a header line without a colon',
      'GET /health HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n',
      '400 Bad Request',
      /not well-formed HTTP/,
    ],
    [
      'Content-Length not a number',
      'POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n',
      '400 Bad Request',
      /not well-formed/,
    ],
    [
      'a 20 kB header',
      `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
      '431 Request Header Fields Too Large',
      /too large/,
    ],
  ];
  for (const [what, head, status, message] of cases) {
    const answer = await rawExchange(head);
    const [headers, body] = answer.split('\r\n\r\n');
    t.match(headers, new RegExp(`^HTTP/1\\.1 ${status}\r\n`), what);
    t.match(headers, /\r\nX-Request-Id: [0-9a-f]{32}\r\n/i, `${what}: X-Request-Id`);
    t.match(headers, /\r\nContent-Type: application\/json;charset=UTF-8\r\n/i, `${what}: JSON`);
    t.match(JSON.parse(body), { error_code: 'PCA.00020001', error_msg: message }, `${what}: the contract's body`);
    const requestId = /\r\nX-Request-Id: ([0-9a-f]{32})\r\n/i.exec(headers)?.[1];
    t.match(
      server.logs.records().filter((record) => record.requestId === requestId),
      [{ status: Number(status.split(' ')[0]), errorCode: 'PCA.00020001', msg: 'request refused by the HTTP parser' }],
      `${what}: one log line under the answered id`,
    );
  }
});

t.test('an HTTP/1.1 request without Host: 400 in the contract format, with its id and access line; HTTP/1.0 needs none', async (t) => {
  const server = await createTestApp();
  t.teardown(() => server.close());
  const address = new URL(await server.app.listen({ host: '127.0.0.1', port: 0 }));
  const [headers, body] = (await exchangeOnSocket(address, 'GET /health HTTP/1.1\r\nX-Request-Id: no-host\r\n\r\n')).split('\r\n\r\n');
  t.match(headers, /^HTTP\/1\.1 400 Bad Request\r\n/);
  t.match(headers, /\r\nx-request-id: no-host\r\n/i);
  t.match(JSON.parse(body), { error_code: 'PCA.00020001', error_msg: /Host header/ });
  t.match(
    server.logs.records().filter((record) => record.requestId === 'no-host'),
    [{ msg: 'request completed', status: 400, errorCode: 'PCA.00020001' }],
    'one access line',
  );
  const old = await exchangeOnSocket(address, 'GET /health HTTP/1.0\r\n\r\n');
  t.match(old, /^HTTP\/1\.1 200 OK\r\n/, 'HTTP/1.0 predates Host: served');
});

t.test('a refusal is one access line carrying its error code and message', async (t) => {
  const linesOf = (requestId: string) => harness.logs.records().filter((record) => record.requestId === requestId);
  type Injected = { method: 'GET' | 'POST'; url: string; headers?: Record<string, string>; payload?: string };
  const cases: [what: string, request: Injected, line: Record<string, unknown>][] = [
    [
      'a refusal by a route',
      { method: 'POST', url: '/v1/test/probe', headers: { ...auth, 'content-type': 'application/json' }, payload: '{bad' },
      { status: 400, route: '/v1/test/probe', errorCode: 'PCA.00020001', errorMsg: /not valid JSON/ },
    ],
    [
      'a malformed URL, refused before routing',
      { method: 'GET', url: '/v1/private-certificates/%ZZ' },
      { status: 400, route: 'unmatched', errorCode: 'PCA.00020001', errorMsg: /malformed/ },
    ],
    [
      'a malformed ACME URL, answered with a problem document',
      { method: 'POST', url: '/acme/%ZZ/new-order', headers: { 'content-type': 'application/jose+json' }, payload: '{}' },
      { status: 400, route: 'unmatched', errorCode: 'malformed', errorMsg: /not a valid url/ },
    ],
    ['an unknown route', { method: 'GET', url: '/v1/no-such-route' }, { status: 404, route: 'unmatched', errorCode: 'PCA.10010002' }],
  ];
  for (const [index, [what, request, line]] of cases.entries()) {
    const requestId = `one-line-${index}`;
    const response = await app.inject({ ...request, headers: { ...request.headers, 'x-request-id': requestId } });
    t.equal(response.statusCode, line.status, `${what}: ${response.body}`);
    // The ACME problem is answered asynchronously: its line follows the response.
    await new Promise((resolve) => setImmediate(resolve));
    const lines = linesOf(requestId);
    t.equal(lines.length, 1, `${what}: one line`);
    t.match(lines[0], { msg: 'request completed', ...line }, what);
  }
});

t.test('after a request refused before routing, a parser refusal on the same connection gets an id of its own', async (t) => {
  const server = await createTestApp();
  t.teardown(() => server.close());
  const address = new URL(await server.app.listen({ host: '127.0.0.1', port: 0 }));
  const answer = await exchangeOnSocket(
    address,
    'GET /v1/private-certificates/%ZZ HTTP/1.1\r\nHost: x\r\nX-Request-Id: bad-url-first\r\n\r\n' +
      'GET /health HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n',
  );
  const ids = [...answer.matchAll(/\r\nx-request-id: ([^\r]+)\r\n/gi)].map((match) => match[1]);
  t.equal(ids.length, 2, answer);
  t.equal(ids[0], 'bad-url-first');
  t.match(ids[1], /^[0-9a-f]{32}$/, 'the second answer is not filed under the first request');
});

t.test('X-Request-Id is echoed when sane, generated and unique otherwise', async (t) => {
  const echoed = await app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'client-req-123' } });
  t.equal(echoed.headers['x-request-id'], 'client-req-123');
  const hostile = await app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'bad id\twith "quotes"' } });
  t.not(hostile.headers['x-request-id'], 'bad id\twith "quotes"');
  const a = await app.inject({ method: 'GET', url: '/health' });
  const b = await app.inject({ method: 'GET', url: '/health' });
  t.not(a.headers['x-request-id'], b.headers['x-request-id']);
  const failed = await app.inject({ method: 'GET', url: '/nope', headers: { 'x-request-id': 'on-error-too' } });
  t.equal(failed.headers['x-request-id'], 'on-error-too');
});

t.test('order of checks: credential (401) before action (403) before syntax (400)', async (t) => {
  assertError(
    t,
    await app.inject({ method: 'POST', url: '/v1/test/probe', headers: { 'content-type': 'application/json' }, payload: '{bad' }),
    401,
    'APIG.0303',
  );
  const getOnly = { authorization: `Bearer ${harness.tokenWith(['pca:ca:get'])}` };
  assertError(
    t,
    await app.inject({
      method: 'POST',
      url: '/v1/test/probe',
      headers: { ...getOnly, 'content-type': 'application/json' },
      payload: '{bad',
    }),
    403,
    'PCA.00010003',
    /pca:ca:create/,
  );
  assertError(
    t,
    await app.inject({ method: 'POST', url: '/v1/test/probe', headers: { ...auth, 'content-type': 'application/json' }, payload: '{bad' }),
    400,
    'PCA.00020001',
  );
});

t.test('credentials: none, several, malformed or foreign tokens get 401 APIG.0303', async (t) => {
  const url = '/v1/pca/config/console';
  assertError(t, await app.inject({ method: 'GET', url }), 401, 'APIG.0303', /no credential/);
  const token = harness.token();
  assertError(
    t,
    await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}`, 'x-auth-token': token } }),
    401,
    'APIG.0303',
    /more than one/,
  );
  assertError(t, await app.inject({ method: 'GET', url, headers: { authorization: 'Bearer not.a.jwt' } }), 401, 'APIG.0303');
  assertError(t, await app.inject({ method: 'GET', url, headers: { authorization: 'Basic dXNlcjpwYXNz' } }), 401, 'APIG.0303');
  const ok = await app.inject({ method: 'GET', url, headers: { 'x-auth-token': token } });
  t.equal(ok.statusCode, 200, 'X-Auth-Token is accepted like Bearer');
  t.equal(ok.json().is_support_ocsp, true);
});

t.test('health and readiness', async (t) => {
  const health = await app.inject({ method: 'GET', url: '/health' });
  t.equal(health.statusCode, 200);
  t.same(health.json(), { status: 'ok' });
  const ready = await app.inject({ method: 'GET', url: '/ready' });
  t.equal(ready.statusCode, 200);
  t.equal(ready.json().checks.database, 'ok');
  t.equal(ready.json().checks.key_store_software, 'ok');
});

t.test('logs: a line that would carry credentials or key material has them redacted', async (t) => {
  // Nothing logs these shapes today (headers and bodies never are); this proves the redaction stands if one ever does.
  const secrets = {
    headers: { authorization: 'Bearer bearer-SECRET', 'x-auth-token': 'xauth-SECRET', 'x-security-token': 'sts-SECRET' },
    ca: { sealedPrivateKey: 'sealed-SECRET', keyRef: 'keyref-SECRET', privateKey: 'privkey-SECRET' },
    body: { private_key: 'pem-SECRET', password: 'password-SECRET', secret: 'sk-SECRET', token: 'token-SECRET' },
    accessKey: { sealedSecret: 'sealedsk-SECRET' },
    password: 'top-password-SECRET',
  };
  app.log.error(secrets, 'redaction check');
  const line = harness.logs.records().find((record) => record.msg === 'redaction check');
  t.ok(line, 'the line was written');
  t.notMatch(JSON.stringify(line), /SECRET/, 'no secret value reaches the log');
  t.match(line, {
    headers: { authorization: '[redacted]', 'x-auth-token': '[redacted]', 'x-security-token': '[redacted]' },
    ca: { sealedPrivateKey: '[redacted]', keyRef: '[redacted]', privateKey: '[redacted]' },
    body: { private_key: '[redacted]', password: '[redacted]', secret: '[redacted]', token: '[redacted]' },
    accessKey: { sealedSecret: '[redacted]' },
    password: '[redacted]',
  });
});

t.test('logs: one structured line per request, no credentials or key material', async (t) => {
  const token = harness.token();
  const response = await app.inject({
    method: 'POST',
    url: '/v1/test/private',
    headers: { authorization: `Bearer ${token}`, 'x-request-id': 'log-check-1', 'content-type': 'application/json' },
    payload: JSON.stringify({ private_key: '-----BEGIN PRIVATE KEY-----MIIEvQ', password: 'hunter2' }),
  });
  t.equal(response.statusCode, 200);
  const line = harness.logs.records().find((record) => record.requestId === 'log-check-1' && record.msg === 'request completed');
  t.ok(line, 'access log line present');
  t.match(line, { method: 'POST', route: '/v1/test/private', status: 200, domain: harness.config.defaultDomainId });
  t.type(line?.latencyMs, 'number');
  t.notOk(harness.logs.text.includes(token), 'the token never reaches the log');
  t.notOk(harness.logs.text.includes(token.split('.')[2]), 'nor its signature');
  t.notOk(/hunter2|BEGIN PRIVATE KEY/.test(harness.logs.text), 'nor body secrets');
});
