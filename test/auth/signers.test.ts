/**
 * Every credential kind and signer of Huawei's SDKs against a started server (issue #14): project-level
 * BasicCredentials (IAM GET /v3/projects, then X-Project-Id), derived V11-HMAC-SHA256, SDK-HMAC-SM3,
 * SDK-ECDSA-P256-SHA256, temporary keys with X-Security-Token, and a bodiless GET that signs content-type. Each is
 * accepted, and a tampered copy of each is refused (also in transit, through a man in the middle between the SDK's
 * own client and the server, for every credential kind).
 *
 * The SM3 and ECDSA signers (support.ts) are the SDK's AKSKSigner with the Go SDK's digest and final step; the SM3
 * signer reproduces the Go SDK's published vectors first.
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import t, { type Test } from 'tap';
import { AKSKSigner } from '@huaweicloud/huaweicloud-sdk-core/auth/AKSKSigner.js';
import { BasicCredentials } from '@huaweicloud/huaweicloud-sdk-core/auth/BasicCredentials.js';
import { DerivedAKSKSigner } from '@huaweicloud/huaweicloud-sdk-core/auth/DerivedAKSKSigner.js';
import { GlobalCredentials } from '@huaweicloud/huaweicloud-sdk-core/auth/GlobalCredentials.js';
import { HcClient } from '@huaweicloud/huaweicloud-sdk-core/HcClient.js';
import { DefaultHttpClient } from '@huaweicloud/huaweicloud-sdk-core/http/DefaultHttpClient.js';
import { Region } from '@huaweicloud/huaweicloud-sdk-core/region/region.js';
import { ManualClock } from '../../src/clock.ts';
import { formatSdkDate, type SignedRequest } from '../../src/auth/sdk-hmac.ts';
import { projectIdOf } from '../../src/services/access-keys/access-key-rules.ts';
import { createTestApp, TEST_DOMAIN } from '../helpers/app.ts';
import { ecdsaSignerFor, sdkError, Sm3Signer, type KeyPair, type StaticSigner, verifySdkSignature } from './support.ts';

type SdkCall = (options: object) => Promise<Record<string, unknown>>;

const clock = new ManualClock();
const harness = await createTestApp({ clock });
t.teardown(() => harness.close());
const { app } = harness;
const base = await app.listen({ host: '127.0.0.1', port: 0 });
const REGION = harness.config.region;

async function createKey(body: object = {}): Promise<KeyPair> {
  const response = await app.inject({ method: 'POST', url: '/v1/access-keys', headers: harness.auth(), payload: body });
  if (response.statusCode !== 200) throw new Error(`access key creation failed: ${response.body}`);
  return response.json().credential as KeyPair;
}

function clientWith(credentials: object, region?: boolean, endpoint = base): SdkCall {
  let client = new HcClient(new DefaultHttpClient({}, [endpoint])).withEndpoints([endpoint]).withCredential(credentials as never);
  if (region) client = client.withRegion(new Region(REGION, [endpoint]));
  return (options) =>
    client.sendRequest({ pathParams: {}, queryParams: {}, headers: {}, ...options } as never) as Promise<Record<string, unknown>>;
}

/**
 * Signs a request with a static signer the way the SDK's credentials do and sends it with fetch; `tamper` changes
 * the signed request on its way (nothing when omitted).
 */
async function sendSigned(
  signer: StaticSigner,
  key: KeyPair,
  request: { method: string; path: string; query?: Record<string, string>; data?: object; headers?: Record<string, string> },
  credentials: object = new GlobalCredentials().withAk(key.access).withSk(key.secret),
  tamper: (sent: { url: string; headers: Record<string, string>; body?: string }) => void = () => {},
): Promise<Response> {
  const query = new URLSearchParams(request.query ?? {}).toString().replace(/\+/g, '%20');
  const endpoint = `${base}${request.path}`;
  const headers: Record<string, string> = { ...(request.data && { 'content-type': 'application/json' }), ...request.headers };
  const signed = signer.sign(
    { method: request.method, endpoint, headers, queryParams: request.query ?? {}, data: request.data },
    credentials,
  );
  const sent = {
    url: query ? `${endpoint}?${query}` : endpoint,
    headers: { ...signed },
    body: request.data && JSON.stringify(request.data),
  };
  tamper(sent);
  return fetch(sent.url, { method: request.method, headers: sent.headers, body: sent.body });
}

async function assert401(t: Test, response: Response, message?: RegExp): Promise<void> {
  t.equal(response.status, 401, 'refused with 401');
  const body = (await response.json()) as { error_code: string; error_msg: string };
  t.equal(body.error_code, 'APIG.0303');
  if (message) t.match(body.error_msg, message);
}

t.test("SDK-HMAC-SM3 reproduces the Go SDK's published vectors", async (t) => {
  const secrets: Record<string, string> = { AccessKey: 'SecretKey' };
  const at = new Date('2006-01-02T15:04:05Z');
  const headers = { 'x-sdk-date': '20060102T150405Z', test_underscore: 'TEST_VALUE', host: 'example.huaweicloud.com' };
  const vectors: [SignedRequest, string][] = [
    [
      { method: 'GET', url: '/path?limit=1', headers, body: new Uint8Array() },
      'acdeecf8061419275127135b54532c2c20b683bf9bbb8a32bee021a8c40befd4',
    ],
    [
      {
        method: 'POST',
        url: '/path?key=value',
        headers: { ...headers, 'content-type': 'application/json' },
        body: Buffer.from('{"Name":"test","Id":1}\n'),
      },
      '359e49285fe5a469f82b86fd761b1a4a7ee16e3181de7d643c53a30667cde508',
    ],
  ];
  for (const [request, signature] of vectors) {
    const authorization = `SDK-HMAC-SM3 Access=AccessKey, SignedHeaders=x-sdk-date, Signature=${signature}`;
    t.match(await verifySdkSignature({ ...request, headers: { ...request.headers, authorization } }, async (ak) => secrets[ak], at), {
      access: 'AccessKey',
      algorithm: 'SDK-HMAC-SM3',
    });
    const wrong = `${signature.slice(0, -1)}${signature.endsWith('0') ? '1' : '0'}`;
    await t.rejects(
      verifySdkSignature(
        { ...request, headers: { ...request.headers, authorization: authorization.replace(signature, wrong) } },
        async (ak) => secrets[ak],
        at,
      ),
      { statusCode: 401 } as never,
    );
  }
});

t.test('every signer is accepted over HTTP, and a tampered request with each is refused', async (t) => {
  const key = await createKey({ description: 'signers' });
  const signers: Record<string, StaticSigner> = {
    'SDK-HMAC-SHA256': AKSKSigner as unknown as StaticSigner,
    'SDK-HMAC-SM3': Sm3Signer as unknown as StaticSigner,
    'SDK-ECDSA-P256-SHA256': ecdsaSignerFor(key),
  };
  const post = { method: 'POST', path: '/v1/auth/tokens', query: { a: 'b c' }, data: { x: 'é' } };
  for (const [name, signer] of Object.entries(signers)) {
    const accepted = await sendSigned(signer, key, post);
    t.equal(accepted.status, 200, `${name}: a signed POST with query and body is accepted`);
    const sentAuthorization: string[] = [];
    await sendSigned(signer, key, post, undefined, (sent) => sentAuthorization.push(sent.headers.Authorization));
    t.match(sentAuthorization[0], new RegExp(`^${name} Access=${key.access}, `), `${name} is the scheme on the wire`);
    await assert401(
      t,
      await sendSigned(signer, key, post, undefined, (sent) => (sent.body = sent.body!.replace('é', 'e'))),
      /does not match|signature mismatch/,
    );
    await assert401(
      t,
      await sendSigned(signer, key, post, undefined, (sent) => (sent.url = sent.url.replace('b%20c', 'b%20d'))),
      /signature mismatch/,
    );
    t.comment(`${name}: tampered body and query refused`);
  }

  const viaSm3Header = await sendSigned(Sm3Signer as unknown as StaticSigner, key, {
    ...post,
    headers: { 'X-Sdk-Content-Sm3': 'UNSIGNED-PAYLOAD' },
  });
  t.equal(viaSm3Header.status, 200, 'X-Sdk-Content-Sm3: UNSIGNED-PAYLOAD is the SM3 payload hash');

  const sm2 = await sendSigned(AKSKSigner as unknown as StaticSigner, key, post, undefined, (sent) => {
    sent.headers.Authorization = sent.headers.Authorization.replace('SDK-HMAC-SHA256', 'SDK-SM2-SM3');
  });
  await assert401(t, sm2, /SDK-SM2-SM3 signatures are not supported/);
});

t.test('a bodiless signed GET that signs content-type is accepted', async (t) => {
  const key = await createKey();
  const get = {
    method: 'GET',
    path: '/v1/private-certificate-authorities',
    query: { limit: '5' },
    headers: { 'content-type': 'application/json' },
  };
  let signedHeaders = '';
  const response = await sendSigned(
    AKSKSigner as unknown as StaticSigner,
    key,
    get,
    undefined,
    (sent) => (signedHeaders = sent.headers.Authorization),
  );
  t.equal(response.status, 200, await response.text());
  t.match(signedHeaders, /SignedHeaders=content-type;host;x-sdk-date,/, 'content-type was signed');
  await assert401(
    t,
    await sendSigned(AKSKSigner as unknown as StaticSigner, key, get, undefined, (sent) => (sent.headers['content-type'] = 'text/plain')),
  );
});

t.test('project-level BasicCredentials: GET /v3/projects, then X-Project-Id; derived V11-HMAC-SHA256', async (t) => {
  const key = await createKey();
  const projectId = projectIdOf(TEST_DOMAIN, REGION);

  const basic = new BasicCredentials().withAk(key.access).withSk(key.secret).withIamEndpoint(base);
  const sdk = clientWith(basic, true);
  const listed = await sdk({ method: 'GET', url: '/v1/private-certificate-authorities', queryParams: { limit: 1 } });
  t.equal(listed.httpStatusCode, 200, 'the SDK looked its project up and signed the call');
  t.equal(
    (basic.getPathParams() as { project_id?: string }).project_id,
    projectId,
    "the project the SDK found is the domain's in this region",
  );

  const projects = await clientWith(new GlobalCredentials().withAk(key.access).withSk(key.secret))({
    method: 'GET',
    url: '/v3/projects',
    queryParams: { name: REGION },
  });
  t.match(projects, { projects: [{ id: projectId, name: REGION, domain_id: TEST_DOMAIN, enabled: true }] });
  const none = await clientWith(new GlobalCredentials().withAk(key.access).withSk(key.secret))({
    method: 'GET',
    url: '/v3/projects',
    queryParams: { name: 'xx-other-1' },
  });
  t.same(none.projects, [], 'no project in another region');

  const wrongProject = await sdkError(
    clientWith(new BasicCredentials().withAk(key.access).withSk(key.secret).withProjectId('0'.repeat(32)))({
      method: 'GET',
      url: '/v1/private-certificate-authorities',
    }),
  );
  t.match(wrongProject, { httpStatusCode: 401, errorCode: 'APIG.0303' }, 'X-Project-Id of another project is refused');
  t.match(wrongProject.errorMsg, /X-Project-Id/);

  // Derived auth: the SDK picks V11 for endpoints outside huaweicloud.com (its default predicate).
  const derived = new BasicCredentials()
    .withAk(key.access)
    .withSk(key.secret)
    .withProjectId(projectId)
    .withDerivedPredicate((request) => BasicCredentials.getDefaultDerivedPredicate(request));
  derived.processDerivedAuthParams('ccm', REGION);
  const viaDerived = await clientWith(derived)({ method: 'POST', url: '/v1/auth/tokens', contentType: 'application/json', data: {} });
  t.type(viaDerived.token, 'string', 'a V11-HMAC-SHA256 request is accepted');

  const derivedSigner = DerivedAKSKSigner as unknown as StaticSigner;
  const request = { method: 'GET', path: '/v1/private-certificate-authorities' };
  t.equal((await sendSigned(derivedSigner, key, request, derived)).status, 200);
  let authorization = '';
  await sendSigned(derivedSigner, key, request, derived, (sent) => (authorization = sent.headers.Authorization));
  t.match(authorization, new RegExp(`^V11-HMAC-SHA256 Credential=${key.access}/\\d{8}/${REGION}/ccm, SignedHeaders=`));
  const tampered = (change: (authorization: string) => string) => (sent: { headers: Record<string, string> }) =>
    (sent.headers.Authorization = change(sent.headers.Authorization));
  await assert401(
    t,
    await sendSigned(
      derivedSigner,
      key,
      request,
      derived,
      tampered((a) => a.replace('/ccm,', '/kms,')),
    ),
    /signature mismatch/,
  );
  await assert401(
    t,
    await sendSigned(
      derivedSigner,
      key,
      request,
      derived,
      tampered((a) => a.replace(`/${REGION}/`, '/xx-other-1/')),
    ),
    /region/,
  );
  await assert401(
    t,
    await sendSigned(
      derivedSigner,
      key,
      request,
      derived,
      tampered((a) => a.replace(/\/(\d{8})\//, '/19990101/')),
    ),
    /scope date/,
  );
  await assert401(t, await sendSigned(derivedSigner, key, request, derived, (sent) => (sent.url += '?x=1')), /signature mismatch/);
});

t.test('temporary access keys: X-Security-Token, bounded lifetime, the issuing key actions', async (t) => {
  const limited = await createKey({ actions: ['pca:ca:list', 'pca:ca:get'] });
  const issuerSdk = clientWith(new GlobalCredentials().withAk(limited.access).withSk(limited.secret));
  const issue = (duration?: number) =>
    issuerSdk({
      method: 'POST',
      url: '/v3.0/OS-CREDENTIAL/securitytokens',
      contentType: 'application/json',
      data: { auth: { identity: { methods: ['token'], token: duration === undefined ? {} : { duration_seconds: duration } } } },
    });
  const issued = (await issue(1800)).credential as { access: string; secret: string; securitytoken: string; expires_at: string };
  t.match(issued, {
    access: /^[A-Z0-9]{20}$/,
    secret: /^[A-Za-z0-9]{40}$/,
    securitytoken: /\S{40,}/,
    expires_at: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/,
  });
  t.equal(Date.parse(issued.expires_at), clock.now().getTime() + 1800_000, 'expires after duration_seconds');
  t.equal(
    Date.parse(((await issue()).credential as { expires_at: string }).expires_at),
    clock.now().getTime() + 900_000,
    'default 900 seconds',
  );
  t.match(await sdkError(issue(899)), { httpStatusCode: 400 }, 'below 15 minutes refused');
  t.match(await sdkError(issue(86_401)), { httpStatusCode: 400 }, 'above 24 hours refused');

  const temporaryCredentials = new GlobalCredentials().withAk(issued.access).withSk(issued.secret).withSecurityToken(issued.securitytoken);
  const temporary = clientWith(temporaryCredentials);
  t.equal(
    (await temporary({ method: 'GET', url: '/v1/private-certificate-authorities' })).httpStatusCode,
    200,
    'the pair signs with X-Security-Token',
  );
  t.match(
    await sdkError(temporary({ method: 'GET', url: '/v1/private-certificates' })),
    { httpStatusCode: 403 },
    "only the issuing key's actions",
  );
  t.match(
    await sdkError(temporary({ method: 'POST', url: '/v3.0/OS-CREDENTIAL/securitytokens', contentType: 'application/json', data: {} })),
    { httpStatusCode: 403, errorCode: 'PCA.00010003' },
    'a temporary pair cannot issue another',
  );

  // The SDK signs with the X-Sdk-Date it is given, so the server's (moved) clock judges only the token's expiry.
  const refusedWith = async (credentials: object, message: RegExp, what: string) => {
    const headers = { 'X-Sdk-Date': formatSdkDate(clock.now()) };
    const error = await sdkError(clientWith(credentials)({ method: 'GET', url: '/v1/private-certificate-authorities', headers }));
    t.match(error, { httpStatusCode: 401, errorCode: 'APIG.0303' }, what);
    t.match(error.errorMsg, message);
  };
  const token = issued.securitytoken;
  const flipped = `${token.slice(0, -2)}${token.at(-2) === 'A' ? 'B' : 'A'}${token.at(-1)}`;
  await refusedWith(
    new GlobalCredentials().withAk(issued.access).withSk(issued.secret).withSecurityToken(flipped),
    /not a security token/,
    'a tampered token',
  );
  await refusedWith(
    new GlobalCredentials().withAk(issued.access).withSk(issued.secret),
    /unknown access key/,
    'the pair without its token',
  );
  // §3.3: a permanent key's request verifies by its AK/SK alone, whatever X-Security-Token it carries.
  for (const [offered, what] of [
    [token, "another key's security token"],
    ['not-a-token', 'a value that is no security token'],
  ]) {
    const listed = await clientWith(new GlobalCredentials().withAk(limited.access).withSk(limited.secret).withSecurityToken(offered))({
      method: 'GET',
      url: '/v1/private-certificate-authorities',
      headers: { 'X-Sdk-Date': formatSdkDate(clock.now()) },
    });
    t.equal(listed.httpStatusCode, 200, `a permanent key with ${what}: the token is ignored`);
  }
  await refusedWith(
    new GlobalCredentials().withAk(issued.access).withSk(limited.secret).withSecurityToken(token),
    /signature mismatch/,
    'the wrong secret',
  );

  clock.advance(1800_000);
  await refusedWith(temporaryCredentials, /expired/, 'an expired pair');
  clock.set(Date.now());

  const deleted = await app.inject({ method: 'DELETE', url: `/v1/access-keys/${limited.access}`, headers: harness.auth() });
  t.equal(deleted.statusCode, 204);
  await refusedWith(temporaryCredentials, /issued this security token is deleted/, 'the issuing key deleted');
});

t.test('a temporary pair of an every-action key mints no credential that would outlive it', async (t) => {
  const admin = await createKey();
  const adminSdk = clientWith(new GlobalCredentials().withAk(admin.access).withSk(admin.secret));
  const issued = (await adminSdk({ method: 'POST', url: '/v3.0/OS-CREDENTIAL/securitytokens', contentType: 'application/json', data: {} }))
    .credential as { access: string; secret: string; securitytoken: string };
  const temporary = clientWith(new GlobalCredentials().withAk(issued.access).withSk(issued.secret).withSecurityToken(issued.securitytoken));
  const keysBefore = await app.inject({ method: 'GET', url: '/v1/access-keys', headers: harness.auth() });

  t.equal((await temporary({ method: 'GET', url: '/v1/access-keys' })).httpStatusCode, 200, 'the pair holds every action');
  for (const [url, what] of [
    ['/v1/access-keys', 'a permanent access key'],
    ['/v1/auth/tokens', 'a JWT, whose exp would pass the pair and its issuing key'],
    ['/v3.0/OS-CREDENTIAL/securitytokens', 'another temporary pair'],
  ] as const) {
    const error = await sdkError(temporary({ method: 'POST', url, contentType: 'application/json', data: {} }));
    t.match(error, { httpStatusCode: 403, errorCode: 'PCA.00010003' }, `refused: ${what}`);
    t.match(error.errorMsg, /temporary access key cannot create/);
  }
  const keysAfter = await app.inject({ method: 'GET', url: '/v1/access-keys', headers: harness.auth() });
  t.equal(keysAfter.json().total, keysBefore.json().total, 'no access key was created');
  t.equal(
    (await adminSdk({ method: 'POST', url: '/v1/auth/tokens', contentType: 'application/json', data: {} })).httpStatusCode,
    200,
    'the permanent key still exchanges',
  );
});

interface InTransit {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/**
 * A man in the middle between an SDK client and the server: forwards every request byte for byte (Host included,
 * which the SDK signs) after `tamper` has changed it.
 */
async function tamperingProxy(t: Test, tamper: (request: InTransit) => void): Promise<string> {
  const target = new URL(base);
  const proxy = createServer(async (incoming, outgoing) => {
    const chunks: Buffer[] = [];
    for await (const chunk of incoming) chunks.push(chunk as Buffer);
    const request: InTransit = {
      method: incoming.method!,
      path: incoming.url!,
      headers: { ...incoming.headers },
      body: Buffer.concat(chunks),
    };
    tamper(request);
    if (request.body.length > 0) request.headers['content-length'] = String(request.body.length);
    const forwarded = httpRequest(
      { host: target.hostname, port: target.port, method: request.method, path: request.path, headers: request.headers },
      (answer) => {
        outgoing.writeHead(answer.statusCode!, answer.headers);
        answer.pipe(outgoing);
      },
    );
    forwarded.end(request.body);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => proxy.close(() => resolve())));
  const { port } = proxy.address() as { port: number };
  return `http://127.0.0.1:${port}`;
}

t.test('every credential kind: a request tampered in transit is refused, the same request untouched is accepted', async (t) => {
  const key = await createKey({ description: 'in-transit' });
  const issuer = clientWith(new GlobalCredentials().withAk(key.access).withSk(key.secret));
  const issued = (
    await issuer({
      method: 'POST',
      url: '/v3.0/OS-CREDENTIAL/securitytokens',
      contentType: 'application/json',
      data: { auth: { identity: { methods: ['token'], token: {} } } },
    })
  ).credential as { access: string; secret: string; securitytoken: string };
  const projectId = projectIdOf(TEST_DOMAIN, REGION);
  const derived = () => {
    const credentials = new BasicCredentials()
      .withAk(key.access)
      .withSk(key.secret)
      .withProjectId(projectId)
      .withDerivedPredicate(() => true);
    credentials.processDerivedAuthParams('ccm', REGION);
    return credentials;
  };
  const kinds: [string, () => object][] = [
    ['GlobalCredentials (SDK-HMAC-SHA256)', () => new GlobalCredentials().withAk(key.access).withSk(key.secret)],
    [
      'project-level BasicCredentials (X-Project-Id)',
      () => new BasicCredentials().withAk(key.access).withSk(key.secret).withProjectId(projectId),
    ],
    ['derived BasicCredentials (V11-HMAC-SHA256)', derived],
    [
      'temporary GlobalCredentials (X-Security-Token)',
      () => new GlobalCredentials().withAk(issued.access).withSk(issued.secret).withSecurityToken(issued.securitytoken),
    ],
  ];
  const count = {
    method: 'POST',
    url: '/v1/private-certificate-authorities/resource-instances/count',
    queryParams: { sdk: 'a b' },
    contentType: 'application/json',
    data: { tags: [] },
  };
  const tampers: [string, (request: InTransit) => void][] = [
    ['body', (request) => (request.body = Buffer.from(request.body.toString().replace('[]', '[ ]')))],
    ['query', (request) => (request.path = request.path.replace('sdk=a%20b', 'sdk=a%20c'))],
    ['path', (request) => (request.path = request.path.replace('/count', '/filter'))],
    [
      'X-Sdk-Date',
      (request) =>
        (request.headers['x-sdk-date'] = String(request.headers['x-sdk-date']).replace(
          /\d\dZ$/,
          (s) => `${`${(Number(s.slice(0, 2)) + 1) % 60}`.padStart(2, '0')}Z`,
        )),
    ],
  ];
  for (const [name, credentials] of kinds) {
    const untouched = await clientWith(credentials(), false, await tamperingProxy(t, () => {}))(count);
    t.equal(untouched.total_count, 0, `${name}: accepted through the proxy untouched`);
    for (const [what, tamper] of tampers) {
      const error = await sdkError(clientWith(credentials(), false, await tamperingProxy(t, tamper))(count));
      t.match(error, { httpStatusCode: 401, errorCode: 'APIG.0303' }, `${name}: tampered ${what} refused`);
    }
  }
  const swappedProject = await sdkError(
    clientWith(kinds[1][1](), false, await tamperingProxy(t, (request) => (request.headers['x-project-id'] = '0'.repeat(32))))(count),
  );
  t.match(swappedProject, { httpStatusCode: 401 }, 'project-level: X-Project-Id swapped in transit refused');
  // The same request as the first issuance, perhaps within the same second of X-Sdk-Date: a signed header of its own
  // keeps the replay cache from taking it for a replay.
  const otherToken = (
    await issuer({
      method: 'POST',
      url: '/v3.0/OS-CREDENTIAL/securitytokens',
      headers: { 'X-Test-Call': 'second' },
      contentType: 'application/json',
      data: { auth: { identity: { methods: ['token'], token: {} } } },
    })
  ).credential as { securitytoken: string };
  const swappedToken = await sdkError(
    clientWith(
      kinds[3][1](),
      false,
      await tamperingProxy(t, (request) => (request.headers['x-security-token'] = otherToken.securitytoken)),
    )(count),
  );
  t.match(swappedToken, { httpStatusCode: 401 }, 'temporary: X-Security-Token swapped in transit refused');
});

// Last: it leaves a CA, and the tests above list none.
t.test('the audit log: each credential handed out, and the issuing key as the actor of what a temporary pair does', async (t) => {
  const key = await createKey({ description: 'audited issuer' });
  const keySdk = clientWith(new GlobalCredentials().withAk(key.access).withSk(key.secret));
  const issued = (await keySdk({ method: 'POST', url: '/v3.0/OS-CREDENTIAL/securitytokens', contentType: 'application/json', data: {} }))
    .credential as { access: string; secret: string; securitytoken: string; expires_at: string };
  const temporary = clientWith(new GlobalCredentials().withAk(issued.access).withSk(issued.secret).withSecurityToken(issued.securitytoken));
  const created = await temporary({
    method: 'POST',
    url: '/v1/private-certificate-authorities',
    contentType: 'application/json',
    data: {
      type: 'ROOT',
      distinguished_name: {
        common_name: 'made-by-a-temporary-pair',
        country: 'CN',
        state: 'zhejiang',
        locality: 'hangzhou',
        organization: 'audit',
        organizational_unit: 'pki',
      },
      key_algorithm: 'EC256',
      signature_algorithm: 'SHA256',
      validity: { type: 'YEAR', value: 1 },
    },
  });
  const caId = created.ca_id as string;
  await sdkError(temporary({ method: 'POST', url: '/v3.0/OS-CREDENTIAL/securitytokens', contentType: 'application/json', data: {} }));
  const token = await keySdk({ method: 'POST', url: '/v1/auth/tokens', contentType: 'application/json', data: {} });

  const audit = await app.inject({ method: 'GET', url: '/v1/audit-events?limit=1000', headers: harness.auth() });
  const events = (
    audit.json().audit_events as { actor: string; action: string; resource_id: string; outcome: string; detail: any }[]
  ).filter((event) => event.actor === key.access);
  t.match(
    events.filter((event) => event.action === 'pca:accessKey:createTemporary'),
    [{ outcome: 'SUCCESS', resource_id: issued.access, detail: { expires_at: new Date(Date.parse(issued.expires_at)).toISOString() } }],
    'the temporary pair handed out, naming it',
  );
  t.match(
    events.filter((event) => event.resource_id === caId),
    [{ action: 'pca:ca:create', outcome: 'SUCCESS', detail: { temporary_access_key: issued.access } }],
    "the pair's change, with the issuing key as its actor",
  );
  t.match(
    events.filter((event) => event.outcome === 'FAILURE'),
    [{ detail: { temporary_access_key: issued.access, error_code: 'PCA.00010003' } }],
    "the pair's refused request for another pair",
  );
  t.match(
    events.filter((event) => event.action === 'pca:token:create'),
    [{ outcome: 'SUCCESS', resource_id: key.access, detail: { expires_at: new Date(token.expires_at as number).toISOString() } }],
    'the token handed out',
  );
});
