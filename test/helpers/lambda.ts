/**
 * API Gateway proxy events (REST API payload 1.0, HTTP API payload 2.0) and one walk through every kind of
 * route a deployment serves — JSON in and out, binary out (DER certificate, CRL, OCSP, zip) and binary in (OCSP
 * POST) — judged by openssl and unzip. Shared by the in-process handler test and the packaged-bundle test.
 */
import { execFile } from 'node:child_process';
import { createSign, generateKeyPairSync, randomBytes, randomUUID, type KeyObject } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Test } from 'tap';
import { ACTIONS } from '../../src/auth/actions.ts';

const run = promisify(execFile);

/** An admin ES256 bearer token as a deployment's own signer makes them (default issuer and audience), for a bundle. */
export function adminToken(privateKey: KeyObject, domainId = 'a1b2c3d4e5f60718293a4b5c6d7e8f90'): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    sub: 'lambda-test',
    domain_id: domainId,
    actions: ACTIONS,
    iss: 'private-ca-service',
    aud: 'private-ca-api',
    iat: now,
    exp: now + 3600,
  };
  const input = `${encode({ alg: 'ES256', typ: 'JWT' })}.${encode(claims)}`;
  const signature = createSign('SHA256').update(input).sign({ key: privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}

/**
 * A deployed function's environment as serverless.yml sets it (production, given secrets, nothing inherited but PATH),
 * and an admin bearer token its JWT key accepts.
 */
export function deployedFunctionEnv(settings: { databaseUrl: string; publicBaseUrl: string } & Record<string, string>) {
  const { databaseUrl, publicBaseUrl, ...extra } = settings;
  const jwtKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    NODE_ENV: 'production',
    DATABASE_URL: databaseUrl,
    PUBLIC_BASE_URL: publicBaseUrl,
    MASTER_KEY: randomBytes(32).toString('base64'),
    JWT_PRIVATE_KEY: jwtKeys.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    JWT_PUBLIC_KEY: jwtKeys.publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    ...extra,
  };
  return { env, authorization: `Bearer ${adminToken(jwtKeys.privateKey)}` };
}

export type PayloadVersion = '1.0' | '2.0';
export const PAYLOAD_VERSIONS: PayloadVersion[] = ['1.0', '2.0'];

export interface LambdaRequest {
  method: string;
  /** The path as the gateway hands it to Lambda (HTTP APIs percent-decode it). */
  path: string;
  /** The query as the client sent it (percent-encoded, no `?`). */
  query?: string;
  headers?: Record<string, string>;
  /** Text bodies go as they are; bytes go base64 with isBase64Encoded, as the gateway sends binary bodies. */
  body?: string | Uint8Array;
}

export interface LambdaResult {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
  isBase64Encoded?: boolean;
}

export type Invoke = (event: unknown) => Promise<LambdaResult>;

/** The query's values decoded, per name, as API Gateway hands them over. */
function gatewayQuery(query: string): Map<string, string[]> {
  const values = new Map<string, string[]>();
  for (const [name, value] of new URLSearchParams(query)) values.set(name, [...(values.get(name) ?? []), value]);
  return values;
}

export function apiGatewayEvent(version: PayloadVersion, request: LambdaRequest): Record<string, unknown> {
  const query = gatewayQuery(request.query ?? '');
  const headers = { host: 'pca.example.com', 'user-agent': 'lambda-test', ...request.headers };
  const binary = request.body instanceof Uint8Array;
  const body = request.body === undefined ? undefined : binary ? Buffer.from(request.body).toString('base64') : request.body;
  const requestId = randomUUID();
  if (version === '2.0') {
    return {
      version: '2.0',
      routeKey: '$default',
      rawPath: request.path,
      rawQueryString: request.query ?? '',
      // HTTP APIs join a repeated parameter's values with commas.
      ...(query.size > 0 ? { queryStringParameters: Object.fromEntries([...query].map(([name, list]) => [name, list.join(',')])) } : {}),
      headers,
      requestContext: {
        accountId: '123456789012',
        apiId: 'api',
        domainName: 'pca.example.com',
        http: { method: request.method, path: request.path, protocol: 'HTTP/1.1', sourceIp: '192.0.2.1', userAgent: 'lambda-test' },
        requestId,
        routeKey: '$default',
        stage: '$default',
        time: '02/Dec/2026:12:00:00 +0000',
        timeEpoch: 0,
      },
      ...(body === undefined ? {} : { body }),
      isBase64Encoded: binary,
    };
  }
  return {
    version: '1.0',
    resource: '/{proxy+}',
    path: request.path,
    httpMethod: request.method,
    headers,
    multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, [value]])),
    queryStringParameters: query.size > 0 ? Object.fromEntries([...query].map(([name, list]) => [name, list.at(-1)])) : null,
    multiValueQueryStringParameters: query.size > 0 ? Object.fromEntries(query) : null,
    pathParameters: { proxy: request.path.slice(1) },
    stageVariables: null,
    requestContext: {
      accountId: '123456789012',
      apiId: 'api',
      resourcePath: '/{proxy+}',
      httpMethod: request.method,
      path: `/prod${request.path}`,
      stage: 'prod',
      requestId,
      identity: { sourceIp: '192.0.2.1' },
    },
    body: body ?? null,
    isBase64Encoded: binary,
  };
}

/** The bytes API Gateway sends the client. */
export function responseBytes(result: LambdaResult): Buffer {
  return Buffer.from(result.body ?? '', result.isBase64Encoded ? 'base64' : 'utf8');
}

async function tool(command: string, args: string[]): Promise<string> {
  const { stdout } = await run(command, args, { maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

/**
 * Through the handler only: create a root CA and two certificates with server-made keys, export one as JSON and
 * as a zip, revoke the other, then fetch the CA certificate, the CRL and OCSP answers (POST, and GET with the
 * request percent-encoded and as an HTTP API hands it over, decoded) and let openssl and unzip judge them.
 */
export async function walkEveryRouteKind(t: Test, invoke: Invoke, version: PayloadVersion, authorization: string): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pca-lambda-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = (name: string) => path.join(dir, name);
  const call = (request: LambdaRequest) => invoke(apiGatewayEvent(version, request));
  const json = async (method: string, url: string, payload?: unknown) => {
    const result = await call({
      method,
      path: url,
      headers: { authorization, ...(payload === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(payload === undefined ? {} : { body: JSON.stringify(payload) }),
    });
    t.notOk(result.isBase64Encoded, `${method} ${url}: JSON stays text`);
    return { status: result.statusCode, body: result.body ? (JSON.parse(result.body) as Record<string, unknown>) : {} };
  };
  const binary = async (request: LambdaRequest, contentType: string) => {
    const result = await call(request);
    t.equal(result.statusCode, 200, `${request.method} ${request.path}: 200`);
    t.equal(result.headers['content-type'], contentType, `${request.method} ${request.path}: ${contentType}`);
    t.ok(result.isBase64Encoded, `${request.method} ${request.path}: isBase64Encoded`);
    return responseBytes(result);
  };

  const createCa = async (payload: Record<string, unknown>) => {
    const response = await json('POST', '/v1/private-certificate-authorities', {
      key_algorithm: 'EC256',
      signature_algorithm: 'SHA256',
      validity: { type: 'YEAR', value: 1 },
      ...payload,
    });
    t.equal(response.status, 200, `${payload.type} CA created`, { body: response.body });
    return response.body.ca_id as string;
  };
  const dn = { country: 'CN', state: 'zhejiang', locality: 'hangzhou', organization: 'lambda', organizational_unit: version };
  const rootId = await createCa({
    type: 'ROOT',
    distinguished_name: { ...dn, common_name: `lambda-root-${version}` },
    validity: { type: 'YEAR', value: 2 },
  });
  const caId = await createCa({ type: 'SUBORDINATE', issuer_id: rootId, distinguished_name: { ...dn, common_name: `lambda-${version}` } });
  const issue = async (commonName: string) => {
    const response = await json('POST', '/v1/private-certificates', {
      issuer_id: caId,
      key_algorithm: 'EC256',
      signature_algorithm: 'SHA256',
      distinguished_name: { common_name: commonName },
      validity: { type: 'DAY', value: 30 },
    });
    t.equal(response.status, 200, `${commonName} issued`, { body: response.body });
    return response.body.certificate_id as string;
  };
  // The Lambda app compiles a route's schemas on its first request: here that first request is refused, and the
  // refusal still names the field and its own error code (the validator's errors reach the error handler), the
  // first time and after.
  for (const attempt of ['first', 'second']) {
    const refused = await json('POST', '/v1/private-certificates', {
      issuer_id: caId,
      key_algorithm: 'EC256',
      signature_algorithm: 'SHA256',
      distinguished_name: { common_name: 'refused.lambda.test' },
      validity: { type: 'DAY', value: '30' },
    });
    t.equal(refused.status, 400, `${attempt} refused body: 400`);
    t.match(
      refused.body,
      { error_code: 'PCA.00020109', error_msg: /^validity\.value must be integer/ },
      `${attempt} refused body: the field named`,
    );
  }
  const good = await issue('good.lambda.test');
  const revoked = await issue('revoked.lambda.test');

  for (const [name, id] of [
    ['root', rootId],
    ['ca', caId],
  ]) {
    await writeFile(file(`${name}.der`), await binary({ method: 'GET', path: `/ca/${id}.crt` }, 'application/pkix-cert'));
    await tool('openssl', ['x509', '-inform', 'DER', '-in', file(`${name}.der`), '-out', file(`${name}.pem`)]);
  }
  t.match(
    await tool('openssl', ['x509', '-in', file('ca.pem'), '-noout', '-subject']),
    `CN = lambda-${version}`,
    'openssl reads the DER CA certificate',
  );
  await writeFile(file('chain.pem'), (await readFile(file('ca.pem'), 'utf8')) + (await readFile(file('root.pem'), 'utf8')));

  const exported = await json('POST', `/v1/private-certificates/${good}/export`, { is_compressed: 'false', type: 'OTHER' });
  await writeFile(file('good.pem'), exported.body.certificate as string);
  const verified = await tool('openssl', [
    'verify',
    '-x509_strict',
    '-CAfile',
    file('root.pem'),
    '-untrusted',
    file('ca.pem'),
    file('good.pem'),
  ]);
  t.match(verified, /OK/, 'the JSON export verifies against the DER CA certificates');

  const zip = await binary(
    {
      method: 'POST',
      path: `/v1/private-certificates/${good}/export`,
      headers: { authorization, 'content-type': 'application/json' },
      body: JSON.stringify({ is_compressed: 'true', type: 'APACHE' }),
    },
    'application/zip',
  );
  await writeFile(file('export.zip'), zip);
  t.match(await tool('unzip', ['-t', file('export.zip')]), /No errors detected/, 'unzip tests the archive');
  const names = (await tool('zipinfo', ['-1', file('export.zip')])).split('\n').filter(Boolean);
  t.ok(names.length >= 2, `the zip holds the certificate files (${names.join(', ')})`);

  const revokedPem = (await json('POST', `/v1/private-certificates/${revoked}/export`, { is_compressed: 'false', type: 'OTHER' })).body
    .certificate as string;
  t.equal((await json('POST', `/v1/private-certificates/${revoked}/revoke`, { reason: 'KEY_COMPROMISE' })).status, 204, 'revoked');
  await writeFile(file('revoked.pem'), revokedPem);
  const revokedSerial = (await tool('openssl', ['x509', '-in', file('revoked.pem'), '-noout', '-serial'])).trim().split('=')[1]!;

  await writeFile(file('ca.crl'), await binary({ method: 'GET', path: `/crl/${caId}.crl` }, 'application/pkix-crl'));
  const crl = await run('openssl', ['crl', '-inform', 'DER', '-in', file('ca.crl'), '-CAfile', file('chain.pem'), '-noout', '-text']);
  t.match(crl.stderr + crl.stdout, /verify OK/, 'openssl verifies the CRL signature');
  t.match(crl.stdout.replace(/\s/g, ''), `SerialNumber:${revokedSerial}`, 'the CRL lists the revoked certificate');

  const ocspStatus = async (der: Buffer, certFile: string, label: string) => {
    await writeFile(file('response.der'), der);
    const { stdout, stderr } = await run('openssl', [
      'ocsp',
      '-respin',
      file('response.der'),
      '-issuer',
      file('ca.pem'),
      '-CAfile',
      file('chain.pem'),
      '-cert',
      certFile,
      '-no_nonce',
    ]);
    t.match(stderr, /Response verify OK/, `${label}: openssl verifies the OCSP response`);
    return stdout;
  };
  await run('openssl', ['ocsp', '-issuer', file('ca.pem'), '-cert', file('good.pem'), '-no_nonce', '-reqout', file('good.req')]);
  const posted = await binary(
    {
      method: 'POST',
      path: `/ocsp/${caId}`,
      headers: { 'content-type': 'application/ocsp-request' },
      body: await readFile(file('good.req')),
    },
    'application/ocsp-response',
  );
  t.match(await ocspStatus(posted, file('good.pem'), 'POST'), /good\.pem: good/, 'OCSP POST: good');

  // A request whose base64 holds a `/` (the nonce varies it), which a decoded path splits into segments.
  let base64 = '';
  for (let attempt = 0; attempt < 200 && !base64.slice(1).includes('/'); attempt++) {
    await run('openssl', ['ocsp', '-issuer', file('ca.pem'), '-cert', file('revoked.pem'), '-nonce', '-reqout', file('revoked.req')]);
    base64 = (await readFile(file('revoked.req'))).toString('base64');
  }
  t.ok(base64.slice(1).includes('/'), "the OCSP GET request's base64 holds a /");
  for (const [form, segment] of [
    ['percent-encoded', encodeURIComponent(base64)],
    ['decoded', base64],
  ] as const) {
    const fetched = await binary({ method: 'GET', path: `/ocsp/${caId}/${segment}` }, 'application/ocsp-response');
    t.match(await ocspStatus(fetched, file('revoked.pem'), `GET ${form}`), /revoked\.pem: revoked/, `OCSP GET ${form}: revoked`);
  }

  const missing = await call({ method: 'GET', path: `/crl/${randomUUID()}.crl` });
  t.equal(missing.statusCode, 404, 'an unknown CRL is a 404');
  t.notOk(missing.isBase64Encoded, 'whose JSON error stays text');
  t.type((JSON.parse(missing.body) as { error_code: unknown }).error_code, 'string', "in the contract's error format");
}
