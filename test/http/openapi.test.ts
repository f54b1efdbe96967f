/** The committed OpenAPI document matches the route schemas, lints clean, and is served with Swagger UI. */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { parse } from 'yaml';
import { renderOpenApi } from '../../scripts/openapi-document.ts';
import { CLIENT_TYPES_PATH, renderClientTypes } from '../../scripts/openapi-client-types.ts';
import { createTestApp } from '../helpers/app.ts';

const run = promisify(execFile);

t.test('openapi/openapi.yaml and the client types are what `npm run openapi` generates (no drift)', async (t) => {
  const committed = readFileSync('openapi/openapi.yaml', 'utf8');
  const generated = await renderOpenApi('yaml');
  t.ok(committed === generated, 'committed document differs from the route schemas: run `npm run openapi`');
  // SnakeYAML (Java clients' generators) follows at most 50 aliases of collections by default.
  t.notMatch(committed, /^\s*[\w-]+: [&*]a\d+/m, 'no YAML anchors or aliases: each operation has its own objects');
  const types = await renderClientTypes(generated);
  t.ok(readFileSync(CLIENT_TYPES_PATH, 'utf8') === types, `committed ${CLIENT_TYPES_PATH} differs: run \`npm run openapi\``);
});

t.test('the document states what the server refuses: 400 and 415 where they can come, required tag values', async (t) => {
  type Schema = { required?: string[]; properties?: Record<string, Schema>; items?: Schema; maxLength?: number; minLength?: number };
  type Operation = {
    operationId: string;
    responses: Record<string, unknown>;
    requestBody?: { content: Record<string, { schema: Schema }> };
  };
  const document = parse(readFileSync('openapi/openapi.yaml', 'utf8')) as { paths: Record<string, Record<string, Operation>> };
  const operations = Object.values(document.paths).flatMap((methods) => Object.entries(methods));
  // A NUL in the URL is a 400 on every route; any body with another media type a 415 on every method that takes one.
  t.same(
    operations.filter(([, operation]) => !operation.responses['400']).map(([, operation]) => operation.operationId),
    [],
    'every operation declares 400',
  );
  const withBody = operations.filter(([method]) => ['post', 'put', 'patch', 'delete'].includes(method));
  t.same(
    withBody.filter(([, operation]) => !operation.responses['415']).map(([, operation]) => operation.operationId),
    [],
  );
  const byId = new Map(operations.map(([, operation]) => [operation.operationId, operation]));
  const tagItem = (id: string) => byId.get(id)!.requestBody!.content['application/json']!.schema.properties!.tags!.items!;
  t.same(tagItem('batchCreateCaTags').required, ['key', 'value'], 'a created tag has its value');
  t.same(tagItem('batchDeleteCaTags').required, ['key'], 'a deleted one needs only its key');
});

t.test('the response headers a client reads are declared where the server sends them', async (t) => {
  type Operation = { operationId: string; responses: Record<string, { headers?: Record<string, unknown> }> };
  const document = parse(readFileSync('openapi/openapi.yaml', 'utf8')) as { paths: Record<string, Record<string, Operation>> };
  const byId = new Map(
    Object.values(document.paths).flatMap((methods) => Object.values(methods).map((operation) => [operation.operationId, operation])),
  );
  // Each sent as the tests of its route show (test/auth/credentials, test/export, test/billing, test/revocation).
  for (const [operationId, header] of [
    ['createAuthToken', 'X-Subject-Token'],
    ['exportCertificate', 'Content-Disposition'],
    ['listBillingRecords', 'Content-Disposition'],
    ['getPublicCrl', 'Cache-Control'],
  ]) {
    t.ok(byId.get(operationId)?.responses['200']?.headers?.[header], `${operationId} declares ${header}`);
  }
});

t.test('redocly lint reports no errors', async (t) => {
  const { stdout, stderr } = await run('npx', ['redocly', 'lint', '--format', 'json', 'openapi/openapi.yaml'], {
    maxBuffer: 32 * 1024 * 1024,
  }).catch((error: { stdout: string; stderr: string }) => error);
  const report = JSON.parse(stdout) as { totals: { errors: number; warnings: number }; problems: { message: string; location: unknown }[] };
  t.equal(report.totals.errors, 0, `lint errors: ${JSON.stringify(report.problems.slice(0, 5))} ${stderr.slice(0, 500)}`);
});

t.test('served at /openapi.json and /docs without credentials', async (t) => {
  const harness = await createTestApp();
  t.teardown(() => harness.close());
  const document = await harness.app.inject({ method: 'GET', url: '/openapi.json' });
  t.equal(document.statusCode, 200);
  t.equal(document.json().openapi, '3.1.0');
  t.ok(document.json().paths['/health'], 'documents the routes');
  t.notOk(
    Object.keys(document.json().paths).some((path) => path.startsWith('/docs')),
    'hides the UI routes',
  );
  const ui = await harness.app.inject({ method: 'GET', url: '/docs/' });
  t.equal(ui.statusCode, 200);
  t.match(ui.body, /swagger-ui/i);
});

t.test('the committed document, as the Lambda function serves it: loaded with Swagger UI when first asked for', async (t) => {
  const harness = await createTestApp({ openApi: 'committed' });
  t.teardown(() => harness.close());
  t.notOk(harness.app.hasDecorator('swagger'), 'no @fastify/swagger in the app itself');
  const committed = parse(readFileSync('openapi/openapi.yaml', 'utf8')) as object;
  const document = await harness.app.inject({ method: 'GET', url: '/openapi.json' });
  t.equal(document.statusCode, 200);
  t.match(document.headers['content-type'], /^application\/json/);
  t.same(document.json(), committed, 'the committed openapi/openapi.yaml');
  const ui = await harness.app.inject({ method: 'GET', url: '/docs' });
  t.equal(ui.statusCode, 200, 'Swagger UI at /docs');
  t.match(ui.body, /swagger-ui/i);
  assertDocsHeaders(t, ui.headers);
  t.ok(ui.headers['x-request-id'], 'answered through the app (its request id)');
  const script = await harness.app.inject({ method: 'GET', url: '/docs/static/swagger-ui-bundle.js' });
  t.equal(script.statusCode, 200);
  t.ok(script.rawPayload.equals(readFileSync('node_modules/@fastify/swagger-ui/static/swagger-ui-bundle.js')), 'its script, byte for byte');
  t.match(script.headers['content-type'], /javascript/);
  const viaUi = await harness.app.inject({ method: 'GET', url: '/docs/json' });
  t.same(viaUi.json(), committed, 'Swagger UI reads the same document');
  const missing = await harness.app.inject({ method: 'GET', url: '/docs/nothing-here' });
  t.equal(missing.statusCode, 404);
  t.match(missing.json(), { error_code: String, error_msg: /GET \/docs\/nothing-here/ }, "the contract's 404");
  // The routes are added before anything is awaited: the rate limit registered earlier must still count them.
  for (const response of [document, ui, script]) {
    t.equal(response.headers['x-ratelimit-limit'], String(harness.config.rateLimit.publicMax), 'rate-limited like every public route');
  }
});

/** Swagger UI shares the console's origin, where the console keeps its token: a CSP, no framing, no Referer. */
function assertDocsHeaders(t: Test, headers: Record<string, unknown>): void {
  const csp = String(headers['content-security-policy'] ?? '');
  t.match(csp, /script-src 'self'[ ;]/, "a CSP: Swagger UI's scripts from its own origin only");
  t.match(csp, /frame-ancestors 'none'/, 'not framed');
  t.notMatch(csp, /upgrade-insecure-requests/, 'a development server over http keeps working');
  t.equal(headers['x-frame-options'], 'DENY');
  t.equal(headers['x-content-type-options'], 'nosniff');
  t.equal(headers['referrer-policy'], 'no-referrer');
}

t.test('Swagger UI built from the route schemas is served with the same headers', async (t) => {
  const harness = await createTestApp();
  t.teardown(() => harness.close());
  const ui = await harness.app.inject({ method: 'GET', url: '/docs' });
  t.equal(ui.statusCode, 200);
  assertDocsHeaders(t, ui.headers);
});
