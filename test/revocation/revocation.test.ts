/**
 * Revocation over HTTP (§4.2.7, §4.2.9, §4.2.10, §4.4.6, §10.4, §10.5): every refused transition with its code,
 * the public endpoints' edges (URNs, 404s, malformed OCSP), and CRL generation: signed before the revoke returns,
 * the job, CRL numbers under concurrent signers and revokes, expired entries dropping off, DELETED CAs still signing
 * while pending, and a revoke transaction whose statements do not depend on how many revocations exist. openssl
 * judges the OCSP answers.
 */
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { ManualClock } from '../../src/clock.ts';
import { Prisma } from '../../src/db/generated/client.ts';
import { insertRevocationSql, markIssuerCrlStaleSql } from '../../src/services/revocation/revocation-sql.ts';
import { parseCrlSummary } from '../../src/x509/crl.ts';
import { parseOcspRequest } from '../../src/x509/ocsp.ts';
import { createTestApp, OTHER_DOMAIN } from '../helpers/app.ts';
import { openssl, scratch, seedCa } from '../certificates/support.ts';
import { ocspRequestDer, opensslOcsp, type OcspCheck } from '../x509/support.ts';
import { encodingOf, readChildren, readSingle } from '../../src/x509/der-reader.ts';
import { contextConstructed, octetString, sequence } from '../../src/x509/der-writer.ts';

const DAY_MS = 86_400_000;
const clock = new ManualClock();
const harness = await createTestApp({ clock });
const dir = await scratch('revocation');
t.teardown(async () => {
  await harness.close();
  await rm(path.dirname(dir.file('x')), { recursive: true, force: true });
});
const { app } = harness;
const prisma = harness.database.prisma;
const auth = harness.auth();
const { crls } = app.services.revocation;
const CA = '/v1/private-certificate-authorities';

const post = (url: string, payload?: unknown, headers: Record<string, string> = auth) =>
  app.inject({ method: 'POST', url, headers, ...(payload === undefined ? {} : { payload: payload as object }) });
const errorCode = (response: { json(): unknown }) => (response.json() as { error_code: string }).error_code;
/** A time taken down to its second, as a CRL states it. */
const wholeSecond = (time: Date) => Math.floor(time.getTime() / 1000) * 1000;

const root = await seedCa(harness, { commonName: 'rv-root', keyAlgorithm: 'EC256' });
const sub = await seedCa(harness, { commonName: 'rv-sub', keyAlgorithm: 'EC256', parent: root, pathLength: 1 });
const subFile = await dir.write('sub.pem', sub.pem);
const chainFile = await dir.write('chain.pem', `${sub.pem}\n${root.pem}\n`);

async function issue(issuerId = sub.id): Promise<string> {
  const response = await post('/v1/private-certificates', {
    issuer_id: issuerId,
    key_algorithm: 'EC256',
    distinguished_name: { common_name: `leaf-${randomUUID().slice(0, 8)}` },
    validity: { type: 'DAY', value: 30 },
  });
  if (response.statusCode !== 200) throw new Error(`issue: ${response.body}`);
  return (response.json() as { certificate_id: string }).certificate_id;
}

t.test('certificate revoke: refusals with their codes, then REVOKED once', async (t) => {
  const id = await issue();
  const url = `/v1/private-certificates/${id}/revoke`;
  t.equal(errorCode(await post(url)), 'PCA.00020001', 'missing body');
  t.equal(errorCode(await post(url, [])), 'PCA.00020001', 'body not an object');
  t.equal(errorCode(await post(url, { reason: 'BORED' })), 'PCA.00020001', 'unknown reason');
  t.equal(errorCode(await post('/v1/private-certificates/NOT-A-UUID/revoke', {})), 'PCA.10010105', 'bad id');
  const missing = await post(`/v1/private-certificates/${randomUUID()}/revoke`, {});
  t.equal(missing.statusCode, 404);
  t.equal(errorCode(missing), 'PCA.10010002');
  const forbidden = await post(url, {}, { authorization: `Bearer ${harness.tokenWith(['pca:cert:get'])}` });
  t.equal(forbidden.statusCode, 403);
  const otherDomain = await post(url, {}, harness.auth(OTHER_DOMAIN));
  t.equal(otherDomain.statusCode, 404, "another domain's certificate is not found");

  t.equal((await post(url, {})).statusCode, 204, '{} revokes with UNSPECIFIED');
  const shown = await app.inject({ method: 'GET', url: `/v1/private-certificates/${id}`, headers: auth });
  t.equal((shown.json() as { status: string }).status, 'REVOKED');
  const again = await post(url, { reason: 'SUPERSEDED' });
  t.equal(again.statusCode, 400);
  t.equal(errorCode(again), 'PCA.00020001', 'REVOKED cannot be revoked again');

  const row = await prisma.revocation.findFirstOrThrow({ where: { issuerId: sub.id } });
  t.equal(row.reasonCode, 0);
  t.equal(row.revokedAt.getTime(), clock.now().getTime(), 'revoked as of now');
  const audit = await prisma.auditEvent.findFirst({ where: { action: 'pca:cert:revoke', resourceId: id } });
  t.ok(audit, 'audited');
  const ca = await prisma.certificateAuthority.findUniqueOrThrow({ where: { id: sub.id } });
  t.equal(ca.crlStaleSince, null, 'no revocation waits for a CRL');
  const crl = await prisma.crl.findFirstOrThrow({ where: { caId: sub.id }, orderBy: { crlNumber: 'desc' } });
  t.equal(crl.thisUpdate.getTime(), wholeSecond(clock.now()), "the issuer's new CRL was signed before the call returned");
  t.equal(crl.revokedCount, await prisma.revocation.count({ where: { issuerId: sub.id } }), 'and lists every revocation');
});

t.test('certificate revoke needs an unexpired certificate and an issuer that may still revoke', async (t) => {
  const expired = await issue();
  await prisma.certificate.update({ where: { id: expired }, data: { notAfter: new Date(clock.now().getTime() - 1000) } });
  const refused = await post(`/v1/private-certificates/${expired}/revoke`, {});
  t.equal(refused.statusCode, 400);
  t.match(refused.json(), { error_code: 'PCA.00020001', error_msg: /EXPIRED/ });

  const doomed = await seedCa(harness, { commonName: 'rv-doomed', parent: root });
  const leaf = await issue(doomed.id);
  await prisma.certificateAuthority.update({ where: { id: doomed.id }, data: { status: 'DELETED' } });
  const underDeleted = await post(`/v1/private-certificates/${leaf}/revoke`, { reason: 'KEY_COMPROMISE' });
  t.equal(underDeleted.statusCode, 400);
  t.equal(errorCode(underDeleted), 'PCA.00020001');
  const certificate = await prisma.certificate.findUniqueOrThrow({ where: { id: leaf } });
  t.equal(certificate.status, 'ISSUED', 'rolled back: still ISSUED');
  t.equal(await prisma.revocation.count({ where: { issuerId: doomed.id } }), 0, 'and no revocation row');
});

t.test("CA revoke: subordinates only; ACTIVED becomes DISABLED for good; the parent's CRL lists it", async (t) => {
  const rootRevoke = await post(`${CA}/${root.id}/revoke`, {});
  t.equal(rootRevoke.statusCode, 400);
  t.equal(errorCode(rootRevoke), 'PCA.00020202', 'a root gets PCA.00020202');
  t.equal(errorCode(await post(`${CA}/not-a-ca/revoke`, {})), 'PCA.00020201', 'bad CA id');
  t.equal((await post(`${CA}/${randomUUID()}/revoke`, {})).statusCode, 404);
  t.equal(errorCode(await post(`${CA}/${sub.id}/revoke`)), 'PCA.00020001', 'missing body');

  const pending = await seedCa(harness, { commonName: 'rv-pending', parent: root, status: 'PENDING' });
  t.equal(errorCode(await post(`${CA}/${pending.id}/revoke`, {})), 'PCA.00020001', 'PENDING cannot be revoked');

  const victim = await seedCa(harness, { commonName: 'rv-victim', parent: root });
  const urn = `pca:${harness.config.region}:${harness.config.defaultDomainId}:ca:${victim.id}`;
  t.equal((await post(`${CA}/${encodeURIComponent(urn)}/revoke`, { reason: 'CESSATION_OF_OPERATION' })).statusCode, 204, 'by URN');
  const row = await prisma.certificateAuthority.findUniqueOrThrow({ where: { id: victim.id } });
  t.equal(row.status, 'DISABLED');
  const enable = await post(`${CA}/${victim.id}/enable`);
  t.equal(enable.statusCode, 400, 'never enabled again');
  t.equal(errorCode(await post(`${CA}/${victim.id}/revoke`, {})), 'PCA.00020001', 'already revoked');

  const crl = await app.inject({ method: 'GET', url: `/crl/${root.id}.crl` });
  t.equal(crl.statusCode, 200);
  const crlFile = await dir.write('root.crl', crl.rawPayload);
  const text = (await openssl(['crl', '-inform', 'DER', '-in', crlFile, '-noout', '-text'])).stdout;
  t.match(text, new RegExp(`Serial Number: ${row.serialNumber}`, 'i'));
  t.match(text, /Cessation Of Operation/);
});

t.test('CRL and OCSP settings: validation, DELETED refused, crl_dis_point on the CA object', async (t) => {
  const ca = await seedCa(harness, { commonName: 'rv-settings', parent: root });
  const enable = (body?: unknown) => post(`${CA}/${ca.id}/crl/enable`, body);
  const tooLong = { valid_days: 7, crl_name: 'n'.repeat(65) };
  for (const body of [undefined, {}, { valid_days: 6 }, { valid_days: 31 }, { valid_days: '7' }, { valid_days: 7.5 }, tooLong]) {
    t.equal(errorCode(await enable(body)), 'PCA.00020001', `refused: ${JSON.stringify(body)}`);
  }
  // An empty or null name takes the default, as at CA creation (§4.2.10).
  for (const crl_name of ['named', null, '']) {
    t.equal(
      (await enable({ valid_days: 30, obs_bucket_name: 'bucket', crl_name })).statusCode,
      204,
      `crl_name ${JSON.stringify(crl_name)}`,
    );
  }
  let row = await prisma.certificateAuthority.findUniqueOrThrow({ where: { id: ca.id } });
  t.match(row, { crlEnabled: true, crlValidDays: 30, crlName: ca.id, obsBucketName: 'bucket' }, 'crl_name defaults to the CA id');
  const shown = await app.inject({ method: 'GET', url: `${CA}/${ca.id}`, headers: auth });
  t.equal(shown.json().crl_configuration.crl_dis_point, `${harness.config.publicBaseUrl}/crl/${ca.id}.crl`);
  t.equal((await post(`${CA}/${ca.id}/crl/disable`)).statusCode, 204);
  row = await prisma.certificateAuthority.findUniqueOrThrow({ where: { id: ca.id } });
  t.equal(row.crlEnabled, false);

  const ocsp = (body?: unknown) => post(`${CA}/${ca.id}/ocsp/switch`, body);
  for (const body of [undefined, {}, { ocsp_switch: 'true' }, { ocsp_switch: 1 }]) {
    t.equal(errorCode(await ocsp(body)), 'PCA.00020001', `refused: ${JSON.stringify(body)}`);
  }
  t.equal((await ocsp({ ocsp_switch: true })).statusCode, 204);
  t.equal((await prisma.certificateAuthority.findUniqueOrThrow({ where: { id: ca.id } })).ocspEnabled, true);
  t.equal(
    (await post(`${CA}/${ca.id}/crl/enable`, { valid_days: 7 }, { authorization: `Bearer ${harness.tokenWith(['pca:ca:get'])}` }))
      .statusCode,
    403,
  );

  await prisma.certificateAuthority.update({ where: { id: ca.id }, data: { status: 'DELETED' } });
  t.equal(errorCode(await enable({ valid_days: 7 })), 'PCA.00020001', 'crl/enable refused in DELETED');
  t.equal(errorCode(await post(`${CA}/${ca.id}/crl/disable`)), 'PCA.00020001', 'crl/disable refused in DELETED');
  t.equal(errorCode(await ocsp({ ocsp_switch: false })), 'PCA.00020001', 'ocsp/switch refused in DELETED');
});

t.test('public CRL: URNs, 404 JSON for unknown, other-domain and PENDING CAs; §10.5 read', async (t) => {
  const urn = `pca:${harness.config.region}:${harness.config.defaultDomainId}:ca:${sub.id}`;
  const byUrn = await app.inject({ method: 'GET', url: `/crl/${urn}.crl` });
  t.equal(byUrn.statusCode, 200);
  t.equal(byUrn.headers['content-type'], 'application/pkix-crl');
  t.equal(parseCrlSummary(byUrn.rawPayload).revokedCount, 1);
  const foreign = `pca:${harness.config.region}:${OTHER_DOMAIN}:ca:${sub.id}`;
  const pendingRow = await prisma.certificateAuthority.create({
    data: { id: randomUUID(), domainId: harness.config.defaultDomainId, type: 'SUBORDINATE', status: 'PENDING', updatedAt: new Date() },
  });
  for (const url of [`/crl/${randomUUID()}.crl`, `/crl/${foreign}.crl`, `/crl/${sub.id}`, `/crl/${pendingRow.id}.crl`, '/crl/junk.crl']) {
    const response = await app.inject({ method: 'GET', url });
    t.equal(response.statusCode, 404, url);
    t.equal(errorCode(response), 'PCA.10010002');
  }
  const noCertificate = await app.inject({ method: 'GET', url: `${CA}/${pendingRow.id}/crl`, headers: auth });
  t.equal(noCertificate.statusCode, 400, '§10.5: a CA without a certificate');
  const read = await app.inject({ method: 'GET', url: `${CA}/${sub.id}/crl`, headers: auth });
  t.match(read.json(), { revoked_count: 1, crl: /^-----BEGIN X509 CRL-----/ });
});

t.test("§10.5 read: this_update and next_update are the DER's whole seconds, as stored, even signed at a fractional time", async (t) => {
  const ca = await seedCa(harness, { commonName: 'rv-seconds', parent: root });
  t.equal((await post(`${CA}/${ca.id}/crl/enable`, { valid_days: 7 })).statusCode, 204);
  clock.advance(1000 - (clock.now().getTime() % 1000) + 537);
  const signedAt = clock.now();
  t.equal((await post(`/v1/private-certificates/${await issue(ca.id)}/revoke`, {})).statusCode, 204);
  const read = (await app.inject({ method: 'GET', url: `${CA}/${ca.id}/crl`, headers: auth })).json();
  const pem = read.crl.replace(/-----[A-Z0-9 ]+-----|\s/g, '');
  const der = parseCrlSummary(new Uint8Array(Buffer.from(pem, 'base64')));
  t.equal(read.crl_number, Number(der.crlNumber));
  t.equal(read.this_update, der.thisUpdate.getTime(), "this_update is the CRL's");
  t.equal(read.next_update, der.nextUpdate.getTime(), "next_update is the CRL's");
  t.equal(read.this_update, wholeSecond(signedAt), 'signed in the second of the revoke, taken down to it');
  t.equal(read.next_update - read.this_update, 7 * DAY_MS, 'valid_days after it');
  const row = await prisma.crl.findFirstOrThrow({ where: { caId: ca.id }, orderBy: { crlNumber: 'desc' } });
  t.same([row.thisUpdate.getTime(), row.nextUpdate.getTime()], [read.this_update, read.next_update], 'the stored row agrees');
  // The public CRL's max-age counts down to the CRL's own nextUpdate, not past it.
  const served = await app.inject({ method: 'GET', url: `/crl/${ca.id}.crl` });
  t.equal(served.headers['cache-control'], `public, max-age=${Math.floor((der.nextUpdate.getTime() - signedAt.getTime()) / 1000)}`);
  t.equal(served.headers['cache-control'], `public, max-age=${7 * 86_400 - 1}`, 'the 537 ms of the second are already gone');
});

t.test('OCSP edges: malformed requests, unknown serial, unknown CA', async (t) => {
  const malformedRequest = Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x01]);
  for (const payload of [Buffer.from('garbage'), Buffer.alloc(0), Buffer.from([0x30, 0x80])]) {
    const response = await app.inject({
      method: 'POST',
      url: `/ocsp/${sub.id}`,
      headers: { 'content-type': 'application/ocsp-request' },
      payload,
    });
    t.equal(response.statusCode, 200);
    t.equal(response.headers['content-type'], 'application/ocsp-response');
    t.same(response.rawPayload, malformedRequest, 'malformedRequest');
  }
  for (const segment of ['!!!', 'AAAA', 'MAMKAQE%3D']) {
    const response = await app.inject({ method: 'GET', url: `/ocsp/${sub.id}/${segment}` });
    t.equal(response.statusCode, 200, segment);
    t.same(response.rawPayload, malformedRequest);
  }
  const unknownCa = await app.inject({
    method: 'POST',
    url: `/ocsp/${randomUUID()}`,
    headers: { 'content-type': 'application/ocsp-request' },
    payload: Buffer.from('x'),
  });
  t.equal(unknownCa.statusCode, 404);
  t.equal(errorCode(unknownCa), 'PCA.10010002');

  const requestFile = dir.file('unknown-req.der');
  await openssl(['ocsp', '-issuer', subFile, '-serial', '0x1234', '-reqout', requestFile]);
  const response = await app.inject({
    method: 'POST',
    url: `/ocsp/${sub.id}`,
    headers: { 'content-type': 'application/ocsp-request' },
    payload: await dir.read('unknown-req.der'),
  });
  const responseFile = await dir.write('unknown-resp.der', response.rawPayload);
  const result = await openssl(['ocsp', '-respin', responseFile, '-reqin', requestFile, '-issuer', subFile, '-CAfile', chainFile]);
  t.match(result.stdout + result.stderr, /Response verify OK/);
  const status = await opensslOcsp(responseFile, { issuer: subFile, caFile: chainFile, serials: ['0x1234'] });
  t.match(status.stdout, /0x1234: unknown/, 'a serial this CA did not issue is unknown');

  // The root's responder on a CA it issued (a CA row, not a certificate row).
  const rootFile = await dir.write('root.pem', root.pem);
  const subRequestFile = dir.file('sub-req.der');
  await openssl(['ocsp', '-issuer', rootFile, '-cert', subFile, '-reqout', subRequestFile]);
  const subResponse = await app.inject({
    method: 'POST',
    url: `/ocsp/${root.id}`,
    headers: { 'content-type': 'application/ocsp-request' },
    payload: await dir.read('sub-req.der'),
  });
  const subResponseFile = await dir.write('sub-resp.der', subResponse.rawPayload);
  const subStatus = await opensslOcsp(subResponseFile, { issuer: rootFile, caFile: rootFile, certs: [subFile] });
  t.match(subStatus.stdout + subStatus.stderr, /Response verify OK/);
  t.match(subStatus.stdout, /sub\.pem: good/, 'a subordinate CA the root issued is good');
});

t.test('OCSP: a CertID with the right issuer name but another key is unknown, not the revoked status', async (t) => {
  const id = await issue();
  t.equal((await post(`/v1/private-certificates/${id}/revoke`, { reason: 'KEY_COMPROMISE' })).statusCode, 204);
  const shown = await app.inject({ method: 'GET', url: `/v1/private-certificates/${id}`, headers: auth });
  const serial = (shown.json() as { serial_number: string }).serial_number.replace(/:/g, '');
  // An impostor issuer: the subordinate's certificate re-signed by a new key (same name bytes, another key).
  const keyFile = dir.file('impostor.key');
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyFile]);
  const impostorFile = dir.file('impostor.pem');
  await openssl(['x509', '-in', subFile, '-signkey', keyFile, '-out', impostorFile]);

  const ask = async (issuerFile: string, name: string) => {
    const requestFile = dir.file(`${name}-req.der`);
    await openssl(['ocsp', '-issuer', issuerFile, '-serial', `0x${serial}`, '-no_nonce', '-reqout', requestFile]);
    const response = await app.inject({
      method: 'POST',
      url: `/ocsp/${sub.id}`,
      headers: { 'content-type': 'application/ocsp-request' },
      payload: await dir.read(`${name}-req.der`),
    });
    const responseFile = await dir.write(`${name}-resp.der`, response.rawPayload);
    const status = await opensslOcsp(responseFile, { issuer: issuerFile, serials: [`0x${serial}`] });
    return status.stdout;
  };
  t.match(await ask(subFile, 'true-issuer'), /: revoked/, 'asked with the true issuer: revoked');
  t.match(await ask(impostorFile, 'impostor'), /: unknown/, 'asked with the impostor issuer key hash: unknown');
});

t.test('OCSP bounds: 10 CertIDs answered at once, 11 refused; a 32-octet nonce echoed, 33 refused', async (t) => {
  const malformedRequest = Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x01]);
  const send = async (name: string, der: Uint8Array) => {
    const requestFile = await dir.write(`${name}-req.der`, der);
    const response = await app.inject({
      method: 'POST',
      url: `/ocsp/${sub.id}`,
      headers: { 'content-type': 'application/ocsp-request' },
      payload: Buffer.from(der),
    });
    t.equal(response.statusCode, 200, name);
    return { requestFile, responseFile: await dir.write(`${name}-resp.der`, response.rawPayload), body: response.rawPayload };
  };
  const pemOf = async (id: string) =>
    (await post(`/v1/private-certificates/${id}/export`, { is_compressed: 'false', type: 'OTHER' })).json().certificate as string;
  const revokedId = await issue();
  const revokedFile = await dir.write('bounds-revoked.pem', await pemOf(revokedId));
  t.equal((await post(`/v1/private-certificates/${revokedId}/revoke`, { reason: 'KEY_COMPROMISE' })).statusCode, 204);
  const goodFile = await dir.write('bounds-good.pem', await pemOf(await issue()));
  const opensslRequestFile = dir.file('bounds-openssl.der');
  const serials = ['0x1234', '0x99', '0x7fff', '0x10001', '0x2', '0x3', '0x4', '0x5'];
  await openssl([
    'ocsp',
    '-issuer',
    subFile,
    '-cert',
    revokedFile,
    '-cert',
    goodFile,
    ...serials.flatMap((serial) => ['-serial', serial]),
    '-no_nonce',
    '-reqout',
    opensslRequestFile,
  ]);
  const certIds = parseOcspRequest(await dir.read('bounds-openssl.der')).requests.map((request) => request.certId);
  t.equal(certIds.length, 10);

  const ten = await send('bounds-ten', ocspRequestDer(certIds, new Uint8Array(32).fill(0x5a)));
  const judged = await openssl([
    'ocsp',
    '-respin',
    ten.responseFile,
    '-reqin',
    ten.requestFile,
    '-issuer',
    subFile,
    '-CAfile',
    chainFile,
    '-resp_text',
  ]);
  t.match(judged.stdout + judged.stderr, /Response verify OK/, 'the 32-octet nonce is echoed (openssl checks it)');
  const statuses = await opensslOcsp(ten.responseFile, {
    issuer: subFile,
    caFile: chainFile,
    certs: [revokedFile, goodFile],
    serials,
  });
  t.match(statuses.stdout, /bounds-revoked\.pem: revoked[\s\S]*Reason: keyCompromise/);
  t.match(statuses.stdout, /bounds-good\.pem: good/);
  for (const serial of serials) t.match(statuses.stdout, new RegExp(`${serial}: unknown`), `${serial} unknown`);

  t.same((await send('bounds-eleven', ocspRequestDer([...certIds, certIds[0]]))).body, malformedRequest, '11 CertIDs');
  t.same((await send('bounds-800', ocspRequestDer(Array(800).fill(certIds[0])))).body, malformedRequest, '800 CertIDs in 60 KB');
  t.same((await send('bounds-nonce', ocspRequestDer([certIds[0]], new Uint8Array(33)))).body, malformedRequest, 'a 33-octet nonce');
});

t.test('a nonce-less OCSP request is answered from its remembered signature; one padded past 1 KiB is signed anew', async (t) => {
  const certificateFile = await dir.write(
    'reuse.pem',
    (await post(`/v1/private-certificates/${await issue()}/export`, { is_compressed: 'false', type: 'OTHER' })).json().certificate,
  );
  const requestFile = dir.file('reuse-req.der');
  await openssl(['ocsp', '-issuer', subFile, '-cert', certificateFile, '-no_nonce', '-reqout', requestFile]);
  const small = await dir.read('reuse-req.der');
  const [tbsRequest] = readChildren(readSingle(small));
  // The same question with an ignored optionalSignature [0] of 4 KiB: a request the route takes (up to 64 KiB).
  const padded = sequence(encodingOf(tbsRequest!), contextConstructed(0, octetString(new Uint8Array(4096))));
  // Each answer judged by openssl: `expected` is the line it prints for the certificate asked about.
  const ask = async (
    der: Uint8Array,
    expected = /reuse\.pem: good/,
    judgedAs: Pick<OcspCheck, 'certs' | 'serials'> = { certs: [certificateFile] },
  ) => {
    const response = await app.inject({
      method: 'POST',
      url: `/ocsp/${sub.id}`,
      headers: { 'content-type': 'application/ocsp-request' },
      payload: Buffer.from(der),
    });
    t.equal(response.statusCode, 200);
    const responseFile = await dir.write('reuse-resp.der', response.rawPayload);
    const judged = await opensslOcsp(responseFile, { issuer: subFile, caFile: chainFile, ...judgedAs });
    t.match(judged.stdout, expected, `openssl: ${expected}`);
    return response.rawPayload;
  };
  t.same(await ask(small), await ask(small), 'the small request: the same signed bytes again (ECDSA signatures differ each time)');
  t.notSame(await ask(padded), await ask(padded), 'the padded request: signed anew each time, not remembered');

  // Anyone can invent a serial: such a question is answered (unknown) but never remembered, so it takes no place.
  await openssl(['ocsp', '-issuer', subFile, '-serial', '0x7e57ab1e', '-no_nonce', '-reqout', dir.file('made-up-req.der')]);
  const madeUp = await dir.read('made-up-req.der');
  const askMadeUp = () => ask(madeUp, /0x7e57ab1e: unknown/i, { serials: ['0x7e57ab1e'] });
  t.notSame(await askMadeUp(), await askMadeUp(), 'a made-up serial: signed anew each time, not remembered');
});

t.test('crl-refresh job: signs what a revoke could not, re-signs at half validity, drops expired entries', async (t) => {
  const ca = await seedCa(harness, { commonName: 'rv-job', parent: root });
  await post(`${CA}/${ca.id}/crl/enable`, { valid_days: 8 });
  const job = app.jobRunner.job('crl-refresh');
  const run = () => job.run({ now: clock.now(), log: app.log });
  await run();
  const first = await crls.currentCrl(ca.id);
  t.ok(first, 'a CRL-enabled CA gets its first CRL from the job');

  // An entry whose certificate has expired must drop off.
  await prisma.revocation.create({
    data: { issuerId: ca.id, serialNumber: '7f01', revokedAt: clock.now(), reasonCode: 1, notAfter: new Date(clock.now().getTime() - 1) },
  });
  const leaf = await issue(ca.id);
  t.equal((await post(`/v1/private-certificates/${leaf}/revoke`, { reason: 'AFFILIATION_CHANGED' })).statusCode, 204);
  const afterRevoke = await prisma.crl.findFirstOrThrow({ where: { caId: ca.id }, orderBy: { crlNumber: 'desc' } });
  t.equal(afterRevoke.crlNumber, first!.crlNumber + 1n, 'the revoke signed the next CRL');
  t.equal(afterRevoke.revokedCount, 1, 'the expired entry is left out');
  await run();
  t.equal((await crls.currentCrl(ca.id))!.crlNumber, afterRevoke.crlNumber, 'nothing due: not re-signed');

  // A revocation whose signing failed at the end of its request stays marked; the job signs it.
  await prisma.certificateAuthority.update({ where: { id: ca.id }, data: { crlStaleSince: clock.now() } });
  await run();
  t.equal((await crls.currentCrl(ca.id))!.crlNumber, afterRevoke.crlNumber + 1n, 'a waiting revocation: signed');
  t.equal((await prisma.certificateAuthority.findUniqueOrThrow({ where: { id: ca.id } })).crlStaleSince, null, 'stale mark cleared');

  clock.advance(4 * DAY_MS);
  await run();
  t.equal((await crls.currentCrl(ca.id))!.crlNumber, afterRevoke.crlNumber + 2n, 'half of 8 days gone: re-signed');

  await prisma.certificateAuthority.update({
    where: { id: ca.id },
    data: { status: 'DELETED', deleteTime: new Date(clock.now().getTime() + 30 * DAY_MS), crlStaleSince: clock.now() },
  });
  await run();
  t.equal((await crls.currentCrl(ca.id))!.crlNumber, afterRevoke.crlNumber + 3n, 'a DELETED CA pending removal still signs what waits');
  clock.advance(9 * DAY_MS);
  const served = await app.inject({ method: 'GET', url: `/crl/${ca.id}.crl` });
  t.equal(served.statusCode, 200, "a DELETED CA's CRL is still served");
  t.equal(parseCrlSummary(served.rawPayload).crlNumber, afterRevoke.crlNumber + 4n, 'and re-signed when it would lapse');
  const { nextUpdate } = parseCrlSummary(served.rawPayload);
  t.equal(nextUpdate.getTime(), wholeSecond(clock.now()) + 8 * DAY_MS, 'a full validity ahead of the second it was signed in');
  t.equal(
    served.headers['cache-control'],
    `public, max-age=${Math.floor((nextUpdate.getTime() - clock.now().getTime()) / 1000)}`,
    'cached until that nextUpdate',
  );
});

t.test('public CRL: an ETag per CRL number; If-None-Match gets 304 while it is current, the new CRL once revoked', async (t) => {
  const ca = await seedCa(harness, { commonName: 'rv-etag', parent: root });
  const fetchCrl = (ifNoneMatch?: string) =>
    app.inject({ method: 'GET', url: `/crl/${ca.id}.crl`, headers: ifNoneMatch ? { 'if-none-match': ifNoneMatch } : {} });
  const first = await fetchCrl();
  t.equal(first.statusCode, 200);
  const { crlNumber } = parseCrlSummary(first.rawPayload);
  t.equal(first.headers.etag, `"${ca.id}-${crlNumber}"`);
  for (const tag of [first.headers.etag as string, `W/${first.headers.etag}`, `"other", ${first.headers.etag}`, '*']) {
    const again = await fetchCrl(tag);
    t.equal(again.statusCode, 304, `If-None-Match: ${tag}`);
    t.equal(again.rawPayload.length, 0);
    t.equal(again.headers['cache-control'], first.headers['cache-control']);
    t.equal(again.headers.etag, first.headers.etag);
  }
  t.equal((await fetchCrl('"another-crl"')).statusCode, 200, 'another tag: the CRL');
  t.same((await fetchCrl()).rawPayload, first.rawPayload, 'the same bytes while the CRL is current');

  const revoked = await issue(ca.id);
  t.equal((await post(`/v1/private-certificates/${revoked}/revoke`, { reason: 'KEY_COMPROMISE' })).statusCode, 204);
  const after = await fetchCrl(first.headers.etag as string);
  t.equal(after.statusCode, 200, 'the old tag names an old CRL: the new one comes');
  const summary = parseCrlSummary(after.rawPayload);
  t.equal(summary.crlNumber, crlNumber + 1n);
  t.equal(summary.revokedCount, 1, 'with the revocation');
  t.equal(after.headers.etag, `"${ca.id}-${crlNumber + 1n}"`);
});

t.test('CRL numbers stay unique and increasing with concurrent signers and job runs', async (t) => {
  const ca = await seedCa(harness, { commonName: 'rv-concurrent', parent: root });
  const job = app.jobRunner.job('crl-refresh');
  await prisma.certificateAuthority.update({ where: { id: ca.id }, data: { crlStaleSince: clock.now() } });
  const [signed] = await Promise.all([
    Promise.all(Array.from({ length: 5 }, () => crls.signNow(ca.id))),
    Promise.all(Array.from({ length: 5 }, () => job.run({ now: clock.now(), log: app.log }))),
  ]);
  const numbers = signed.map((crl) => crl!.crlNumber);
  t.equal(new Set(numbers).size, 5, `five signers, five numbers: ${numbers.join(', ')}`);
  const latest = await crls.currentCrl(ca.id);
  t.ok(
    numbers.every((n) => n <= latest!.crlNumber),
    'none above the newest',
  );
  t.ok(latest!.crlNumber >= 5n && latest!.crlNumber <= 6n, `consecutive from 1: newest ${latest!.crlNumber}`);
});

t.test('concurrent revokes: each returns with its serial on the newest CRL', async (t) => {
  const ca = await seedCa(harness, { commonName: 'rv-burst', parent: root });
  const leaves = await Promise.all(Array.from({ length: 8 }, () => issue(ca.id)));
  const results = await Promise.all(
    leaves.map(async (id) => {
      const response = await post(`/v1/private-certificates/${id}/revoke`, { reason: 'SUPERSEDED' });
      const newest = await prisma.crl.findFirstOrThrow({ where: { caId: ca.id }, orderBy: { crlNumber: 'desc' } });
      return { id, status: response.statusCode, der: newest.der, crlNumber: newest.crlNumber };
    }),
  );
  for (const result of results) {
    t.equal(result.status, 204);
    const { serialNumber } = await prisma.certificate.findUniqueOrThrow({ where: { id: result.id } });
    const file = await dir.write(`burst-${result.id}.crl`, result.der);
    const text = (await openssl(['crl', '-inform', 'DER', '-in', file, '-noout', '-text'])).stdout;
    t.match(text, new RegExp(`Serial Number: ${serialNumber}`, 'i'), `CRL ${result.crlNumber}, read once the revoke returned, lists it`);
  }
});

t.test('with 100,000 revocations present the revoke transaction is keyed statements (no scan); its CRL holds them all', async (t) => {
  const ca = await seedCa(harness, { commonName: 'rv-big', parent: root });
  const leaf = await issue(ca.id);
  await prisma.$executeRaw`
    INSERT INTO revocations (issuer_id, serial_number, revoked_at, reason_code, not_after)
    SELECT ${ca.id}::uuid, md5(i::text), now(), 1, now() + interval '1 year' FROM generate_series(1, 100000) AS i`;
  await prisma.$executeRaw`ANALYZE revocations`;
  t.equal((await post(`/v1/private-certificates/${leaf}/revoke`, {})).statusCode, 204);
  const newest = await prisma.crl.findFirstOrThrow({ where: { caId: ca.id }, orderBy: { crlNumber: 'desc' } });
  t.equal(newest.revokedCount, 100_001, 'the CRL signed before the revoke returned holds them all');

  // With sequential scans priced out, a plan still scans only when no index can serve the statement's keys.
  const planOf = (statement: Prisma.Sql) =>
    prisma.$transaction(async (tx) => {
      await tx.$executeRaw`SET LOCAL enable_seqscan = off`;
      const rows = await tx.$queryRaw<{ 'QUERY PLAN': string }[]>(Prisma.sql`EXPLAIN ${statement}`);
      return rows.map((row) => row['QUERY PLAN']).join('\n');
    });
  const insertPlan = await planOf(
    insertRevocationSql({ issuerId: ca.id, serialNumber: 'abcd', revokedAt: clock.now(), reasonCode: 1, notAfter: clock.now() }),
  );
  t.match(insertPlan, /Conflict Arbiter Indexes: \S*revocations\S*/, `the duplicate check is the unique index:\n${insertPlan}`);
  t.notMatch(insertPlan, /Seq Scan/, insertPlan);
  const stalePlan = await planOf(markIssuerCrlStaleSql(ca.id, clock.now()));
  t.match(stalePlan, /Index Scan using certificate_authorities_pkey/, `the CA row by its key:\n${stalePlan}`);
  t.notMatch(stalePlan, /Seq Scan/, stalePlan);
});
