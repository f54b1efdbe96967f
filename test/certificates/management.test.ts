/**
 * After issuance (§4.4.4, §4.4.5, §4.4.7): list filters/sorting/paging, show, quota, export as JSON and as zips
 * (contents read by unzip and openssl), delete without revoking.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { ManualClock } from '../../src/clock.ts';
import { createTestApp } from '../helpers/app.ts';
import { openssl, scratch, seedCa } from './support.ts';

const run = promisify(execFile);
const clock = new ManualClock(Date.now());
const harness = await createTestApp({ clock });
t.teardown(() => harness.close());
const { app } = harness;
const auth = harness.auth();
const dir = await scratch('manage');
const root = await seedCa(harness, { commonName: 'm-root' });
const sub = await seedCa(harness, { commonName: 'm-sub', parent: root, pathLength: 1 });

async function issue(commonName: string, days: number) {
  const response = await app.inject({
    method: 'POST',
    url: '/v1/private-certificates',
    headers: auth,
    payload: {
      issuer_id: sub.id,
      distinguished_name: { common_name: commonName },
      validity: { type: 'DAY', value: days },
      key_algorithm: 'EC256',
    },
  });
  if (response.statusCode !== 200) throw new Error(response.body);
  clock.advance(1000);
  return response.json().certificate_id as string;
}

const alpha = await issue('alpha.example.com', 10);
const beta = await issue('Beta.example.com', 2);
const gamma = await issue('gamma.internal', 30);

const list = async (query: string) => {
  const response = await app.inject({ method: 'GET', url: `/v1/private-certificates?${query}`, headers: auth });
  return { status: response.statusCode, body: response.json() };
};

t.test('list: paging, sorting, name and derived EXPIRED status; show; quota', async (t) => {
  const all = await list('');
  t.equal(all.body.total, 3);
  t.same(
    all.body.certificates.map((c: { certificate_id: string }) => c.certificate_id),
    [gamma, beta, alpha],
    'newest first by default',
  );
  t.same(
    (await list('sort_key=not_after&sort_dir=ASC')).body.certificates.map((c: { certificate_id: string }) => c.certificate_id),
    [beta, alpha, gamma],
  );
  const page = await list('limit=1&offset=1');
  t.same([page.body.total, page.body.certificates.length, page.body.certificates[0].certificate_id], [3, 1, beta]);
  t.same([(await list('limit=0')).body.total, (await list('limit=0')).body.certificates], [3, []]);
  t.same(
    (await list('name=EXAMPLE')).body.certificates.map((c: { certificate_id: string }) => c.certificate_id),
    [beta, alpha],
    'name is case-insensitive',
  );
  t.equal((await list('status=BOGUS')).status, 400);
  // Extension: one CA's certificates (the console's CA page), whatever the domain's other CAs issued.
  t.equal((await list(`issuer_id=${sub.id}`)).body.total, 3);
  t.same((await list(`issuer_id=${root.id}`)).body, { total: 0, certificates: [] }, 'the root issued none of them');
  t.match(await list('issuer_id=not-a-uuid'), { status: 400, body: { error_code: 'PCA.00020201' } }, "a CA id's error code (§2)");
  const urn = (domain: string) => `pca:${harness.config.region}:${domain}:ca:${sub.id}`;
  t.equal((await list(`issuer_id=${urn(harness.config.defaultDomainId)}`)).body.total, 3, 'the URN works in place of the id (§10.1)');
  t.same((await list(`issuer_id=${urn('0'.repeat(32))}`)).body, { total: 0, certificates: [] }, "another domain's URN names none");
  t.match(await list(`issuer_id=pca:elsewhere-1:${harness.config.defaultDomainId}:ca:${sub.id}`), {
    status: 400,
    body: { error_code: 'PCA.00020201', error_msg: /region 'elsewhere-1'/ },
  });
  clock.advance(3 * 86_400_000);
  t.same(
    (await list('status=EXPIRED')).body.certificates.map((c: { certificate_id: string }) => c.certificate_id),
    [beta],
  );
  t.equal((await list('status=ISSUED')).body.total, 2);
  const shown = await app.inject({ method: 'GET', url: `/v1/private-certificates/${beta}`, headers: auth });
  t.match(shown.json(), {
    certificate_id: beta,
    status: 'EXPIRED',
    issuer_id: sub.id,
    issuer_name: 'm-sub',
    key_algorithm: 'EC256',
    signature_algorithm: 'SHA256',
    freeze_flag: 0,
    gen_mode: 'GENERATE',
    serial_number: /^[0-9a-f]{32}$/,
    delete_time: null,
    distinguished_name: { common_name: 'Beta.example.com', country: 'CN', organization: 'huawei-cloud' },
    enterprise_project_id: '0',
    urn: `pca:cn-north-4:${harness.config.defaultDomainId}:certificate:${beta}`,
  });
  const expiredExport = await app.inject({ method: 'POST', url: `/v1/private-certificates/${beta}/export`, headers: auth, payload: {} });
  t.equal(expiredExport.statusCode, 400, 'only ISSUED certificates export');
  t.equal(
    (await app.inject({ method: 'GET', url: '/v1/private-certificates/not-a-uuid', headers: auth })).json().error_code,
    'PCA.10010105',
  );
  const quota = await app.inject({ method: 'GET', url: '/v1/private-certificates/quotas', headers: auth });
  t.same(quota.json(), { quotas: { resources: [{ type: 'CERTIFICATE', used: 3, quota: 100000 }] } });
});

t.test('export: zips per type with their files, encrypted keys, Content-Disposition', async (t) => {
  const expectations: [string, string[]][] = [
    ['APACHE', ['chain.crt', 'server.crt', 'server.key']],
    ['nginx', ['server.crt', 'server.key']],
    ['IIS', ['keystorePass.txt', 'server.pfx']],
    ['TOMCAT', ['keystorePass.txt', 'server.jks']],
    ['OTHER', ['chain.pem', 'server.key', 'server.pem']],
  ];
  for (const [type, files] of expectations) {
    const response = await app.inject({
      method: 'POST',
      url: `/v1/private-certificates/${gamma}/export`,
      headers: auth,
      payload: { is_compressed: 'TRUE', type },
    });
    t.equal(response.statusCode, 200);
    t.equal(response.headers['content-type'], 'application/zip');
    t.equal(response.headers['content-disposition'], `attachment; filename="gamma.internal_${type.toLowerCase()}.zip"`);
    const zip = await dir.write(`${type}.zip`, response.rawPayload);
    const { stdout } = await run('unzip', ['-Z1', zip]);
    t.same(stdout.trim().split('\n').sort(), files, `${type} zip contents`);
  }
  const protectedZip = await app.inject({
    method: 'POST',
    url: `/v1/private-certificates/${gamma}/export`,
    headers: auth,
    payload: { is_compressed: true, type: 'IIS', password: 'S3cret.pass' },
  });
  const zip = await dir.write('iis-pw.zip', protectedZip.rawPayload);
  await run('unzip', ['-o', '-d', dir.file('iis'), zip]);
  const pkcs12 = await openssl(['pkcs12', '-in', dir.file('iis/server.pfx'), '-passin', 'pass:S3cret.pass', '-nodes', '-info']);
  t.ok(pkcs12.ok, `the PKCS#12 opens with the password: ${pkcs12.stderr}`);
  t.match(pkcs12.stdout, /subject=.*CN\s?=\s?gamma.internal/);
  const json = await app.inject({
    method: 'POST',
    url: `/v1/private-certificates/${gamma}/export`,
    headers: auth,
    payload: { is_compressed: 'false', type: 'other', password: 'abc-1234' },
  });
  t.match(json.json().private_key, /^-----BEGIN ENCRYPTED PRIVATE KEY-----\r\n/);
  const keyFile = await dir.write('enc.key', json.json().private_key);
  t.ok((await openssl(['pkey', '-in', keyFile, '-passin', 'pass:abc-1234', '-noout'])).ok, 'openssl decrypts the key');
  // Extension: the certificate and chain alone, the key left where it is (and no key export audited).
  const keyExports = () =>
    harness.database.prisma.auditEvent.count({ where: { action: 'pca:cert:export', resourceId: gamma, outcome: 'SUCCESS' } });
  const exportsBefore = await keyExports();
  const keyless = await app.inject({
    method: 'POST',
    url: `/v1/private-certificates/${gamma}/export`,
    headers: auth,
    payload: { is_compressed: 'false', type: 'OTHER', include_private_key: false, password: 'abc' },
  });
  t.equal(keyless.statusCode, 200, keyless.body);
  t.equal(keyless.json().private_key, null, 'include_private_key false: no key (and its password ignored)');
  t.match(keyless.json().certificate, /^-----BEGIN CERTIFICATE-----/);
  t.equal(await keyExports(), exportsBefore, 'no key export audited');
  const keylessZip = await app.inject({
    method: 'POST',
    url: `/v1/private-certificates/${gamma}/export`,
    headers: auth,
    payload: { is_compressed: 'true', type: 'NGINX', include_private_key: false },
  });
  const { stdout: keylessFiles } = await run('unzip', ['-Z1', await dir.write('keyless.zip', keylessZip.rawPayload)]);
  t.same(keylessFiles.trim().split('\n').sort(), ['server.crt'], 'NGINX without the key: the certificate alone');
  t.equal(
    (await app.inject({ method: 'POST', url: `/v1/private-certificates/${gamma}/export`, headers: auth, payload: { type: 'WEBLOGIC' } }))
      .statusCode,
    400,
  );
  t.equal(
    (
      await app.inject({
        method: 'POST',
        url: `/v1/private-certificates/${gamma}/export`,
        headers: auth,
        payload: { is_compressed: 'maybe' },
      })
    ).statusCode,
    400,
  );
});

t.test("export: no body, or null (a Go client's nil Body), is {}: JSON of type OTHER (§4.4.5); malformed JSON is refused", async (t) => {
  const url = `/v1/private-certificates/${gamma}/export`;
  const exportWith = (headers: Record<string, string>, payload?: string) =>
    app.inject({ method: 'POST', url, headers: { ...auth, ...headers }, ...(payload === undefined ? {} : { payload }) });
  const defaults = await exportWith({ 'content-type': 'application/json' }, '{}');
  t.equal(defaults.statusCode, 200);
  t.match(defaults.json().private_key, /^-----BEGIN EC PRIVATE KEY-----\r\n/, '{}: the key unencrypted');
  const cases: [string, Record<string, string>, string?][] = [
    ['no body, no Content-Type', {}],
    ['no body with Content-Type application/json', { 'content-type': 'application/json' }],
    ['an empty body', { 'content-type': 'application/json' }, ''],
    ['null', { 'content-type': 'application/json' }, 'null'],
    ['null without Content-Type', {}, 'null'],
  ];
  for (const [what, headers, payload] of cases) {
    const response = await exportWith(headers, payload);
    t.equal(response.statusCode, 200, `${what}: ${response.body.slice(0, 200)}`);
    t.match(response.headers['content-type'], /^application\/json/, `${what}: JSON, not a zip`);
    t.same(Object.keys(response.json()).sort(), Object.keys(defaults.json()).sort(), `${what}: the fields of {}`);
    t.equal(response.json().certificate, defaults.json().certificate, `${what}: the same certificate`);
    t.equal(response.json().private_key, defaults.json().private_key, `${what}: the key, unencrypted as for {}`);
  }
  for (const payload of ['{"type":', '[]', '"OTHER"', '7']) {
    const refused = await exportWith({ 'content-type': 'application/json' }, payload);
    t.equal(refused.statusCode, 400, `${payload}: ${refused.body}`);
    t.equal(refused.json().error_code, 'PCA.00020001');
  }
});

t.test('delete: 204 without revoking, then 404 everywhere; another domain sees nothing', async (t) => {
  const other = harness.auth('ffeeddccbbaa99887766554433221100');
  t.equal((await app.inject({ method: 'GET', url: `/v1/private-certificates/${alpha}`, headers: other })).statusCode, 404);
  t.equal((await app.inject({ method: 'DELETE', url: `/v1/private-certificates/${alpha}`, headers: other })).statusCode, 404);
  t.equal((await app.inject({ method: 'DELETE', url: `/v1/private-certificates/${alpha}`, headers: auth })).statusCode, 204);
  t.equal((await app.inject({ method: 'GET', url: `/v1/private-certificates/${alpha}`, headers: auth })).statusCode, 404);
  t.equal(
    (await app.inject({ method: 'DELETE', url: `/v1/private-certificates/${alpha}`, headers: auth })).json().error_code,
    'PCA.10010002',
  );
  const row = await harness.database.prisma.certificate.findUniqueOrThrow({ where: { id: alpha } });
  t.equal(row.status, 'ISSUED', 'deleting does not revoke; the serial stays');
  t.equal((await list('')).body.total, 2);
  const quota = await app.inject({ method: 'GET', url: '/v1/private-certificates/quotas', headers: auth });
  t.equal(quota.json().quotas.resources[0].used, 2);
});
