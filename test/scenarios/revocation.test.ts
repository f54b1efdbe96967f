/**
 * Scenario 3 (revocation is seen by relying parties), end to end against a started server: CRL and OCSP switched
 * on over the API, certificates issued over the API, one revoked; the CRL fetched from the distribution point
 * written in the certificate and the OCSP responder named in it, both judged by openssl.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { createTestApp } from '../helpers/app.ts';
import { openssl, scratch, seedCa } from '../certificates/support.ts';
import { opensslOcsp } from '../x509/support.ts';

const harness = await createTestApp();
const dir = await scratch('revocation-scenario');
t.teardown(async () => {
  await harness.close();
  await rm(path.dirname(dir.file('x')), { recursive: true, force: true });
});
const base = await harness.app.listen({ host: '127.0.0.1', port: 0 });
const auth = { ...harness.auth(), 'content-type': 'application/json' };

async function call(method: string, url: string, body?: unknown) {
  return fetch(`${base}${url}`, { method, headers: auth, body: body === undefined ? undefined : JSON.stringify(body) });
}

/** A URL written into a certificate (the configured public base) pointed at the started server. */
const onServer = (url: string) => url.replace(harness.config.publicBaseUrl, base);

const root = await seedCa(harness, { commonName: 'asm', keyAlgorithm: 'RSA2048' });
const sub = await seedCa(harness, { commonName: 'asm-subordinate-ca', keyAlgorithm: 'EC256', parent: root, pathLength: 1 });
const rootFile = await dir.write('root.pem', root.pem);
const subFile = await dir.write('sub.pem', sub.pem);
const chainFile = await dir.write('chain.pem', `${sub.pem}\n${root.pem}\n`);

async function issue(commonName: string): Promise<{ id: string; file: string }> {
  const created = await call('POST', '/v1/private-certificates', {
    issuer_id: sub.id,
    key_algorithm: 'EC256',
    signature_algorithm: 'SHA256',
    distinguished_name: { common_name: commonName, organization: 'huawei-cloud', country: 'CN' },
    subject_alternative_names: [{ type: 'DNS', value: 'cert-test.com' }],
    validity: { type: 'DAY', value: 300 },
  });
  if (created.status !== 200) throw new Error(`issue ${commonName}: ${await created.text()}`);
  const { certificate_id: id } = (await created.json()) as { certificate_id: string };
  const exported = await call('POST', `/v1/private-certificates/${id}/export`, { is_compressed: 'false', type: 'OTHER' });
  if (exported.status !== 200) throw new Error(`export ${commonName}: ${await exported.text()}`);
  const { certificate } = (await exported.json()) as { certificate: string };
  return { id, file: await dir.write(`${commonName}.pem`, certificate) };
}

let revoked: { id: string; file: string };
let kept: { id: string; file: string };

t.test('step 0: CRL (valid_days 7) and OCSP switched on; certificates issued from then on', async (t) => {
  t.equal((await call('POST', `/v1/private-certificate-authorities/${sub.id}/crl/enable`, { valid_days: 7 })).status, 204);
  t.equal((await call('POST', `/v1/private-certificate-authorities/${sub.id}/ocsp/switch`, { ocsp_switch: true })).status, 204);
  revoked = await issue('ingress-server-crt');
  kept = await issue('still-good');
});

async function urlsIn(certificateFile: string): Promise<{ crl: string; ocsp: string }> {
  const text = (await openssl(['x509', '-in', certificateFile, '-noout', '-ext', 'crlDistributionPoints,authorityInfoAccess'])).stdout;
  const crl = text.match(/URI:(\S+\.crl)/)?.[1];
  const ocsp = text.match(/OCSP - URI:(\S+)/)?.[1];
  if (!crl || !ocsp) throw new Error(`certificate lacks CDP or OCSP URL:\n${text}`);
  return { crl, ocsp };
}

t.test('steps 1-2: revoked with KEY_COMPROMISE; the CRL at the distribution point lists it', async (t) => {
  const urls = await urlsIn(revoked.file);
  t.equal(urls.crl, `${harness.config.publicBaseUrl}/crl/${sub.id}.crl`);
  t.equal((await call('POST', `/v1/private-certificates/${revoked.id}/revoke`, { reason: 'KEY_COMPROMISE' })).status, 204);

  const response = await fetch(onServer(urls.crl));
  t.equal(response.status, 200);
  t.equal(response.headers.get('content-type'), 'application/pkix-crl');
  const maxAge = Number(response.headers.get('cache-control')?.match(/^public, max-age=(\d+)$/)?.[1]);
  t.ok(maxAge > 7 * 86_400 - 120 && maxAge <= 7 * 86_400, `max-age until nextUpdate (7 days): ${maxAge}`);
  const crlDer = await dir.write('sub.crl', new Uint8Array(await response.arrayBuffer()));

  const verified = await openssl(['crl', '-inform', 'DER', '-in', crlDer, '-CAfile', chainFile, '-noout', '-verify']);
  t.match(verified.stderr + verified.stdout, /verify OK/, 'openssl crl -verify: signed by the subordinate');
  const text = (await openssl(['crl', '-inform', 'DER', '-in', crlDer, '-noout', '-text'])).stdout;
  const serial = (await openssl(['x509', '-in', revoked.file, '-noout', '-serial'])).stdout.trim().split('=')[1];
  t.match(text, new RegExp(`Serial Number: ${serial}`, 'i'), 'the revoked serial is listed');
  t.match(text, /Key Compromise/, 'with its reason');
  t.match(text, /X509v3 CRL Number/);

  const crlPem = dir.file('sub-crl.pem');
  await openssl(['crl', '-inform', 'DER', '-in', crlDer, '-out', crlPem]);
  const check = (leaf: string) => openssl(['verify', '-crl_check', '-CAfile', rootFile, '-untrusted', subFile, '-CRLfile', crlPem, leaf]);
  const refused = await check(revoked.file);
  t.notOk(refused.ok, 'the revoked certificate fails verification');
  t.match(refused.stdout + refused.stderr, /certificate revoked/);
  const accepted = await check(kept.file);
  t.ok(accepted.ok, `the other one verifies: ${accepted.stdout}${accepted.stderr}`);
  t.match(accepted.stdout, /OK/);
});

t.test('step 3: the OCSP responder named in the certificate answers revoked and good, signature verified', async (t) => {
  const urls = await urlsIn(revoked.file);
  t.equal(urls.ocsp, `${harness.config.publicBaseUrl}/ocsp/${sub.id}`);
  const result = await openssl([
    'ocsp',
    '-issuer',
    subFile,
    '-CAfile',
    chainFile,
    '-cert',
    revoked.file,
    '-cert',
    kept.file,
    '-url',
    onServer(urls.ocsp),
  ]);
  const output = result.stdout + result.stderr;
  t.ok(result.ok, output);
  t.match(output, /Response verify OK/);
  t.match(output, new RegExp(`${revoked.file}: revoked`));
  t.match(output, /Reason: keyCompromise/);
  t.match(output, new RegExp(`${kept.file}: good`));
});

t.test('step 3, GET form (RFC 6960 A.1): base64 request in the path', async (t) => {
  const requestFile = dir.file('get-req.der');
  await openssl(['ocsp', '-issuer', subFile, '-cert', revoked.file, '-reqout', requestFile]);
  const encoded = encodeURIComponent((await dir.read('get-req.der')).toString('base64'));
  const response = await fetch(`${base}/ocsp/${sub.id}/${encoded}`);
  t.equal(response.status, 200);
  t.equal(response.headers.get('content-type'), 'application/ocsp-response');
  const responseFile = await dir.write('get-resp.der', new Uint8Array(await response.arrayBuffer()));
  const echoed = await openssl(['ocsp', '-respin', responseFile, '-reqin', requestFile, '-issuer', subFile, '-CAfile', chainFile]);
  t.match(echoed.stdout + echoed.stderr, /Response verify OK/, "signature verified, the request's nonce echoed");
  const status = await opensslOcsp(responseFile, { issuer: subFile, caFile: chainFile, certs: [revoked.file] });
  t.match(status.stdout, /: revoked/);
});

t.test('the authenticated CRL read reports the same CRL', async (t) => {
  const response = await call('GET', `/v1/private-certificate-authorities/${sub.id}/crl`);
  t.equal(response.status, 200);
  const body = (await response.json()) as {
    crl: string;
    crl_number: number;
    this_update: number;
    next_update: number;
    revoked_count: number;
  };
  t.equal(body.revoked_count, 1);
  t.ok(body.crl_number >= 1);
  t.equal(body.next_update - body.this_update, 7 * 86_400_000);
  t.match(body.crl, /^-----BEGIN X509 CRL-----\r\n[\s\S]+-----END X509 CRL-----$/);
  const file = await dir.write('read.pem', body.crl);
  const verified = await openssl(['crl', '-in', file, '-CAfile', chainFile, '-noout', '-verify']);
  t.match(verified.stderr + verified.stdout, /verify OK/);
});
