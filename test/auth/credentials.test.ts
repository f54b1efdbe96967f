/**
 * Credentials over HTTP (§3, §10.7): requests signed by the Huawei Node SDK (its HcClient against a started server,
 * and its AKSKSigner through inject), tampering and replay, deleted keys, X-Domain-Id, one credential per request,
 * forged JWTs, the order of checks on every /v1 route, token exchange, domain discovery and rate limiting.
 */
import { createHmac, createPrivateKey, generateKeyPairSync, randomUUID, sign as signData } from 'node:crypto';
import { get as httpGet } from 'node:http';
import { stringify as stringifyQuery } from 'node:querystring';
import t, { type Test } from 'tap';
import { AKSKSigner } from '@huaweicloud/huaweicloud-sdk-core/auth/AKSKSigner.js';
import { GlobalCredentials } from '@huaweicloud/huaweicloud-sdk-core/auth/GlobalCredentials.js';
import { HcClient } from '@huaweicloud/huaweicloud-sdk-core/HcClient.js';
import { DefaultHttpClient } from '@huaweicloud/huaweicloud-sdk-core/http/DefaultHttpClient.js';
import { IamService } from '@huaweicloud/huaweicloud-sdk-core/internal/services/iam.service.js';
import type { FastifyInstance } from 'fastify';
import { ACTIONS } from '../../src/auth/actions.ts';
import { formatSdkDate, type SignedRequest, signRequest } from '../../src/auth/sdk-hmac.ts';
import { ManualClock } from '../../src/clock.ts';
import { createTestApp, OTHER_DOMAIN, TEST_DOMAIN, type TestApp } from '../helpers/app.ts';
import { acmeCa } from '../acme/support.ts';
import { client } from '../ca/support.ts';
import { sdkError } from './support.ts';
import { fillPath, v1Routes } from '../tenancy/v1-routes.ts';

type Response = Awaited<ReturnType<FastifyInstance['inject']>>;
interface KeyPair {
  access: string;
  secret: string;
  /** A temporary pair's X-Security-Token. */
  securitytoken?: string;
}

const clock = new ManualClock();
const harness = await createTestApp({ clock });
t.teardown(() => harness.close());
const { app } = harness;
const base = await app.listen({ host: '127.0.0.1', port: 0 });

function assertError(t: Test, response: Response, status: number, code: string, message?: RegExp): void {
  t.equal(response.statusCode, status, `status ${status}`);
  t.equal(response.json().error_code, code);
  if (message) t.match(response.json().error_msg, message);
}

async function createKey(h: TestApp, body: object = {}, domainId?: string): Promise<KeyPair> {
  const response = await h.app.inject({ method: 'POST', url: '/v1/access-keys', headers: h.auth(domainId), payload: body });
  if (response.statusCode !== 200) throw new Error(`access key creation failed: ${response.body}`);
  return response.json().credential as KeyPair;
}

const credentialsOf = (key: KeyPair, domainId?: string) => {
  const credentials = new GlobalCredentials().withAk(key.access).withSk(key.secret);
  return domainId ? credentials.withDomainId(domainId) : credentials;
};

function sdkClient(key: KeyPair, domainId: string | undefined = TEST_DOMAIN) {
  const client = new HcClient(new DefaultHttpClient({}, [base])).withEndpoints([base]).withCredential(credentialsOf(key, domainId));
  return (options: object) =>
    client.sendRequest({ pathParams: {}, queryParams: {}, headers: {}, ...options } as never) as Promise<Record<string, unknown>>;
}

/** Signs with the Node SDK's AKSKSigner the way its HcClient does; returns what inject should send. */
function sdkSigned(key: KeyPair, method: string, path: string, queryParams: Record<string, unknown> = {}, data?: object) {
  const request = {
    method,
    endpoint: `http://pca.example.test${path}`,
    // The SDK's client adds a temporary pair's token to the headers it signs.
    headers: {
      'X-Domain-Id': TEST_DOMAIN,
      ...(key.securitytoken && { 'X-Security-Token': key.securitytoken }),
      ...(data && { 'content-type': 'application/json' }),
    },
    queryParams,
    data,
  };
  const query = stringifyQuery(queryParams as Record<string, string>);
  const signed = AKSKSigner.sign(request as never, credentialsOf(key)) as Record<string, string>;
  const headers = Object.fromEntries(Object.entries(signed).map(([name, value]) => [name.toLowerCase(), value]));
  const payload = data === undefined ? undefined : Buffer.from(JSON.stringify(data));
  return { method: method as 'GET', url: query ? `${path}?${query}` : path, headers, payload };
}

t.test('the Node SDK HcClient against a started server', async (t) => {
  const admin = await createKey(harness, { description: 'sdk' });
  const sdk = sdkClient(admin);

  // The SDK's own discovery call for credentials without a domain id: a signed GET that carries the body `{}`.
  const iam = new IamService(new HcClient(new DefaultHttpClient({}, [base])).withCredential(credentialsOf(admin)), base);
  const discovered = await (iam as unknown as { getAuthDomainId(): Promise<string> }).getAuthDomainId();
  t.equal(discovered, TEST_DOMAIN, 'IAM domain discovery (GET /v3/auth/domains) gives the key domain');

  const console = await sdk({ method: 'GET', url: '/v1/pca/config/console' });
  t.equal(console.httpStatusCode, 200);

  const created = await sdk({
    method: 'POST',
    url: '/v1/access-keys',
    contentType: 'application/json;charset=UTF-8',
    data: { description: 'für Prüfung: ü é 漢字', actions: ['pca:ca:get', 'pca:cert:list'] },
  });
  const credential = created.credential as Record<string, unknown>;
  t.match(credential, {
    access: /^[A-Z0-9]{20}$/,
    secret: /^.{40}$/,
    domain_id: TEST_DOMAIN,
    status: 'active',
    description: 'für Prüfung: ü é 漢字',
  });
  t.same(credential.actions, ['pca:ca:get', 'pca:cert:list']);
  t.type(credential.create_time, 'number');

  const listed = await sdk({
    method: 'GET',
    url: '/v1/audit-events',
    queryParams: { action: 'pca:accessKey:create', limit: 50, resource_id: credential.access },
  });
  t.equal(listed.total, 1, 'signed query parameters are verified');

  const limited = sdkClient(credential as unknown as KeyPair);
  t.equal((await limited({ method: 'GET', url: '/v1/pca/config/console' })).httpStatusCode, 200, 'the new key signs');
  const refused = await sdkError(limited({ method: 'GET', url: '/v1/access-keys' }));
  t.match(refused, { httpStatusCode: 403, errorCode: 'PCA.00010003' }, 'a key without every action may not manage keys');

  const deleted = await sdk({ method: 'DELETE', url: '/v1/access-keys/{access}', pathParams: { access: credential.access } });
  t.equal(deleted.httpStatusCode, 204);
  const afterDelete = await sdkError(limited({ method: 'GET', url: '/v1/pca/config/console' }));
  t.match(afterDelete, { httpStatusCode: 401, errorCode: 'APIG.0303' }, 'a deleted key fails at once');
  t.match(afterDelete.errorMsg, /unknown access key/);

  const mismatch = await sdkError(sdkClient(admin, OTHER_DOMAIN)({ method: 'GET', url: '/v1/pca/config/console' }));
  t.match(mismatch, { httpStatusCode: 401, errorCode: 'APIG.0303' }, 'X-Domain-Id of another domain');
  t.equal((await sdkClient(admin, undefined)({ method: 'GET', url: '/v1/pca/config/console' })).httpStatusCode, 200, 'no X-Domain-Id');

  const unknown = await sdkError(
    sdkClient({ access: 'ABCDEFGHIJKLMNOPQRST', secret: admin.secret })({ method: 'GET', url: '/v1/pca/config/console' }),
  );
  t.match(unknown, { httpStatusCode: 401, errorCode: 'APIG.0303' }, 'unknown AK');

  const exchanged = await sdk({ method: 'POST', url: '/v1/auth/tokens', contentType: 'application/json', data: {} });
  t.type(exchanged.token, 'string');
  const claims = app.jwt.decode<Record<string, unknown>>(exchanged.token as string)!;
  t.match(claims, { sub: admin.access, domain_id: TEST_DOMAIN });
  t.same(claims.actions, [...ACTIONS], "the token carries the key's actions");
  t.equal(exchanged.expires_at, (claims.exp as number) * 1000);
  const viaToken = await fetch(`${base}/v1/access-keys`, { headers: { 'x-auth-token': exchanged.token as string } });
  t.equal(viaToken.status, 200, 'the exchanged token works as X-Auth-Token');
});

t.test('token exchange and domain lookup: AK/SK only; X-Subject-Token', async (t) => {
  const key = await createKey(harness);
  const exchange = await app.inject(sdkSigned(key, 'POST', '/v1/auth/tokens'));
  t.equal(exchange.statusCode, 200, 'an empty body is accepted');
  t.equal(exchange.headers['x-subject-token'], exchange.json().token);
  const ttl = harness.config.jwt.ttlSeconds * 1000;
  t.ok(Math.abs(exchange.json().expires_at - (Date.now() + ttl)) < 5000, 'expires after the configured lifetime');
  const adminClaims = app.jwt.decode<{ iat: number; exp: number }>(harness.token())!;
  t.equal(adminClaims.exp - adminClaims.iat, 3600, 'admin tokens live the lifetime asked for, in seconds');

  for (const [method, url] of [
    ['POST', '/v1/auth/tokens'],
    ['GET', '/v3/auth/domains'],
  ] as const) {
    assertError(
      t,
      await app.inject({ method, url, headers: harness.auth(), payload: method === 'POST' ? {} : undefined }),
      401,
      'APIG.0303',
      /AK\/SK/,
    );
  }
  const domains = await app.inject(sdkSigned(key, 'GET', '/v3/auth/domains'));
  t.same(domains.json(), { domains: [{ id: TEST_DOMAIN, name: TEST_DOMAIN }] }, 'name is the id when none is configured');
  await harness.database.prisma.domain.create({ data: { id: TEST_DOMAIN, name: 'tenant-a' } });
  t.same((await app.inject(sdkSigned(key, 'GET', '/v3/auth/domains'))).json(), { domains: [{ id: TEST_DOMAIN, name: 'tenant-a' }] });
});

t.test("a token outlives its access key's deletion until its exp, but mints no credential once the key is gone", async (t) => {
  const key = await createKey(harness);
  const token = (await app.inject(sdkSigned(key, 'POST', '/v1/auth/tokens'))).json().token as string;
  const bearer = { authorization: `Bearer ${token}` };
  const minted = await app.inject({ method: 'POST', url: '/v1/access-keys', headers: bearer, payload: {} });
  t.equal(minted.statusCode, 200, 'while the key exists, its token creates a key');
  const deleted = await app.inject({ method: 'DELETE', url: `/v1/access-keys/${key.access}`, headers: harness.auth() });
  t.equal(deleted.statusCode, 204, deleted.body);
  t.equal((await app.inject({ method: 'GET', url: '/v1/private-certificate-authorities', headers: bearer })).statusCode, 200, 'a read');
  // (Tokens and security tokens are minted from signed requests only.)
  const refused = await app.inject({ method: 'POST', url: '/v1/access-keys', headers: bearer, payload: {} });
  assertError(t, refused, 401, 'APIG.0303', /exchanged for, .*, is deleted/);
  t.equal(
    (await app.inject({ method: 'POST', url: '/v1/access-keys', headers: harness.auth(), payload: {} })).statusCode,
    200,
    'a development token still does',
  );
});

t.test('an ACME EAB key never expires: neither a temporary pair nor a token whose key is deleted creates one', async (t) => {
  const caId = await acmeCa(client(harness));
  const eab = `/v1/private-certificate-authorities/${caId}/acme/eab`;
  const key = await createKey(harness);
  const pair = (await app.inject(sdkSigned(key, 'POST', '/v3.0/OS-CREDENTIAL/securitytokens', {}, {}))).json().credential as KeyPair;
  assertError(t, await app.inject(sdkSigned(pair, 'POST', eab)), 403, 'PCA.00010003', /cannot create .*ACME EAB keys/);
  const token = (await app.inject(sdkSigned(key, 'POST', '/v1/auth/tokens'))).json().token as string;
  const bearer = { authorization: `Bearer ${token}` };
  t.equal((await app.inject({ method: 'POST', url: eab, headers: bearer })).statusCode, 200, 'while its key exists, the token creates one');
  t.equal((await app.inject({ method: 'DELETE', url: `/v1/access-keys/${key.access}`, headers: harness.auth() })).statusCode, 204);
  assertError(t, await app.inject({ method: 'POST', url: eab, headers: bearer }), 401, 'APIG.0303', /is deleted/);
  const listed = await app.inject({ method: 'GET', url: eab, headers: harness.auth() });
  t.equal(listed.json().eab_keys.length, 1, 'only the one made while the key existed');
});

t.test('changing any signed byte or the date, replaying a POST, or anything after 15 minutes gets 401', async (t) => {
  // The SDK dates its signature by the real clock: start the server's there, however long earlier tests took.
  clock.set(Date.now());
  const key = await createKey(harness);
  const original = sdkSigned(key, 'POST', '/v1/auth/tokens', { a: 'b c' }, { hello: 'world' });
  const read = sdkSigned(key, 'GET', '/v1/pca/config/console');
  // The SDK dates its signature by the real clock; the service's clock starts there, whatever time has passed.
  const signedAt = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(original.headers['x-sdk-date'])!;
  clock.set(Date.UTC(+signedAt[1], +signedAt[2] - 1, +signedAt[3], +signedAt[4], +signedAt[5], +signedAt[6]));
  t.equal((await app.inject(original)).statusCode, 200, 'the untouched request is accepted');

  const body = Buffer.from(original.payload!);
  body[3] ^= 1;
  const laterDate = original.headers['x-sdk-date'].replace(/(\d)Z$/, (_, digit: string) => `${(Number(digit) + 1) % 10}Z`);
  const variants: Record<string, typeof original> = {
    'one body byte': { ...original, payload: body },
    'a signed header (host)': { ...original, headers: { ...original.headers, host: 'pca.example.tesu' } },
    'a signed header (content-type)': { ...original, headers: { ...original.headers, 'content-type': 'application/json; charset=utf-8' } },
    'the date': { ...original, headers: { ...original.headers, 'x-sdk-date': laterDate } },
    'the query': { ...original, url: original.url.replace('b%20c', 'b%20d') },
    'the access key': {
      ...original,
      headers: { ...original.headers, authorization: original.headers.authorization.replace(key.access, 'ABCDEFGHIJKLMNOPQRST') },
    },
  };
  for (const [what, request] of Object.entries(variants)) {
    assertError(t, await app.inject(request), 401, 'APIG.0303', undefined);
    t.comment(`changed ${what}: 401`);
  }

  clock.advance(14 * 60_000);
  t.equal((await app.inject(read)).statusCode, 200, 'within 15 minutes a signature still holds (a GET, which may repeat)');
  t.equal((await app.inject(read)).statusCode, 200);
  assertError(t, await app.inject(original), 401, 'APIG.0303', /already used/);
  t.comment('the same POST again within 15 minutes: refused as a replay (test/auth/replay.test.ts)');
  clock.advance(2 * 60_000);
  assertError(t, await app.inject(read), 401, 'APIG.0303', /15 minutes/);
  assertError(t, await app.inject(original), 401, 'APIG.0303', /15 minutes/);
  clock.set(Date.now());
});

t.test('a signed header sent twice is signed as two sorted lines (§3.1 step 5), over a real socket', async (t) => {
  const key = await createKey(harness);
  const host = new URL(base).host;
  const send = (values: string[], signedValues: string[]) => {
    const sdkDate = formatSdkDate(new Date());
    const signed: SignedRequest = {
      method: 'GET',
      url: '/v1/private-certificate-authorities',
      headers: { host, 'x-sdk-date': sdkDate, 'x-foo': signedValues },
      body: new Uint8Array(),
    };
    const authorization = signRequest(signed, key.access, key.secret, ['host', 'x-foo', 'x-sdk-date']);
    // node:http writes an array value as one header line per value, as a proxy or a client that repeats a header would.
    return new Promise<number>((resolve, reject) => {
      httpGet(`${base}${signed.url}`, { headers: { 'x-sdk-date': sdkDate, 'x-foo': values, authorization } }, (response) => {
        response.resume();
        resolve(response.statusCode!);
      }).on('error', reject);
    });
  };
  t.equal(await send(['b', 'a'], ['b', 'a']), 200, 'the two values, signed as two lines');
  t.equal(await send(['b', 'a'], ['b, a']), 401, 'not as the one line Node would have joined them into');
  t.equal(await send(['b'], ['b', 'a']), 401, 'a value dropped in transit');
});

t.test('exactly one credential per request', async (t) => {
  const key = await createKey(harness);
  const signed = sdkSigned(key, 'GET', '/v1/pca/config/console');
  const token = harness.token();
  assertError(t, await app.inject({ method: 'GET', url: '/v1/pca/config/console' }), 401, 'APIG.0303', /no credential/);
  assertError(t, await app.inject({ ...signed, headers: { ...signed.headers, 'x-auth-token': token } }), 401, 'APIG.0303', /more than one/);
  assertError(
    t,
    await app.inject({
      method: 'GET',
      url: '/v1/pca/config/console',
      headers: { authorization: `Bearer ${token}`, 'x-auth-token': token },
    }),
    401,
    'APIG.0303',
    /more than one/,
  );
  assertError(
    t,
    await app.inject({
      method: 'GET',
      url: '/v1/pca/config/console',
      headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` },
    }),
    401,
    'APIG.0303',
    /unsupported/,
  );
  assertError(
    t,
    await app.inject({ method: 'GET', url: '/v1/pca/config/console', headers: { 'x-auth-token': token, 'x-domain-id': OTHER_DOMAIN } }),
    401,
    'APIG.0303',
    /X-Domain-Id/,
  );
});

t.test('forged and unacceptable JWTs get 401', async (t) => {
  const { issuer, audience, privateKeyPem, publicKeyPem } = harness.config.jwt;
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const goodClaims = { sub: 'forger', domain_id: TEST_DOMAIN, actions: [...ACTIONS], iss: issuer, aud: audience, iat: now, exp: now + 600 };
  const es256 = (pem: string) => (input: string) =>
    signData('sha256', Buffer.from(input), { key: createPrivateKey(pem), dsaEncoding: 'ieee-p1363' }).toString('base64url');
  const token = (alg: string, claims: object, signer: (input: string) => string) => {
    const input = `${encode({ alg, typ: 'JWT' })}.${encode(claims)}`;
    return `${input}.${signer(input)}`;
  };
  const otherKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const call = (jwt: string) => app.inject({ method: 'GET', url: '/v1/pca/config/console', headers: { authorization: `Bearer ${jwt}` } });

  t.equal((await call(token('ES256', goodClaims, es256(privateKeyPem)))).statusCode, 200, 'the hand-made control token is accepted');
  const forged: Record<string, string> = {
    'alg none': token('none', goodClaims, () => ''),
    'HS256 keyed with the public key': token('HS256', goodClaims, (input) =>
      createHmac('sha256', publicKeyPem).update(input).digest('base64url'),
    ),
    expired: token('ES256', { ...goodClaims, iat: now - 7200, exp: now - 3600 }, es256(privateKeyPem)),
    'wrong audience': token('ES256', { ...goodClaims, aud: 'someone-else' }, es256(privateKeyPem)),
    'wrong issuer': token('ES256', { ...goodClaims, iss: 'someone-else' }, es256(privateKeyPem)),
    'another key': token('ES256', goodClaims, es256(otherKey)),
    'no domain': token('ES256', { ...goodClaims, domain_id: undefined }, es256(privateKeyPem)),
    // Signed with the deployment's key, as another system sharing it might mint them: still not ours.
    'no issuer': token('ES256', { ...goodClaims, iss: undefined }, es256(privateKeyPem)),
    'no audience': token('ES256', { ...goodClaims, aud: undefined }, es256(privateKeyPem)),
    'an empty domain': token('ES256', { ...goodClaims, domain_id: '' }, es256(privateKeyPem)),
    'a domain with a space': token('ES256', { ...goodClaims, domain_id: 'a b' }, es256(privateKeyPem)),
  };
  for (const [what, jwt] of Object.entries(forged)) {
    const response = await call(jwt);
    t.equal(response.statusCode, 401, what);
    t.equal(response.json().error_code, 'APIG.0303', what);
    const viaHeader = await app.inject({ method: 'GET', url: '/v1/pca/config/console', headers: { 'x-auth-token': jwt } });
    t.equal(viaHeader.statusCode, 401, `${what} (X-Auth-Token)`);
  }
});

t.test('verified tokens are cached, but never past their exp and never for another token', async (t) => {
  const jwt = app.jwt.sign({ sub: 'short-lived', domain_id: TEST_DOMAIN, actions: [...ACTIONS] }, { expiresIn: 2 });
  const { exp } = app.jwt.decode<{ exp: number }>(jwt)!;
  t.ok(exp * 1000 - Date.now() < 3000, 'expires within 3 s');
  const call = (token: string) =>
    app.inject({ method: 'GET', url: '/v1/pca/config/console', headers: { authorization: `Bearer ${token}` } });
  t.equal((await call(jwt)).statusCode, 200, 'first use: verified');
  t.equal((await call(jwt)).statusCode, 200, 'second use: from the cache');
  const [header, payload, signature] = jwt.split('.');
  const flipped = `${signature.slice(0, 10)}${signature[10] === 'A' ? 'B' : 'A'}${signature.slice(11)}`;
  t.equal((await call(`${header}.${payload}.${flipped}`)).statusCode, 401, 'a different signature on the same claims is verified afresh');
  await new Promise((resolve) => setTimeout(resolve, exp * 1000 - Date.now() + 50));
  const late = await call(jwt);
  t.equal(late.statusCode, 401, 'refused once expired, though its verdict was cached');
  t.match(late.json().error_msg, /expired/);
});

t.test('order of checks: a credential without the action gets 403 before any 400/404, on every /v1 route', async (t) => {
  const noActions = harness.tokenWith([]);
  const routes = await v1Routes(app);
  t.ok(routes.length >= 5, `${routes.length} routes`);
  for (const route of routes) {
    const url = fillPath(route, Object.fromEntries(route.params.map((name) => [name, 'not an id'])));
    const response = await app.inject({
      method: route.method as 'GET',
      url,
      headers: { authorization: `Bearer ${noActions}`, 'content-type': 'application/json' },
      payload: route.method === 'GET' ? undefined : '{"broken": ',
    });
    const signedOnly = route.path === '/v1/auth/tokens';
    t.equal(response.statusCode, signedOnly ? 401 : 403, `${route.method} ${route.path}`);
    t.equal(response.json().error_code, signedOnly ? 'APIG.0303' : 'PCA.00010003');
  }
});

t.test('rate limit per credential: 429 with Retry-After and APIG.0308 for one key, not another', async (t) => {
  const limited = await createTestApp({ env: { RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW_MS: '60000' } });
  t.teardown(() => limited.close());
  const first = await createKey(limited);
  const second = await createKey(limited);
  const call = (key: KeyPair) => limited.app.inject(sdkSigned(key, 'GET', '/v1/pca/config/console'));
  for (let i = 0; i < 3; i += 1) t.equal((await call(first)).statusCode, 200, `call ${i + 1}`);
  const throttled = await call(first);
  assertError(t, throttled, 429, 'APIG.0308', /rate limit/);
  t.match(throttled.headers['retry-after'], /^[1-9]\d*$/);
  t.ok(Number(throttled.headers['retry-after']) <= 60);
  t.match(throttled.headers['x-request-id'], /\S/);
  t.equal((await call(second)).statusCode, 200, 'another key has its own budget');
  // Bodies refused after authentication (malformed JSON, another media type) spend the credential's budget too.
  const withToken = { authorization: `Bearer ${limited.token('0123456789abcdef0123456789abcdef')}` };
  const post = (contentType: string, payload: string) =>
    limited.app.inject({
      method: 'POST',
      url: '/v1/private-certificates/csr',
      headers: { ...withToken, 'content-type': contentType },
      payload,
    });
  t.same(
    [
      (await post('application/json', '{')).statusCode,
      (await post('text/plain', '{}')).statusCode,
      (await post('application/json', '[')).statusCode,
    ],
    [400, 415, 400],
  );
  assertError(
    t,
    await limited.app.inject({ method: 'GET', url: '/v1/pca/config/console', headers: withToken }),
    429,
    'APIG.0308',
    /rate limit/,
  );
  t.match(
    (await limited.app.inject({ method: 'GET', url: '/v1/pca/config/console', headers: withToken })).headers['retry-after'],
    /^[1-9]\d*$/,
    "a token's 429 (refused before its body) says when to retry",
  );
  // A token where only a signed request is taken is refused as a credential (401), throttled or not: waiting helps nothing.
  assertError(t, await limited.app.inject({ method: 'POST', url: '/v1/auth/tokens', headers: withToken, payload: {} }), 401, 'APIG.0303');
  // So do requests refused for want of the action: each refused mutation writes an audit event, a throttled one not.
  const forbiddenDomain = 'fedcba9876543210fedcba9876543210';
  const forbidden = { authorization: `Bearer ${limited.tokenWith([], forbiddenDomain)}` };
  const createCa = () =>
    limited.app.inject({ method: 'POST', url: '/v1/private-certificate-authorities', headers: forbidden, payload: {} });
  t.same([(await createCa()).statusCode, (await createCa()).statusCode, (await createCa()).statusCode], [403, 403, 403]);
  assertError(t, await createCa(), 429, 'APIG.0308', /rate limit/);
  const failures = await limited.database.prisma.auditEvent.count({ where: { domainId: forbiddenDomain, outcome: 'FAILURE' } });
  t.equal(failures, 3, 'three refusals audited, the throttled request not');
  const token = `Bearer ${limited.token(OTHER_DOMAIN)}`;
  t.equal(
    (await limited.app.inject({ method: 'GET', url: '/v1/pca/config/console', headers: { authorization: token } })).statusCode,
    200,
    'a token subject too',
  );
});

t.test("a signed request refused for its permission or its body spends its key's budget too", async (t) => {
  const limited = await createTestApp({ env: { RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW_MS: '60000' } });
  t.teardown(() => limited.close());
  const key = await createKey(limited, { actions: ['pca:ca:issueCert'] });
  // Signed over the raw bytes, which the SDK signer would only send as valid JSON.
  const signedRaw = (contentType: string, payload: string) => {
    const headers = {
      host: 'pca.example.test',
      'x-sdk-date': formatSdkDate(new Date()),
      'x-domain-id': TEST_DOMAIN,
      'content-type': contentType,
    };
    const url = '/v1/private-certificates/csr';
    const authorization = signRequest(
      { method: 'POST', url, headers, body: Buffer.from(payload) },
      key.access,
      key.secret,
      Object.keys(headers),
    );
    return limited.app.inject({ method: 'POST', url, headers: { ...headers, authorization }, payload });
  };
  const forbidden = await limited.app.inject(sdkSigned(key, 'POST', '/v1/private-certificate-authorities', {}, {}));
  assertError(t, forbidden, 403, 'PCA.00010003', /does not permit/);
  t.same([(await signedRaw('application/json', '{')).statusCode, (await signedRaw('text/plain', '{}')).statusCode], [400, 415]);
  assertError(t, await signedRaw('application/json', '{}'), 429, 'APIG.0308', /rate limit/);
  const failures = await limited.database.prisma.auditEvent.count({ where: { domainId: TEST_DOMAIN, outcome: 'FAILURE' } });
  t.equal(failures, 3, 'each refused mutation audited, the throttled one not');
});

t.test("a domain's credentials share one budget: more keys buy no more requests", async (t) => {
  const limited = await createTestApp({ env: { RATE_LIMIT_MAX: '3', DOMAIN_RATE_LIMIT_MAX: '8', RATE_LIMIT_WINDOW_MS: '60000' } });
  t.teardown(() => limited.close());
  // The admin token's three creations are the domain's first three requests.
  const [first, second, third] = [await createKey(limited), await createKey(limited), await createKey(limited)];
  const call = (key: KeyPair) => limited.app.inject(sdkSigned(key, 'GET', '/v1/pca/config/console'));
  t.same([(await call(first)).statusCode, (await call(first)).statusCode, (await call(first)).statusCode], [200, 200, 200]);
  assertError(t, await call(first), 429, 'APIG.0308', /rate limit/);
  // Six spent: the key's own 429 spent none of the domain's, so two are left for the second key.
  t.same([(await call(second)).statusCode, (await call(second)).statusCode], [200, 200]);
  const throttled = await call(second);
  assertError(t, throttled, 429, 'APIG.0308', /rate limit/);
  t.match(throttled.headers['retry-after'], /^[1-9]\d*$/);
  t.same(
    [throttled.headers['x-ratelimit-limit'], throttled.headers['x-ratelimit-remaining']],
    ['8', '0'],
    "the domain's budget, not the key's",
  );
  assertError(t, await call(third), 429, 'APIG.0308', /rate limit/);
  const elsewhere = { authorization: `Bearer ${limited.token(OTHER_DOMAIN)}` };
  t.equal(
    (await limited.app.inject({ method: 'GET', url: '/v1/pca/config/console', headers: elsewhere })).statusCode,
    200,
    'another domain has its own',
  );
});

t.test("a temporary pair's requests count against the key that issued it: minting pairs buys no budget", async (t) => {
  const limited = await createTestApp({ env: { RATE_LIMIT_MAX: '4', RATE_LIMIT_WINDOW_MS: '60000' } });
  t.teardown(() => limited.close());
  const key = await createKey(limited);
  // Two bodies the route accepts, so that two signatures made within one X-Sdk-Date second differ.
  const mint = async (body: object) => {
    const minted = await limited.app.inject(sdkSigned(key, 'POST', '/v3.0/OS-CREDENTIAL/securitytokens', {}, body));
    t.equal(minted.statusCode, 201, minted.body);
    return minted.json().credential as KeyPair;
  };
  const [first, second] = [await mint({}), await mint({ auth: { identity: { methods: ['token'], token: {} } } })];
  const call = (pair: KeyPair) => limited.app.inject(sdkSigned(pair, 'GET', '/v1/pca/config/console'));
  t.equal((await call(first)).statusCode, 200, "the key's third request, through its first pair");
  t.equal((await call(second)).statusCode, 200, 'its fourth, through the second');
  assertError(t, await call(first), 429, 'APIG.0308', /rate limit/);
  assertError(t, await call(second), 429, 'APIG.0308', /rate limit/);
  assertError(t, await call(key), 429, 'APIG.0308', /rate limit/);
});

t.test('public routes from IPv6: one budget per /64, whichever of its addresses sends; IPv4-mapped counts as IPv4', async (t) => {
  const limited = await createTestApp({ env: { RATE_LIMIT_MAX: '1000', PUBLIC_RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW_MS: '60000' } });
  t.teardown(() => limited.close());
  const health = (remoteAddress: string) => limited.app.inject({ method: 'GET', url: '/health', remoteAddress });
  for (const address of ['2001:db8:7:1::1', '2001:db8:7:1::2', '2001:db8:7:1:ffff::3'])
    t.equal((await health(address)).statusCode, 200, address);
  assertError(t, await health('2001:db8:7:1:1234:5678:9abc:def0'), 429, 'APIG.0308', /rate limit/);
  t.equal((await health('2001:db8:7:2::1')).statusCode, 200, 'the next /64 has its own budget');
  for (const address of ['198.51.100.9', '::ffff:198.51.100.9', '198.51.100.9']) t.equal((await health(address)).statusCode, 200, address);
  assertError(t, await health('::ffff:198.51.100.9'), 429, 'APIG.0308', /rate limit/);
});

t.test('public routes: limited per client address, one budget across them, PUBLIC_RATE_LIMIT_MAX', async (t) => {
  const limited = await createTestApp({ env: { RATE_LIMIT_MAX: '1000', PUBLIC_RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW_MS: '60000' } });
  t.teardown(() => limited.close());
  const from = (remoteAddress: string, url: string) => limited.app.inject({ method: 'GET', url, remoteAddress });
  for (const url of ['/health', '/ready', `/ca/${randomUUID()}.crt`]) t.not((await from('198.51.100.7', url)).statusCode, 429, url);
  for (const url of ['/health', `/ocsp/${randomUUID()}/MAMKAQE%3D`, `/crl/${randomUUID()}.crl`]) {
    const throttled = await from('198.51.100.7', url);
    assertError(t, throttled, 429, 'APIG.0308', /rate limit/);
    t.match(throttled.headers['retry-after'], /^[1-9]\d*$/, url);
  }
  t.equal((await from('198.51.100.8', '/health')).statusCode, 200, 'another address has its own budget');
  for (const url of ['/no-such-page', '/v1/no-such-route']) t.equal((await from('198.51.100.10', url)).statusCode, 404, url);
  assertError(t, await from('198.51.100.10', '/.env'), 404, 'PCA.10010002', /route GET \/\.env/);
  assertError(t, await from('198.51.100.10', '/wp-login.php'), 429, 'APIG.0308', /rate limit/);
  t.equal((await from('198.51.100.10', '/health')).statusCode, 429, 'unknown URLs spend the same budget');
  // Counted once the head is in: a request refused for its body (415, 413) before any route hook is counted too, and
  // so is malformed JSON sent where no route takes a body (that route's 404: a route without a body ignores one, §2).
  const post = (url: string, contentType: string, payload: string) =>
    limited.app.inject({ method: 'POST', url, remoteAddress: '198.51.100.11', headers: { 'content-type': contentType }, payload });
  const refusedForBody = [
    await post('/wp-login.php', 'text/plain', 'x'),
    await post('/v1/no-such-route', 'application/json', '{'),
    await post(`/ocsp/${randomUUID()}`, 'application/ocsp-request', 'x'.repeat(65 * 1024)),
  ];
  t.same(
    refusedForBody.map((response) => response.statusCode),
    [415, 404, 413],
    'refused for their bodies',
  );
  assertError(t, await post('/wp-login.php', 'text/plain', 'x'), 429, 'APIG.0308', /rate limit/);
  const credentialCall = await limited.app.inject({
    method: 'GET',
    url: '/v1/pca/config/console',
    remoteAddress: '198.51.100.7',
    headers: { authorization: `Bearer ${limited.token()}` },
  });
  t.equal(credentialCall.statusCode, 200, 'a credential from that address keeps its own budget');
});
