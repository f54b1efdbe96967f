/**
 * GET /metrics: off without METRICS_TOKEN, its own credential otherwise, and counters that move as the test issues,
 * revokes, signs a CRL, answers OCSP and runs a job.
 */
import t from 'tap';
import { createTestApp, testConfig, type TestApp } from '../helpers/app.ts';
import { CA, client } from '../ca/support.ts';

const METRICS_TOKEN = 'metrics-token-for-the-test-0123456789';

/** `name{labels} value` lines of the Prometheus text format, keyed by `name{labels}`. */
function parseExposition(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (!match) throw new Error(`not an exposition line: ${line}`);
    samples.set(match[1], Number(match[2]));
  }
  return samples;
}

async function scrape(harness: TestApp): Promise<Map<string, number>> {
  const response = await harness.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  if (response.statusCode !== 200) throw new Error(`scrape failed: ${response.statusCode} ${response.body}`);
  return parseExposition(response.body);
}

const value = (samples: Map<string, number>, key: string) => samples.get(key) ?? 0;

t.test('without METRICS_TOKEN the endpoint is off', async (t) => {
  const harness = await createTestApp();
  t.teardown(() => harness.close());
  const response = await harness.app.inject({ method: 'GET', url: '/metrics', headers: harness.auth() });
  t.equal(response.statusCode, 404, 'not even an admin token opens it');
  t.equal(response.json().error_code, 'PCA.10010002');
});

t.test('the token is its own credential', async (t) => {
  const harness = await createTestApp({ env: { METRICS_TOKEN } });
  t.teardown(() => harness.close());
  for (const headers of [{}, harness.auth(), { authorization: `Bearer ${METRICS_TOKEN}x` }, { authorization: METRICS_TOKEN }]) {
    const response = await harness.app.inject({ method: 'GET', url: '/metrics', headers });
    t.equal(response.statusCode, 401, `refused: ${JSON.stringify(headers).slice(0, 40)}`);
    t.equal(response.json().error_code, 'APIG.0303');
  }
  const response = await harness.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  t.equal(response.statusCode, 200);
  t.match(response.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  t.match(response.body, /# TYPE pca_http_requests_total counter/);
  t.match(response.body, /# TYPE process_cpu_seconds_total counter/, 'process metrics too');
});

t.test('counters move as certificates are issued and revoked', async (t) => {
  const harness = await createTestApp({ env: { METRICS_TOKEN } });
  t.teardown(() => harness.close());
  const api = client(harness);
  const root = await api.root();
  const before = await scrape(harness);

  const issued: string[] = [];
  for (let i = 0; i < 3; i++) {
    const response = await api.call('POST', '/v1/private-certificates', {
      issuer_id: root,
      distinguished_name: { common_name: `leaf-${i}` },
      validity: { type: 'DAY', value: 30 },
      key_algorithm: 'EC256',
    });
    t.equal(response.status, 200);
    issued.push(response.body.certificate_id as string);
  }
  t.equal((await api.call('POST', `/v1/private-certificates/${issued[0]}/revoke`, { reason: 'KEY_COMPROMISE' })).status, 204);
  const refused = await api.call('POST', `/v1/private-certificates/${issued[0]}/revoke`, {});
  t.ok(refused.status >= 400 && refused.status < 500, 'a second revoke is refused (and not counted as a revocation)');
  await harness.app.jobRunner.runOnce('crl-refresh');
  const ocsp = await harness.app.inject({
    method: 'POST',
    url: `/ocsp/${root}`,
    headers: { 'content-type': 'application/ocsp-request' },
    payload: Buffer.from('not an OCSP request'),
  });
  t.equal(ocsp.statusCode, 200);

  const after = await scrape(harness);
  const delta = (key: string) => value(after, key) - value(before, key);
  t.equal(delta('pca_certificates_issued_total{ca_key_algorithm="EC256"}'), 3, 'three issued under an EC256 CA');
  t.equal(delta('pca_certificates_revoked_total{ca_key_algorithm="EC256"}'), 1, 'one revoked');
  t.equal(delta('pca_http_requests_total{method="POST",route="/v1/private-certificates",status_code="200"}'), 3);
  t.equal(
    delta(`pca_http_requests_total{method="POST",route="/v1/private-certificates/:certificate_id/revoke",status_code="${refused.status}"}`),
    1,
  );
  t.equal(delta('pca_http_request_duration_seconds_count{method="POST",route="/v1/private-certificates"}'), 3);
  // Three certificates and at least one CRL signed; issuance makes the leaves' keys in Node, not in the store.
  t.ok(
    delta(`pca_key_store_operations_total{store="${harness.config.keyStore.defaultKind}",operation="sign"}`) >= 4,
    'key store signatures counted',
  );
  t.equal(delta(`pca_key_store_errors_total{store="${harness.config.keyStore.defaultKind}",operation="sign"}`), 0);
  t.equal(delta('pca_job_runs_total{job="crl-refresh"}'), 1);
  t.equal(delta('pca_job_failures_total{job="crl-refresh"}'), 0);
  t.equal(after.get('pca_signature_worker_failures_total'), 0, "the CSR signature worker's failures: exposed, none");
  t.ok(delta('pca_crl_generation_seconds_count') >= 1, 'the CRL signing was timed');
  t.ok(delta('pca_crl_size_bytes_sum') > 100, 'and its size recorded');
  t.equal(delta('pca_ocsp_responses_total{status="malformedRequest"}'), 1);
  t.equal(
    value(after, 'pca_http_requests_total{method="GET",route="/metrics",status_code="200"}'),
    1,
    'the first scrape is counted by the second',
  );

  const ca = await api.call('GET', `${CA}/${root}`);
  t.equal(ca.status, 200);
});

t.test('a failing job is counted', async (t) => {
  const harness = await createTestApp({ env: { METRICS_TOKEN } });
  t.teardown(() => harness.close());
  // A real failure: the table the job updates is gone for the duration of its run.
  await harness.database.prisma.$executeRawUnsafe('ALTER TABLE certificate_authorities RENAME TO certificate_authorities_away');
  await t.rejects(harness.app.jobRunner.runOnce('ca-expiry'));
  await harness.database.prisma.$executeRawUnsafe('ALTER TABLE certificate_authorities_away RENAME TO certificate_authorities');
  const samples = await scrape(harness);
  t.equal(value(samples, 'pca_job_runs_total{job="ca-expiry"}'), 1);
  t.equal(value(samples, 'pca_job_failures_total{job="ca-expiry"}'), 1);
  t.equal(value(samples, 'pca_job_failures_total{job="crl-refresh"}'), 0, 'only the failing job');
});

t.test('a short METRICS_TOKEN or an unknown LOG_FORMAT stops the start', async (t) => {
  t.throws(() => testConfig({ METRICS_TOKEN: 'short' }), /METRICS_TOKEN must be at least 16 characters/);
  t.throws(() => testConfig({ LOG_FORMAT: 'xml' }), /LOG_FORMAT must be one of json, pretty/);
  t.throws(
    () => testConfig({ LOG_LEVEL: 'verbose' }),
    /LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got 'verbose'/,
  );
  for (const url of ['notaurl', 'mysql://x/y']) {
    t.throws(() => testConfig({ DATABASE_URL: url }), /DATABASE_URL must be a postgres:\/\/ connection string/, url);
  }
  for (const url of ['postgresql://u@db/pca', 'postgres:///pca?host=/var/run/postgresql']) {
    t.equal(testConfig({ DATABASE_URL: url }).databaseUrl, url, 'a host, or a Unix socket');
  }
  t.equal(testConfig().logFormat, 'json', 'given keys (not development): JSON');
  t.equal(testConfig({ NODE_ENV: 'development' }).logFormat, 'pretty');
});
