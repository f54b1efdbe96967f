/**
 * The CA certificates as openssl sees them: every key algorithm and hash verifies with -x509_strict against the
 * exported chain; extensions (basic constraints, key usage, SKI/AKI, CDP and AIA only while switched on); and the
 * CSR export -> external signing -> import flow with an openssl-made parent, including its refusals.
 */
import { readFile } from 'node:fs/promises';
import t, { type Test } from 'tap';
import { createTestApp } from '../helpers/app.ts';
import { openssl, runOpenssl } from '../x509/fixtures/openssl-pki.ts';
import { caRequestArgs } from '../certificates/support.ts';
import { CA, DN, assertError, client, issueLeaf, opensslDir, opensslText, verifyWithChain, type Json } from './support.ts';

const harness = await createTestApp();
t.teardown(() => harness.close());
const api = client(harness);
const { call } = api;
const base = harness.config.publicBaseUrl;

const exportOf = async (id: string): Promise<Json> => (await call('POST', `${CA}/${id}/export`)).body;

t.test('every key algorithm and hash: each CA certificate verifies against its exported chain', async (t) => {
  // One hierarchy holds each algorithm once (RSA3072/4096 key generation is slow).
  const steps = [
    { key_algorithm: 'RSA3072', signature_algorithm: 'SHA384', path_length: 5 },
    { key_algorithm: 'EC521', signature_algorithm: 'SHA512', path_length: 4 },
    { key_algorithm: 'EC384', signature_algorithm: 'SHA384', path_length: 3 },
    { key_algorithm: 'RSA2048', signature_algorithm: 'SHA256', path_length: 2 },
    { key_algorithm: 'EC256', signature_algorithm: 'SHA256', path_length: 1 },
  ];
  const root = await api.root({ key_algorithm: 'RSA4096', signature_algorithm: 'SHA512', validity: { type: 'YEAR', value: 10 } });
  const ids = [root];
  for (const [index, step] of steps.entries()) {
    ids.push(
      await api.subordinate(ids[ids.length - 1], {
        ...step,
        distinguished_name: { ...DN, common_name: `level-${index + 1}` },
        validity: { type: 'YEAR', value: 5 - index },
      }),
    );
  }
  const ecRoot = await api.root({ key_algorithm: 'EC521', signature_algorithm: 'SHA384' });
  for (const id of [...ids, ecRoot]) {
    const ca = await api.show(id);
    const exported = await exportOf(id);
    await verifyWithChain(
      t,
      exported.certificate,
      exported.certificate_chain,
      `${ca.key_algorithm}/${ca.signature_algorithm} ${ca.distinguished_name.common_name}`,
    );
  }
  // CI runs this file a second time with KEY_STORE=pkcs11: every key then lives on the SoftHSM2 token.
  const stores = await harness.database.prisma.certificateAuthority.findMany({
    where: { id: { in: [...ids, ecRoot] } },
    select: { keyStore: true },
  });
  t.same(
    [...new Set(stores.map((row) => row.keyStore))],
    [harness.config.keyStore.defaultKind],
    `keys held by the ${harness.config.keyStore.defaultKind} store`,
  );
  const chain = (await exportOf(ids[ids.length - 1])).certificate_chain;
  t.equal(chain.match(/BEGIN CERTIFICATE/g).length, 5, 'the deepest chain runs through four parents to the root');
  const text = await opensslText(t, (await exportOf(ids[1])).certificate);
  t.match(text, /Public-Key: \(3072 bit\)/);
  t.match(text, /sha384WithRSAEncryption/, 'signed by the RSA4096 root with the requested SHA384');
});

t.test('a lower-case country is written upper case, in the certificate and the record (ISO 3166-1 alpha-2)', async (t) => {
  const root = await api.root({ distinguished_name: { ...DN, common_name: 'country-root', country: 'de' } });
  t.equal((await api.show(root)).distinguished_name.country, 'DE', 'the record');
  t.match(await opensslText(t, (await exportOf(root)).certificate), /Subject: C ?= ?DE,/, 'the certificate, as openssl reads it');
});

t.test('extensions: root has no URLs; subordinates carry AKI, caIssuers always, CDP and OCSP while enabled', async (t) => {
  const root = await api.root({ distinguished_name: { ...DN, common_name: 'ext-root' } });
  const rootText = await opensslText(t, (await exportOf(root)).certificate);
  t.match(rootText, /X509v3 Basic Constraints: critical\s+CA:TRUE\s/);
  t.notMatch(rootText, /pathlen/);
  t.match(rootText, /X509v3 Key Usage: critical\s+Digital Signature, Certificate Sign, CRL Sign/);
  t.match(rootText, /Subject Key Identifier/);
  t.notMatch(rootText, /Authority Information Access|CRL Distribution Points/);
  t.match(
    rootText,
    /Subject: C\s*=\s*CN, ST\s*=\s*zhejiang, L\s*=\s*hangzhou, O\s*=\s*huawei-cloud, OU\s*=\s*container, CN\s*=\s*ext-root/,
    'DN in order, one attribute per RDN',
  );

  const plain = await api.subordinate(root, { path_length: 2 });
  const plainText = await opensslText(t, (await exportOf(plain)).certificate);
  t.match(plainText, /CA:TRUE, pathlen:2/);
  t.match(plainText, new RegExp(`CA Issuers - URI:${base}/ca/${root}\\.crt`));
  t.notMatch(plainText, /OCSP - URI|CRL Distribution Points/);
  t.match(plainText, /Authority Key Identifier/);

  await harness.database.prisma.certificateAuthority.update({
    where: { id: root },
    data: { crlEnabled: true, crlValidDays: 7, ocspEnabled: true },
  });
  const withUrls = await api.subordinate(root, { key_usages: ['digitalSignature'] });
  const text = await opensslText(t, (await exportOf(withUrls)).certificate);
  t.match(text, new RegExp(`URI:${base}/crl/${root}\\.crl`));
  t.match(text, new RegExp(`OCSP - URI:${base}/ocsp/${root}`));
  t.match(text, /Certificate Sign, CRL Sign/, 'keyCertSign and cRLSign are kept on a CA whatever key_usages says');
});

/** An openssl root (pathlen 1) that signs our CSRs the way an external CA would. */
async function externalRoot(t: Test, name: string) {
  const files = await opensslDir(t);
  const key = `${files.dir}/${name}.key`;
  const cert = `${files.dir}/${name}.pem`;
  await openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '3650',
    ...caRequestArgs(name, 'subjectKeyIdentifier=hash'),
  ]);
  /** `keyIdentifier` 'none' leaves the subject key identifier out, as some third-party CAs do. */
  async function sign(csrPem: string, extensions: string, keyIdentifier: 'hash' | 'none' = 'hash'): Promise<string> {
    const csr = await files.write(`${name}-req-${Math.random()}.pem`, csrPem);
    const ext = await files.write(
      `${name}-ext-${Math.random()}.cnf`,
      `${extensions}\nsubjectKeyIdentifier=${keyIdentifier}\nauthorityKeyIdentifier=keyid\n`,
    );
    const out = `${csr}.crt`;
    await openssl([
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      cert,
      '-CAkey',
      key,
      '-CAcreateserial',
      '-days',
      '365',
      '-sha256',
      '-extfile',
      ext,
      '-out',
      out,
    ]);
    return readFile(out, 'utf8');
  }
  return { certPem: await readFile(cert, 'utf8'), sign, files };
}

const CA_EXTENSIONS = 'basicConstraints=critical,CA:TRUE,pathlen:1\nkeyUsage=critical,digitalSignature,keyCertSign,cRLSign';

const { pendingSubordinate } = api;

t.test('import: an externally signed certificate activates the CA; it issues; its chain is the one given', async (t) => {
  const parent = await externalRoot(t, 'external-root');
  const { id, csr } = await pendingSubordinate('imported');
  const certificate = await parent.sign(csr, CA_EXTENSIONS);
  const imported = await call('POST', `${CA}/${id}/import`, {
    certificate: certificate.replace(/\n/g, '\r\n'),
    certificate_chain: parent.certPem,
  });
  t.equal(imported.status, 204, JSON.stringify(imported.body));
  const ca = await api.show(id);
  t.match(ca, { status: 'ACTIVED', gen_mode: 'IMPORT', issuer_id: null, issuer_name: null, path_length: 1 });
  const serial = (await openssl(['x509', '-noout', '-serial', '-in', await parent.files.write('imported.pem', certificate)]))
    .trim()
    .split('=')[1];
  t.equal(ca.serial_number, serial.toLowerCase().replace(/^0+/, '').padStart(ca.serial_number.length, '0'));
  const exported = await exportOf(id);
  t.equal(exported.certificate_chain.replace(/\r\n/g, '\n').trim(), parent.certPem.trim());
  await verifyWithChain(t, exported.certificate, exported.certificate_chain, 'imported CA');

  const child = await api.subordinate(id, { validity: { type: 'DAY', value: 30 } });
  const childExport = await exportOf(child);
  t.equal(childExport.certificate_chain.match(/BEGIN CERTIFICATE/g).length, 2, 'child chain: imported CA, then the external root');
  await verifyWithChain(t, childExport.certificate, childExport.certificate_chain, 'child of the imported CA');
});

t.test('import looks the CA up before reading a hostile 2 MiB chain', async (t) => {
  const flood = '-----BEGIN CERTIFICATE-----\n'.repeat(74_898);
  const body = { certificate: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----', certificate_chain: flood };
  assertError(t, await call('POST', `${CA}/8d7a0a1e-5b7b-4f57-9a57-4d1f7a9b7c11/import`, body), 404, 'PCA.10010002');
  assertError(t, await call('POST', `${CA}/${await api.root()}/import`, body), 400, 'PCA.00020001', /PENDING/);
  const { id } = await pendingSubordinate('flooded');
  const before = process.cpuUsage();
  assertError(
    t,
    await call('POST', `${CA}/${id}/import`, body),
    400,
    'PCA.00020001',
    /certificate_chain contains a PEM block without a matching END/,
  );
  const { user, system } = process.cpuUsage(before);
  t.ok(user + system < 2_000_000, `the flood cost ${((user + system) / 1000).toFixed(0)} ms of CPU (7.7 s for 578 KB before)`);
});

t.test('import without a chain: accepted, exported chain is empty', async (t) => {
  const parent = await externalRoot(t, 'chainless-root');
  const { id, csr } = await pendingSubordinate('chainless');
  t.equal((await call('POST', `${CA}/${id}/import`, { certificate: await parent.sign(csr, CA_EXTENSIONS) })).status, 204);
  t.equal((await exportOf(id)).certificate_chain, '');
});

t.test('import refusals: another key, not a CA, a chain that does not sign it, garbage', async (t) => {
  const parent = await externalRoot(t, 'refusing-root');
  const stranger = await externalRoot(t, 'stranger-root');
  // The parent's name on another key: the names match, the signature does not.
  const impostor = await externalRoot(t, 'refusing-root');
  const { id, csr } = await pendingSubordinate('refused');
  const other = await pendingSubordinate('other-key');
  // §4.2.5's message for a certificate that is not this CA's; a chain's faults are named each with its own.
  const message = /certificate must be issued from the CSR exported from this CA/;
  const cases: [string, Json, RegExp][] = [
    [
      'a certificate for another key',
      { certificate: await parent.sign(other.csr, CA_EXTENSIONS), certificate_chain: parent.certPem },
      message,
    ],
    [
      'not a CA certificate',
      {
        certificate: await parent.sign(csr, 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature'),
        certificate_chain: parent.certPem,
      },
      message,
    ],
    [
      'a chain of another CA',
      { certificate: await parent.sign(csr, CA_EXTENSIONS), certificate_chain: stranger.certPem },
      /certificate_chain\[0\]'s subject is not the issuer the certificate names/,
    ],
    [
      'a chain that did not sign it',
      { certificate: await parent.sign(csr, CA_EXTENSIONS), certificate_chain: impostor.certPem },
      /the certificate's signature does not verify with the key of certificate_chain\[0\]/,
    ],
  ];
  for (const [label, body, expected] of cases) {
    await t.test(label, async (t) => assertError(t, await call('POST', `${CA}/${id}/import`, body), 400, 'PCA.00020001', expected));
  }
  assertError(
    t,
    await call('POST', `${CA}/${id}/import`, { certificate: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----' }),
    400,
    'PCA.00020001',
  );
  const chainOf = (count: number) => Array(count).fill(parent.certPem.trim()).join('\n');
  assertError(
    t,
    await call('POST', `${CA}/${id}/import`, { certificate: await parent.sign(csr, CA_EXTENSIONS), certificate_chain: chainOf(9) }),
    400,
    'PCA.00020001',
    /more than 8 PEM blocks/,
  );
  assertError(t, await call('POST', `${CA}/${id}/import`, {}), 400, 'PCA.00020001', /certificate/);
  t.equal((await api.show(id)).status, 'PENDING', 'still PENDING after every refusal');
  const root = await api.root();
  assertError(t, await call('GET', `${CA}/${root}/csr`), 400, 'PCA.00020001');
});

t.test('import refuses a CA certificate that cannot sign certificates and CRLs (RFC 5280 §4.2.1.3): nothing changes', async (t) => {
  const parent = await externalRoot(t, 'usage-root');
  const { id, csr } = await pendingSubordinate('usage');
  const constraints = 'basicConstraints=critical,CA:TRUE,pathlen:1';
  const cases: [string, string][] = [
    ['keyUsage without keyCertSign', `${constraints}\nkeyUsage=critical,digitalSignature`],
    ['keyUsage without keyCertSign, with cRLSign', `${constraints}\nkeyUsage=critical,digitalSignature,cRLSign`],
    ['no keyUsage extension', constraints],
    ['keyCertSign without cRLSign', `${constraints}\nkeyUsage=critical,keyCertSign`],
  ];
  for (const [label, extensions] of cases) {
    await t.test(label, async (t) =>
      assertError(
        t,
        await call('POST', `${CA}/${id}/import`, { certificate: await parent.sign(csr, extensions), certificate_chain: parent.certPem }),
        400,
        'PCA.00020001',
        /certificate's key usage must include keyCertSign and cRLSign/,
      ),
    );
  }
  const { prisma } = harness.database;
  const billed = () => prisma.caUsagePeriod.count({ where: { caId: id } });
  t.match(await api.show(id), { status: 'PENDING', serial_number: null }, 'still PENDING, no certificate recorded');
  t.equal(await billed(), 0, 'not billed');
  // The same CSR signed with both bits imports and is billed: the checks above could have seen otherwise.
  const accepted = await call('POST', `${CA}/${id}/import`, {
    certificate: await parent.sign(csr, CA_EXTENSIONS),
    certificate_chain: parent.certPem,
  });
  t.equal(accepted.status, 204, JSON.stringify(accepted.body));
  t.equal(await billed(), 1, 'billed once imported');
});

t.test('import of a CA certificate without a subject key identifier: it issues, naming its key as its CRL does', async (t) => {
  const parent = await externalRoot(t, 'skiless-root');
  const { id, csr } = await pendingSubordinate('skiless');
  const certificate = await parent.sign(csr, CA_EXTENSIONS, 'none');
  t.notMatch(await opensslText(t, certificate), /Subject Key Identifier/, 'the certificate carries no SKI');
  const imported = await call('POST', `${CA}/${id}/import`, { certificate, certificate_chain: parent.certPem });
  t.equal(imported.status, 204, `imported: ${JSON.stringify(imported.body)}`);

  const leaf = await issueLeaf(t, api, id, 'a leaf is issued under it');
  // api.subordinate throws unless the create answers 200.
  t.ok(await api.subordinate(id, { validity: { type: 'DAY', value: 30 } }), 'a subordinate is created under it');

  const { files } = parent;
  const importedFile = await files.write('skiless.pem', certificate);
  const leafFile = await files.write('skiless-leaf.pem', `${leaf}\n`);
  const chain = ['-CAfile', await files.write('skiless-root.pem', parent.certPem), '-untrusted', importedFile, leafFile];
  const verified = await runOpenssl(['verify', ...chain]);
  t.equal(verified.code, 0, `leaf -> imported CA -> external root: ${verified.output.trim()}`);
  // Strict verifiers refuse the imported certificate itself (RFC 5280 §4.2.1.2), whatever its children say.
  const strict = await runOpenssl(['verify', '-x509_strict', ...chain]);
  t.match(strict.output, /error \d+ at 1 depth lookup: Missing Subject Key Identifier/i, strict.output.trim());

  const crl = await call('GET', `${CA}/${id}/crl`);
  t.equal(crl.status, 200, `the CA has a CRL: ${crl.body.error_msg ?? 'yes'}`);
  const crlFile = await files.write('skiless.crl', crl.body.crl);
  const crlCheck = await runOpenssl(['crl', '-in', crlFile, '-CAfile', importedFile, '-noout']);
  t.match(crlCheck.output, /verify OK/, 'the CRL verifies under the imported certificate');
  const keyIdOf = (text: string, extension: string) => text.match(new RegExp(`${extension}:\\s*(?:keyid:)?([0-9A-F:]+)`))?.[1];
  const leafAki = keyIdOf(await opensslText(t, leaf), 'Authority Key Identifier');
  const crlAki = keyIdOf((await openssl(['crl', '-in', crlFile, '-noout', '-text'])).trim(), 'Authority Key Identifier');
  // openssl's subjectKeyIdentifier=hash is RFC 5280 method 1 too: the same key signed again shows the expected id.
  const methodOne = keyIdOf(await opensslText(t, await parent.sign(csr, CA_EXTENSIONS)), 'Subject Key Identifier');
  t.ok(leafAki, 'the leaf names its issuer key');
  t.equal(leafAki, crlAki, "the leaf's AKI is the CRL's");
  t.equal(leafAki, methodOne, 'both are the key identifier of RFC 5280 method 1');
});
