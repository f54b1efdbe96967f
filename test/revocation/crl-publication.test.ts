/**
 * CRL publication (issue #18): each newly signed CRL and the CA certificate go to object storage, and certificates
 * name the published CRL. The S3 path runs against s3rver, an S3-compatible server this test starts, with the real
 * `@aws-sdk/client-s3` (path-style requests; virtual-host style needs DNS names for buckets, which this machine has
 * not); the directory publisher writes into a temporary folder. openssl verifies every published CRL against the
 * CA certificate and reads the CDP of issued certificates. A publication that fails leaves the revocation in place
 * and is published by the crl-refresh job once the bucket exists.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import t from 'tap';
import { systemClock } from '../../src/clock.ts';
import { ConfigError, loadConfig } from '../../src/config.ts';
import type { Metrics } from '../../src/metrics/metrics.ts';
import { createObjectPublisher, type ObjectPublisher } from '../../src/services/publication/object-publishers.ts';
import { createCrlPublication } from '../../src/services/publication/publication-service.ts';
import { createTestApp, testConfig, type TestApp } from '../helpers/app.ts';
import { startS3rver } from '../helpers/aws-endpoints.ts';
import { openssl, scratch, seedCa, type SeededCa } from '../certificates/support.ts';

const CA = '/v1/private-certificate-authorities';
const METRICS_TOKEN = 'crl-publication-metrics-token';
const dir = await scratch('crl-publication');
t.teardown(() => rm(path.dirname(dir.file('x')), { recursive: true, force: true }));

const objectStorage = await startS3rver(['pca-crls', 'tenant-crls']);
t.teardown(() => objectStorage.close());
const { endpoint, client: s3 } = objectStorage;
// The app's S3 client finds its credentials where the SDK looks on a deployment.
Object.assign(process.env, objectStorage.credentials);

async function getObject(bucket: string, key: string): Promise<{ body: Uint8Array; contentType?: string; cacheControl?: string }> {
  const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return { body: await object.Body!.transformToByteArray(), contentType: object.ContentType, cacheControl: object.CacheControl };
}

function helpers(harness: TestApp) {
  const auth = harness.auth();
  const post = async (url: string, payload?: object) => {
    const response = await harness.app.inject({ method: 'POST', url, headers: auth, ...(payload ? { payload } : {}) });
    if (response.statusCode >= 300) throw new Error(`${url}: ${response.statusCode} ${response.body}`);
    return response;
  };
  return {
    post,
    async issue(issuerId: string): Promise<{ id: string; pem: string }> {
      const response = await post('/v1/private-certificates', {
        issuer_id: issuerId,
        key_algorithm: 'EC256',
        distinguished_name: { common_name: `leaf-${randomUUID().slice(0, 8)}` },
        validity: { type: 'DAY', value: 30 },
      });
      const id = (response.json() as { certificate_id: string }).certificate_id;
      const exported = await post(`/v1/private-certificates/${id}/export`, { is_compressed: 'false', type: 'OTHER' });
      return { id, pem: (exported.json() as { certificate: string }).certificate };
    },
    async crlDisPoint(caId: string): Promise<string | null> {
      const shown = await harness.app.inject({ method: 'GET', url: `${CA}/${caId}`, headers: auth });
      return (shown.json() as { crl_configuration: { crl_dis_point: string | null } }).crl_configuration.crl_dis_point;
    },
  };
}

/** openssl's verdict on a CRL's signature by the CA, and the serials it lists. */
async function judgeCrl(name: string, der: Uint8Array, ca: SeededCa): Promise<{ verified: boolean; serials: string[]; crlNumber: number }> {
  const crlFile = await dir.write(`${name}.crl`, der);
  const caFile = await dir.write(`${name}-ca.pem`, ca.pem);
  const result = await openssl(['crl', '-inform', 'DER', '-in', crlFile, '-CAfile', caFile, '-verify', '-noout', '-text']);
  const text = result.stdout;
  return {
    verified: /verify OK/.test(result.stderr + result.stdout),
    serials: [...text.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((match) => match[1]!.toLowerCase()),
    crlNumber: Number(/X509v3 CRL Number:\s*\n\s*(\d+)/.exec(text)?.[1]),
  };
}

async function cdpOf(name: string, pem: string): Promise<string[]> {
  const text = (await openssl(['x509', '-in', await dir.write(`${name}.pem`, pem), '-noout', '-ext', 'crlDistributionPoints'])).stdout;
  return [...text.matchAll(/URI:(\S+)/g)].map((match) => match[1]!);
}

const serialOf = async (name: string, pem: string) =>
  (await openssl(['x509', '-in', await dir.write(`${name}-serial.pem`, pem), '-noout', '-serial'])).stdout
    .trim()
    .replace(/^serial=/, '')
    .toLowerCase();

t.test('S3: the CRL and CA certificate are published at revoke, certificates name the published CRL, revoke updates it', async (t) => {
  const harness = await createTestApp({
    env: { ...objectStorage.publicationEnv, CRL_PUBLISH_BUCKETS: 'pca-crls,tenant-crls,not-created-yet', METRICS_TOKEN },
  });
  t.teardown(() => harness.close());
  const { post, issue, crlDisPoint } = helpers(harness);
  const root = await seedCa(harness, { commonName: 'pub-root' });
  const sub = await seedCa(harness, { commonName: 'pub-sub', parent: root, pathLength: 0 });

  // The sub names a bucket the deployment allows; the root names one it does not, and publishes to the first.
  await post(`${CA}/${sub.id}/crl/enable`, { valid_days: 7, obs_bucket_name: 'tenant-crls' });
  await post(`${CA}/${root.id}/crl/enable`, { valid_days: 7, obs_bucket_name: 'someone-elses-bucket' });
  const subCrlUrl = `${endpoint}/tenant-crls/crl/${sub.id}.crl`;
  t.equal(await crlDisPoint(sub.id), subCrlUrl, 'crl_dis_point names the published object');
  t.equal(
    await crlDisPoint(root.id),
    `${endpoint}/pca-crls/crl/${root.id}.crl`,
    'a bucket outside CRL_PUBLISH_BUCKETS falls back to the first',
  );

  const first = await issue(sub.id);
  t.same(await cdpOf('first', first.pem), [subCrlUrl], "openssl reads the published URL as the certificate's CDP");

  await post(`/v1/private-certificates/${first.id}/revoke`, { reason: 'KEY_COMPROMISE' });
  const published = await getObject('tenant-crls', `crl/${sub.id}.crl`);
  t.equal(published.contentType, 'application/pkix-crl');
  t.match(published.cacheControl, /^public, max-age=\d+/, 'cached until its nextUpdate');
  const judged = await judgeCrl('first', published.body, sub);
  t.ok(judged.verified, 'openssl crl -verify: signed by the CA');
  t.same(judged.serials, [await serialOf('first', first.pem)], 'the revoked certificate is listed');
  // The object the certificate names answers a plain GET (s3rver serves the bucket as a public bucket would).
  const fetched = await fetch(subCrlUrl);
  t.equal(fetched.status, 200);
  t.same(new Uint8Array(await fetched.arrayBuffer()), published.body, 'the CDP URL serves the same bytes');

  const caCertificate = await getObject('tenant-crls', `ca/${sub.id}.crt`);
  t.equal(caCertificate.contentType, 'application/pkix-cert');
  t.same(caCertificate.body, sub.der, 'the CA certificate, DER');

  const second = await issue(sub.id);
  await post(`/v1/private-certificates/${second.id}/revoke`, {});
  const updated = await judgeCrl('second', (await getObject('tenant-crls', `crl/${sub.id}.crl`)).body, sub);
  t.ok(updated.verified);
  t.ok(updated.crlNumber > judged.crlNumber, `revoke → a newer CRL is published (${judged.crlNumber} → ${updated.crlNumber})`);
  t.same(updated.serials.sort(), [await serialOf('first', first.pem), await serialOf('second', second.pem)].sort());
  const api = await harness.app.inject({ method: 'GET', url: `/crl/${sub.id}.crl` });
  t.same(new Uint8Array(api.rawPayload), (await getObject('tenant-crls', `crl/${sub.id}.crl`)).body, 'the API route serves the same CRL');

  await t.test('a publication that fails loses nothing: the revoke stands, and crl-refresh publishes once the bucket exists', async (t) => {
    await post(`${CA}/${sub.id}/crl/enable`, { valid_days: 7, obs_bucket_name: 'not-created-yet' });
    t.equal(await crlDisPoint(sub.id), `${endpoint}/not-created-yet/crl/${sub.id}.crl`);
    const third = await issue(sub.id);
    const failuresBefore = (await harness.app.services.revocation.publication!.publishPending(() => undefined)).publishFailed;
    t.equal(failuresBefore, 1, 'the bucket does not exist: publishing fails');
    const revoked = await harness.app.inject({
      method: 'POST',
      url: `/v1/private-certificates/${third.id}/revoke`,
      headers: harness.auth(),
      payload: {},
    });
    t.equal(revoked.statusCode, 204, 'the revoke succeeds');
    t.match(harness.logs.text, /CRL publication failed; the crl-refresh job retries it/, 'the failure is logged');
    const metrics = await harness.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    t.match(metrics.body, /pca_crl_publications_total\{outcome="failed"\} 2/, 'and counted');
    const apiCrl = await judgeCrl(
      'third-api',
      new Uint8Array((await harness.app.inject({ method: 'GET', url: `/crl/${sub.id}.crl` })).rawPayload),
      sub,
    );
    t.ok(apiCrl.serials.includes(await serialOf('third', third.pem)), 'the API serves the CRL with the revocation meanwhile');
    const earlierBucket = await judgeCrl('third-tenant', (await getObject('tenant-crls', `crl/${sub.id}.crl`)).body, sub);
    t.ok(
      earlierBucket.serials.includes(await serialOf('third', third.pem)),
      'the bucket the earlier certificates name has it too: one failing bucket holds up no other',
    );

    await s3.send(new CreateBucketCommand({ Bucket: 'not-created-yet' }));
    const run = await harness.app.jobRunner.runOnce('crl-refresh');
    // The sub's CRL, and the root's first one, which this run signed (CRL enabled, none yet).
    t.match(run, { signed: 1, unpublished: 2, published: 2, publishFailed: 0 }, `crl-refresh: ${JSON.stringify(run)}`);
    const late = await judgeCrl('third', (await getObject('not-created-yet', `crl/${sub.id}.crl`)).body, sub);
    t.ok(late.verified);
    t.ok(late.serials.includes(await serialOf('third', third.pem)), 'the retried publication carries the revocation');
    t.match(await harness.app.jobRunner.runOnce('crl-refresh'), { unpublished: 0, published: 0 }, 'nothing left to publish');
  });
});

t.test('a CA whose bucket changes keeps publishing to every bucket its certificates name', async (t) => {
  const harness = await createTestApp({ env: objectStorage.publicationEnv });
  t.teardown(() => harness.close());
  const { post, issue } = helpers(harness);
  const ca = await seedCa(harness, { commonName: 'moving-root' });
  const crlIn = (bucket: string) => `${endpoint}/${bucket}/crl/${ca.id}.crl`;
  const serialsIn = async (name: string, bucket: string) => {
    const judged = await judgeCrl(name, (await getObject(bucket, `crl/${ca.id}.crl`)).body, ca);
    t.ok(judged.verified, `${name}: the CRL in ${bucket} is signed by the CA`);
    return judged.serials.sort();
  };

  await post(`${CA}/${ca.id}/crl/enable`, { valid_days: 7, obs_bucket_name: 'tenant-crls' });
  const before = await issue(ca.id);
  t.same(await cdpOf('moving-before', before.pem), [crlIn('tenant-crls')]);
  t.match(await harness.app.jobRunner.runOnce('crl-refresh'), { signed: 1, published: 1 }, 'the first CRL goes to tenant-crls');
  // Re-enabled without a bucket: the deployment's first.
  await post(`${CA}/${ca.id}/crl/enable`, { valid_days: 7 });
  const after = await issue(ca.id);
  t.same(await cdpOf('moving-after', after.pem), [crlIn('pca-crls')]);

  await post(`/v1/private-certificates/${before.id}/revoke`, { reason: 'KEY_COMPROMISE' });
  const beforeSerial = await serialOf('moving-before', before.pem);
  t.same(await serialsIn('old-bucket', 'tenant-crls'), [beforeSerial], "the older certificate's CDP lists its revocation");
  t.same(await serialsIn('new-bucket', 'pca-crls'), [beforeSerial], 'and so does the bucket the CA maps to now');
  t.same((await getObject('tenant-crls', `ca/${ca.id}.crt`)).body, ca.der, 'with the CA certificate');

  // The operator edits CRL_PUBLISH_BUCKETS (a restart with the new setting; here the running configuration):
  // tenant-crls is gone, and a new first bucket takes the CA, which names none.
  await s3.send(new CreateBucketCommand({ Bucket: 'moved-crls' }));
  harness.config.crlPublication!.buckets.splice(0, Infinity, 'moved-crls', 'pca-crls');
  t.match(
    await harness.app.jobRunner.runOnce('crl-refresh'),
    { unpublished: 1, published: 1, publishFailed: 0 },
    'crl-refresh publishes to the bucket the CA maps to now',
  );
  t.same(await serialsIn('moved-bucket', 'moved-crls'), [beforeSerial]);
  await post(`/v1/private-certificates/${after.id}/revoke`, {});
  const both = [beforeSerial, await serialOf('moving-after', after.pem)].sort();
  t.same(await serialsIn('moved-bucket-2', 'moved-crls'), both);
  t.same(await serialsIn('new-bucket-2', 'pca-crls'), both, "the newer certificate's CDP lists its revocation");
  t.same(await serialsIn('old-bucket-2', 'tenant-crls'), [beforeSerial], 'a bucket no longer configured is not written');
  t.match(harness.logs.text, /CRL not published to buckets certificates name but CRL_PUBLISH_BUCKETS no longer lists/, 'a warning says so');
  t.match(await harness.app.jobRunner.runOnce('crl-refresh'), { unpublished: 0, published: 0 }, 'nothing left to publish');
});

t.test('a bucket that keeps refusing is retried alone: the buckets holding the newest CRL are not written again', async (t) => {
  const harness = await createTestApp({
    env: { ...objectStorage.publicationEnv, CRL_PUBLISH_BUCKETS: 'pca-crls,tenant-crls,flaky-crls' },
  });
  t.teardown(() => harness.close());
  const { post, issue } = helpers(harness);
  const ca = await seedCa(harness, { commonName: 'flaky-root' });
  await post(`${CA}/${ca.id}/crl/enable`, { valid_days: 7, obs_bucket_name: 'tenant-crls' });
  const leaf = await issue(ca.id);
  t.match(await harness.app.jobRunner.runOnce('crl-refresh'), { signed: 1, published: 1 }, 'the first CRL goes to tenant-crls');
  // The CA moves to a bucket that refuses (not created): the revoke's CRL reaches tenant-crls only.
  await post(`${CA}/${ca.id}/crl/enable`, { valid_days: 7, obs_bucket_name: 'flaky-crls' });
  await post(`/v1/private-certificates/${leaf.id}/revoke`, {});
  const newest = await judgeCrl(
    'flaky-newest',
    new Uint8Array((await harness.app.inject({ method: 'GET', url: `/crl/${ca.id}.crl` })).rawPayload),
    ca,
  );
  t.equal((await judgeCrl('flaky-tenant', (await getObject('tenant-crls', `crl/${ca.id}.crl`)).body, ca)).crlNumber, newest.crlNumber);

  // The crl-refresh job's publication, with every put it makes counted by bucket.
  const objects = createObjectPublisher(harness.config.crlPublication!);
  t.teardown(() => objects.close());
  const puts: string[] = [];
  const counted: ObjectPublisher = {
    put: (object) => {
      puts.push(object.bucket);
      return objects.put(object);
    },
    close: () => objects.close(),
  };
  const outcomes: string[] = [];
  const metrics = { crlPublications: { inc: ({ outcome }: { outcome: string }) => outcomes.push(outcome) } };
  const publication = createCrlPublication({
    db: harness.database.prisma,
    clock: systemClock,
    publication: harness.config.crlPublication!,
    publisher: counted,
    metrics: metrics as unknown as Pick<Metrics, 'crlPublications'>,
    log: harness.app.log,
  });

  t.match(await publication.publishPending(() => undefined), { unpublished: 1, published: 0, publishFailed: 1 }, 'still refused');
  t.same(puts.splice(0), ['flaky-crls'], 'only the refusing bucket is tried: tenant-crls holds the newest CRL already');

  await s3.send(new CreateBucketCommand({ Bucket: 'flaky-crls' }));
  t.match(await publication.publishPending(() => undefined), { unpublished: 1, published: 1, publishFailed: 0 }, 'recovered');
  t.same(puts.splice(0), ['flaky-crls', 'flaky-crls'], 'the CA certificate and the CRL, into the recovered bucket only');
  t.same(outcomes, ['failed', 'published'], 'counted as before');
  for (const bucket of ['tenant-crls', 'flaky-crls']) {
    const held = await judgeCrl(`flaky-${bucket}`, (await getObject(bucket, `crl/${ca.id}.crl`)).body, ca);
    t.equal(held.crlNumber, newest.crlNumber, `${bucket} holds the newest CRL`);
  }

  t.match(await publication.publishPending(() => undefined), { unpublished: 0, published: 0, publishFailed: 0 }, 'nothing behind');
  t.equal(await publication.publish(ca.id), false, 'a publication finds nothing to put');
  t.same(puts, [], 'and nothing is uploaded again');

  // A CA as the release before crl_publications left it (its buckets listed, none recorded as holding a CRL): each
  // bucket gets the newest CRL once more, then nothing.
  await harness.database.prisma.crlPublication.deleteMany({ where: { caId: ca.id } });
  t.match(await publication.publishPending(() => undefined), { unpublished: 1, published: 1 });
  t.same(puts.splice(0).sort(), ['flaky-crls', 'flaky-crls', 'tenant-crls', 'tenant-crls'], 'every listed bucket, once');
  t.match(await publication.publishPending(() => undefined), { unpublished: 0, published: 0 });
  t.same(puts, []);
});

t.test('directory: the same objects under CRL_PUBLISH_DIR/<bucket>/, named by the CDP', async (t) => {
  const folder = await mkdtemp(path.join(os.tmpdir(), 'pca-crl-dir-'));
  t.teardown(() => rm(folder, { recursive: true, force: true }));
  const harness = await createTestApp({
    env: { CRL_PUBLISH_BUCKETS: 'crls', CRL_PUBLISH_DIR: folder, CRL_PUBLIC_BASE_URL: 'https://crl.corp.internal/{bucket}' },
  });
  t.teardown(() => harness.close());
  const { post, issue } = helpers(harness);
  const root = await seedCa(harness, { commonName: 'dir-root' });
  await post(`${CA}/${root.id}/crl/enable`, { valid_days: 7 });
  const leaf = await issue(root.id);
  t.same(await cdpOf('dir-leaf', leaf.pem), [`https://crl.corp.internal/crls/crl/${root.id}.crl`]);
  await post(`/v1/private-certificates/${leaf.id}/revoke`, {});
  const judged = await judgeCrl('dir', await readFile(path.join(folder, 'crls/crl', `${root.id}.crl`)), root);
  t.ok(judged.verified, 'openssl crl -verify');
  t.same(judged.serials, [await serialOf('dir-leaf', leaf.pem)]);
  t.same(new Uint8Array(await readFile(path.join(folder, 'crls/ca', `${root.id}.crt`))), root.der, 'the CA certificate, DER');

  const next = await issue(root.id);
  await post(`/v1/private-certificates/${next.id}/revoke`, {});
  const updated = await judgeCrl('dir-2', await readFile(path.join(folder, 'crls/crl', `${root.id}.crl`)), root);
  t.ok(updated.crlNumber > judged.crlNumber && updated.serials.length === 2, 'revoke → the file is replaced by the newer CRL');
});

t.test('configuration: publication is off unless CRL_PUBLISH_BUCKETS names buckets, and each setting is checked', async (t) => {
  t.equal(testConfig().crlPublication, undefined, 'off by default: certificates name the API route');
  const s3Config = testConfig({
    CRL_PUBLISH_BUCKETS: 'a-bucket',
    CRL_PUBLIC_BASE_URL: 'https://a-bucket.s3.eu-central-1.amazonaws.com/',
  }).crlPublication;
  t.same(
    s3Config,
    {
      buckets: ['a-bucket'],
      publicBaseUrl: 'https://a-bucket.s3.eu-central-1.amazonaws.com',
      target: { kind: 's3', endpoint: undefined, region: undefined, forcePathStyle: false },
    },
    'AWS, virtual-host style by default',
  );
  const refused: [Record<string, string>, RegExp][] = [
    [{ CRL_PUBLIC_BASE_URL: 'https://crl.corp.internal' }, /CRL_PUBLISH_BUCKETS turns on/],
    [{ CRL_PUBLISH_BUCKETS: 'Bad_Bucket', CRL_PUBLIC_BASE_URL: 'https://crl.corp.internal' }, /'Bad_Bucket' is not a bucket name/],
    [{ CRL_PUBLISH_BUCKETS: '../etc', CRL_PUBLISH_DIR: '/tmp', CRL_PUBLIC_BASE_URL: 'https://crl.corp.internal' }, /not a bucket name/],
    [{ CRL_PUBLISH_BUCKETS: 'a-bucket' }, /CRL_PUBLIC_BASE_URL must be the absolute http\(s\) URL/],
    [{ CRL_PUBLISH_BUCKETS: 'a-bucket', CRL_PUBLIC_BASE_URL: 'ftp://x/{bucket}' }, /CRL_PUBLIC_BASE_URL must be/],
    [
      { CRL_PUBLISH_BUCKETS: 'a-bucket', CRL_PUBLIC_BASE_URL: 'https://x', CRL_PUBLISH_DIR: '/tmp', CRL_S3_REGION: 'eu-west-1' },
      /CRL_S3_REGION configure S3, and CRL_PUBLISH_DIR publishes to a folder/,
    ],
    [
      { CRL_PUBLISH_BUCKETS: 'a-bucket', CRL_PUBLIC_BASE_URL: 'https://x', CRL_S3_ENDPOINT: 'minio:9000' },
      /CRL_S3_ENDPOINT must be http\(s\):\/\/host\[:port\]/,
    ],
    [
      { CRL_PUBLISH_BUCKETS: 'a-bucket', CRL_PUBLIC_BASE_URL: 'https://x', CRL_S3_FORCE_PATH_STYLE: 'maybe' },
      /CRL_S3_FORCE_PATH_STYLE must be true or false/,
    ],
  ];
  for (const [env, message] of refused) {
    t.throws(() => loadConfig({ ...testEnv(), ...env }), ConfigError, JSON.stringify(env));
    t.throws(() => loadConfig({ ...testEnv(), ...env }), message);
  }
});

/** The minimum loadConfig accepts in development. */
function testEnv(): Record<string, string> {
  return { DATA_DIR: path.join(os.tmpdir(), 'pca-crl-publication-config') };
}
