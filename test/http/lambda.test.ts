/**
 * The Lambda handler answers exactly like the started server, with REST API (1.0) and HTTP API (2.0) events,
 * and every binary body (DER, CRL, OCSP, zip) reaches the client intact: openssl and unzip judge them.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { formatSdkDate, signRequest } from '../../src/auth/sdk-hmac.ts';
import { httpHandlerFor, jobHandlerFor, LAMBDA_RESPONSE_BYTES } from '../../src/lambda/adapters.ts';
import { DN, client } from '../ca/support.ts';
import { createTestApp } from '../helpers/app.ts';
import { apiGatewayEvent, PAYLOAD_VERSIONS, walkEveryRouteKind, type Invoke } from '../helpers/lambda.ts';

const harness = await createTestApp();
t.teardown(() => harness.close());
const address = await harness.app.listen({ host: '127.0.0.1', port: 0 });
const handler = httpHandlerFor(harness.app) as unknown as (event: unknown, context: unknown) => ReturnType<Invoke>;
const invoke: Invoke = (event) => handler(event, {});
const api = client(harness);

const cases = [
  { name: 'health', method: 'GET', path: '/health', headers: {} as Record<string, string> },
  { name: 'authenticated route', method: 'GET', path: '/v1/pca/config/console', headers: { authorization: `Bearer ${harness.token()}` } },
  { name: 'missing credential', method: 'GET', path: '/v1/pca/config/console', headers: {} },
  { name: 'unknown route', method: 'GET', path: '/v1/unknown', headers: {} },
];

for (const version of PAYLOAD_VERSIONS) {
  for (const testCase of cases) {
    t.test(`payload ${version}, ${testCase.name}: same status and body as the server`, async (t) => {
      const headers = { 'x-request-id': `lambda-${testCase.name.length}`, ...testCase.headers };
      const lambda = await invoke(apiGatewayEvent(version, { method: testCase.method, path: testCase.path, headers }));
      const server = await fetch(`${address}${testCase.path}`, { method: testCase.method, headers });
      t.equal(lambda.statusCode, server.status);
      t.same(JSON.parse(lambda.body), await server.json());
      t.equal(lambda.headers['content-type'], server.headers.get('content-type'));
      t.equal(lambda.headers['x-request-id'], `lambda-${testCase.name.length}`);
    });
  }

  t.test(`payload ${version}: a query reaches the app as the client sent it (commas, escapes, repeats)`, async (t) => {
    await api.root({ distinguished_name: { ...DN, common_name: `Acme, Inc. ${version}` } });
    const bearer = { authorization: `Bearer ${harness.token()}` };
    for (const query of [`name=Acme%2C%20Inc.%20${version}`, 'name=a%2Bb&limit=5', 'status=ACTIVED&status=DISABLED', 'limit=1&offset=0']) {
      const path = '/v1/private-certificate-authorities';
      const lambda = await invoke(apiGatewayEvent(version, { method: 'GET', path, query, headers: bearer }));
      const server = await fetch(`${address}${path}?${query}`, { headers: bearer });
      t.equal(lambda.statusCode, server.status, `${query}: ${lambda.body}`);
      t.same(JSON.parse(lambda.body), await server.json(), query);
    }
    const found = await invoke(
      apiGatewayEvent(version, {
        method: 'GET',
        path: '/v1/private-certificate-authorities',
        query: `name=Acme%2C%20Inc.%20${version}`,
        headers: bearer,
      }),
    );
    t.equal(JSON.parse(found.body).total, 1, 'the name with a comma is found');
    // An AK/SK signature covers the query as sent: it must verify through the gateway as it does on the server.
    const created = await harness.app.inject({
      method: 'POST',
      url: '/v1/access-keys',
      headers: bearer,
      payload: { description: 'lambda' },
    });
    const { access, secret } = created.json().credential as { access: string; secret: string };
    const query = 'name=Acme%2C%20Inc.&limit=2';
    const headers: Record<string, string> = { host: 'pca.example.com', 'x-sdk-date': formatSdkDate(new Date()) };
    const url = `/v1/private-certificate-authorities?${query}`;
    headers.authorization = signRequest({ method: 'GET', url, headers, body: new Uint8Array(0) }, access, secret, ['host', 'x-sdk-date']);
    const signed = await invoke(apiGatewayEvent(version, { method: 'GET', path: '/v1/private-certificate-authorities', query, headers }));
    t.equal(signed.statusCode, 200, signed.body);
  });

  t.test(`payload ${version}: a streamed body (the CSV export) is answered whole, without Transfer-Encoding`, async (t) => {
    const headers = { authorization: `Bearer ${harness.token()}`, accept: 'text/csv' };
    const lambda = await invoke(apiGatewayEvent(version, { method: 'GET', path: '/v1/billing-records', headers }));
    const server = await fetch(`${address}/v1/billing-records`, { headers });
    t.equal(lambda.statusCode, 200, lambda.body);
    t.equal(lambda.body, await server.text(), 'the same CSV as the server');
    t.equal(server.headers.get('transfer-encoding'), 'chunked', 'the server streams it');
    for (const name of ['transfer-encoding', 'connection', 'keep-alive']) t.notOk(name in lambda.headers, `no ${name}`);
  });

  t.test(`payload ${version}: every route kind, binary bodies judged by openssl and unzip`, (t) =>
    walkEveryRouteKind(t, invoke, version, `Bearer ${harness.token()}`),
  );
}

t.test('the job handler refuses an event without a job name and unknown jobs', async (t) => {
  const jobs = jobHandlerFor(harness.app.jobRunner);
  await t.rejects(jobs({}), /must name a job/);
  await t.rejects(jobs({ job: 'no-such-job' }), /unknown job/);
});

t.test('payload 2.0: an escaped # or ? in the path (handed over decoded) stays in the path', async (t) => {
  const bearer = { authorization: `Bearer ${harness.token()}` };
  const id = await api.root();
  // Cut at the # or ?, the path would name the CA itself (200): the whole of it is no CA id (400), as on the server.
  for (const [sent, decoded] of [
    [`${id}%23x`, `${id}#x`],
    [`${id}%3Fx`, `${id}?x`],
  ]) {
    const lambda = await invoke(
      apiGatewayEvent('2.0', {
        method: 'GET',
        path: `/v1/private-certificate-authorities/${decoded}/tags`,
        query: 'limit=1',
        headers: bearer,
      }),
    );
    const server = await fetch(`${address}/v1/private-certificate-authorities/${sent}/tags?limit=1`, { headers: bearer });
    t.equal(lambda.statusCode, server.status, `${sent}: ${lambda.body}`);
    t.same(JSON.parse(lambda.body), await server.json(), `${sent}: the same answer as the server`);
  }
});

t.test("payload 1.0: the client's X-Request-Id, in the case a REST API keeps, is the one answered", async (t) => {
  const lambda = await invoke(apiGatewayEvent('1.0', { method: 'GET', path: '/health', headers: { 'X-Request-Id': 'client-chosen-id' } }));
  t.equal(lambda.statusCode, 200, lambda.body);
  t.equal(lambda.headers['x-request-id'], 'client-chosen-id');
});

t.test('an answer larger than a Lambda response may be is the contract error saying what to ask for, not a bare 502', async (t) => {
  // Lambda's limit is LAMBDA_RESPONSE_BYTES (6 MB, ~33,000 records of CSV); a handler with a lower one shows the same
  // guard on 1,500 records (~280 kB), which the server streams whole.
  const limit = 200_000;
  t.ok(limit < LAMBDA_RESPONSE_BYTES);
  const guarded = httpHandlerFor(harness.app, limit) as unknown as (event: unknown, context: unknown) => ReturnType<Invoke>;
  const month = Date.parse('2031-01-01T00:00:00Z');
  const records = Array.from({ length: 1_500 }, (_, index) => ({
    id: randomUUID(),
    uniqueKey: `lambda-size-${index}`,
    domainId: harness.config.defaultDomainId,
    resourceType: 'CERTIFICATE',
    resourceId: randomUUID(),
    chargingMode: 1,
    usageType: 'CERT_ISSUE',
    usageStart: new Date(month + index * 1000),
    usageEnd: new Date(month + index * 1000),
    usageAmount: 1n,
    unitPrice: '0.05',
    amount: '0.05',
    currency: 'CNY',
  }));
  await harness.database.prisma.billingRecord.createMany({ data: records });
  t.teardown(() => harness.database.prisma.billingRecord.deleteMany({ where: { uniqueKey: { startsWith: 'lambda-size-' } } }));
  const headers = { authorization: `Bearer ${harness.token()}`, accept: 'text/csv', 'x-request-id': 'big-export' };
  const server = await fetch(`${address}/v1/billing-records`, { headers });
  t.ok((await server.text()).length > limit, 'the server streams it all');
  for (const version of PAYLOAD_VERSIONS) {
    const whole = await guarded(apiGatewayEvent(version, { method: 'GET', path: '/v1/billing-records', headers }), {});
    t.equal(whole.statusCode, 400, `payload ${version}`);
    t.equal(whole.headers['x-request-id'], 'big-export', 'the request keeps its id');
    t.match(JSON.parse(whole.body), { error_code: 'PCA.00020001', error_msg: /more than a Lambda function may return .*start_time/ });
    const query = `start_time=${month + 1_000 * 1000}`;
    const narrower = await guarded(apiGatewayEvent(version, { method: 'GET', path: '/v1/billing-records', query, headers }), {});
    t.equal(narrower.statusCode, 200, 'a narrower window is answered');
    t.equal(narrower.body.trim().split('\n').length, 1 + 500, 'its header and 500 records');
  }
});

t.test('past the limit elsewhere (a CRL, say), where asking for less is no help: a 500 naming what serves it instead', async (t) => {
  const guarded = httpHandlerFor(harness.app, 500) as unknown as (event: unknown, context: unknown) => ReturnType<Invoke>;
  const caId = await api.root();
  for (const version of PAYLOAD_VERSIONS) {
    const crl = await guarded(apiGatewayEvent(version, { method: 'GET', path: `/crl/${caId}.crl` }), {});
    t.equal(crl.statusCode, 500, `payload ${version}`);
    t.match(JSON.parse(crl.body), {
      error_code: 'PCA.00050001',
      error_msg: /more than a Lambda function may return .*CRL_PUBLISH_BUCKETS/,
    });
    t.equal(
      (await invoke(apiGatewayEvent(version, { method: 'GET', path: `/crl/${caId}.crl` }))).statusCode,
      200,
      'at Lambda’s own limit, served',
    );
  }
});
