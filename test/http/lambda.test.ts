/** The Lambda handler (API Gateway v2 HTTP API events) answers exactly like the started server. */
import t from 'tap';
import { httpHandlerFor, jobHandlerFor } from '../../src/lambda.ts';
import { createTestApp } from '../helpers/app.ts';

const harness = await createTestApp();
t.teardown(() => harness.close());
const address = await harness.app.listen({ host: '127.0.0.1', port: 0 });
const handler = httpHandlerFor(async () => harness.app) as unknown as (event: unknown, context: unknown) => Promise<{ statusCode: number; headers: Record<string, string>; body: string; isBase64Encoded: boolean }>;

function apiGatewayV2Event(method: string, rawPath: string, headers: Record<string, string>, body?: string) {
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath,
    rawQueryString: '',
    headers: { host: 'api.example.com', ...headers },
    requestContext: {
      accountId: '123456789012',
      apiId: 'api',
      domainName: 'api.example.com',
      http: { method, path: rawPath, protocol: 'HTTP/1.1', sourceIp: '192.0.2.1', userAgent: 'test' },
      requestId: 'lambda-req',
      routeKey: '$default',
      stage: '$default',
      time: '23/Nov/2026:12:00:00 +0000',
      timeEpoch: 0,
    },
    body,
    isBase64Encoded: false,
  };
}

const cases = [
  { name: 'health', method: 'GET', path: '/health', headers: {} as Record<string, string> },
  { name: 'authenticated route', method: 'GET', path: '/v1/pca/config/console', headers: { authorization: `Bearer ${harness.token()}` } },
  { name: 'missing credential', method: 'GET', path: '/v1/pca/config/console', headers: {} },
  { name: 'unknown route', method: 'GET', path: '/v1/unknown', headers: {} },
];

for (const testCase of cases) {
  t.test(`${testCase.name}: same status and body as the server`, async (t) => {
    const lambda = await handler(apiGatewayV2Event(testCase.method, testCase.path, { 'x-request-id': `lambda-${testCase.name.length}`, ...testCase.headers }), {});
    const server = await fetch(`${address}${testCase.path}`, { method: testCase.method, headers: { 'x-request-id': `lambda-${testCase.name.length}`, ...testCase.headers } });
    t.equal(lambda.statusCode, server.status);
    t.same(JSON.parse(lambda.body), await server.json());
    t.equal(lambda.headers['content-type'], server.headers.get('content-type'));
    t.equal(lambda.headers['x-request-id'], `lambda-${testCase.name.length}`);
  });
}

t.test('the job handler refuses an event without a job name and unknown jobs', async (t) => {
  const jobs = jobHandlerFor(async () => harness.app);
  await t.rejects(jobs({}), /must name a job/);
  await t.rejects(jobs({ job: 'no-such-job' }), /unknown job/);
});
