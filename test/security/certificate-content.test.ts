/**
 * What a certificate may say (issue #13, items 5–8): a CSR never mints a delegated OCSP responder or an
 * any-purpose certificate without a grant, a CA:FALSE certificate never carries CA key usages, a CSR subject obeys
 * the JSON path's rules (and the API reports what the certificate says), and a customized extension is bounded and
 * never masquerades as an extension whose syntax is known. openssl judges the certificates and the OCSP responses.
 */
import t from 'tap';
import { createTestApp } from '../helpers/app.ts';
import { CA, DN, assertError, client, type Json } from '../ca/support.ts';
import { KEY_ARGS, certificateText, openssl, opensslCsr, scratch } from '../certificates/support.ts';
import { generateTestKey } from '../x509/support.ts';
import { buildCsr } from '../../src/x509/csr.ts';
import { toPem } from '../../src/x509/pem.ts';
import { contextConstructed, objectIdentifier, sequence, set, smallInteger, utf8String } from '../../src/x509/der-writer.ts';
import { signStructure } from '../../src/x509/public-key.ts';

const harness = await createTestApp();
t.teardown(() => harness.close());
const api = client(harness);
const dir = await scratch('certificate-content');
const CERT = '/v1/private-certificates';
const validity = { type: 'DAY', value: 30 };

const rootId = await api.root();
const issuerId = await api.subordinate(rootId, { path_length: 2 });
const rootPem = (await api.call('POST', `${CA}/${rootId}/export`)).body.certificate as string;
const issuerPem = (await api.call('POST', `${CA}/${issuerId}/export`)).body.certificate as string;

async function byCsr(issuer: string, name: string, reqArgs: string[], overrides: Json = {}) {
  const { csr, keyFile } = await opensslCsr(dir, name, [...KEY_ARGS.p256], reqArgs);
  return { ...(await api.call('POST', `${CERT}/csr`, { issuer_id: issuer, csr, validity, ...overrides })), keyFile };
}

async function certificatePem(id: string): Promise<string> {
  const exported = await api.call('POST', `${CERT}/${id}/export`, { is_compressed: 'false', type: 'OTHER' });
  if (exported.status !== 200) throw new Error(`export: ${JSON.stringify(exported.body)}`);
  return exported.body.certificate as string;
}

/**
 * An OCSP response saying `good` for `serialHex` under the CA `caPem`, signed by `responderPem` with its key (openssl
 * as the forger), then judged by `openssl ocsp` against the root: ok when openssl accepts it as a good answer.
 */
async function forgedGood(
  tag: string,
  caPem: string,
  responderPem: string,
  responderKey: string,
  serialHex: string,
): Promise<{ ok: boolean; output: string }> {
  const caFile = await dir.write(`${tag}-ca.pem`, caPem);
  const rootFile = await dir.write(`${tag}-root.pem`, rootPem);
  const responderFile = await dir.write(`${tag}-responder.pem`, responderPem);
  const index = await dir.write(`${tag}-index.txt`, `V\t491231235959Z\t\t${serialHex.toUpperCase()}\tunknown\t/CN=victim\n`);
  const request = dir.file(`${tag}-req.der`);
  const made = await openssl(['ocsp', '-issuer', caFile, '-serial', `0x${serialHex}`, '-no_nonce', '-reqout', request]);
  if (!made.ok) throw new Error(made.stderr);
  const response = dir.file(`${tag}-resp.der`);
  const signed = await openssl([
    'ocsp',
    '-index',
    index,
    '-rsigner',
    responderFile,
    '-rkey',
    responderKey,
    '-CA',
    caFile,
    '-reqin',
    request,
    '-respout',
    response,
  ]);
  if (!signed.ok) throw new Error(signed.stderr);
  const judged = await openssl([
    'ocsp',
    '-respin',
    response,
    '-issuer',
    caFile,
    '-CAfile',
    rootFile,
    '-verify_other',
    caFile,
    '-no_nonce',
    '-serial',
    `0x${serialHex}`,
  ]);
  const output = judged.stdout + judged.stderr;
  return { ok: judged.ok && /Response verify OK/.test(output) && /: good/.test(output), output };
}

t.test('item 5: a CSR cannot mint an OCSP responder, an any-purpose or an unlisted-EKU certificate without a grant', async (t) => {
  // The victim: a certificate revoked by its owner, which a forged responder would call good again.
  const victim = await byCsr(issuerId, 'victim', ['-subj', '/CN=victim.example.com']);
  t.equal(victim.status, 200, JSON.stringify(victim.body));
  t.equal((await api.call('POST', `${CERT}/${victim.body.certificate_id}/revoke`, { reason: 'KEY_COMPROMISE' })).status, 204);
  const victimSerial = (await api.call('GET', `${CERT}/${victim.body.certificate_id}`)).body.serial_number as string;

  for (const [name, eku, refusal] of [
    ['ocsp', 'OCSPSigning', /extended key usage OCSPSigning is issued only when the issuing CA's issuance policy lists it/],
    ['ocsp-web', 'serverAuth,OCSPSigning', /OCSPSigning is issued only when/],
    ['any', 'anyExtendedKeyUsage', /anyExtendedKeyUsage is never issued/],
    ['any-web', 'serverAuth,anyExtendedKeyUsage', /anyExtendedKeyUsage is never issued/],
    ['ipsec', 'ipsecIKE', /1\.3\.6\.1\.5\.5\.7\.3\.17 is issued only when/],
    ['private', '1.3.6.1.4.1.99999.1', /1\.3\.6\.1\.4\.1\.99999\.1 is issued only when/],
  ] as const) {
    for (const type of ['ENTITY_CERT', 'INTERMEDIATE_CA']) {
      const response = await byCsr(issuerId, `${name}-${type}`, ['-subj', `/CN=${name}`, '-addext', `extendedKeyUsage=${eku}`], { type });
      assertError(t, response, 400, 'PCA.00020001', refusal);
    }
  }
  // The contract's flags but timeStamping come without a grant.
  const plain = await byCsr(issuerId, 'plain', [
    '-subj',
    '/CN=plain',
    '-addext',
    'extendedKeyUsage=serverAuth,clientAuth,codeSigning,emailProtection,1.3.6.1.4.1.311.20.2.2',
  ]);
  t.equal(plain.status, 200, JSON.stringify(plain.body));

  // Granted by a policy, the same CSR gives a responder whose forged `good` openssl accepts: what the refusals prevent.
  const delegating = await api.subordinate(rootId, { distinguished_name: { ...DN, common_name: 'delegating' } });
  t.equal((await api.call('PUT', `${CA}/${delegating}/issuance-policy`, { allowed_ekus: ['OCSPSigning'] })).status, 200);
  const anyStill = await byCsr(delegating, 'any-granted', [
    '-subj',
    '/CN=any',
    '-addext',
    'extendedKeyUsage=OCSPSigning,anyExtendedKeyUsage',
  ]);
  assertError(t, anyStill, 400, 'PCA.00020001', /anyExtendedKeyUsage is never issued/);
  const responder = await byCsr(delegating, 'responder', ['-subj', '/CN=responder', '-addext', 'extendedKeyUsage=OCSPSigning']);
  t.equal(responder.status, 200, JSON.stringify(responder.body));
  const delegatingPem = (await api.call('POST', `${CA}/${delegating}/export`)).body.certificate as string;
  const granted = await forgedGood(
    'granted',
    delegatingPem,
    await certificatePem(responder.body.certificate_id),
    responder.keyFile,
    '0a0b',
  );
  t.ok(granted.ok, `a granted responder is a real responder (the forging harness works): ${granted.output.trim()}`);

  // Without a grant, the best a caller gets is an ordinary leaf, and a `good` it signs for the revoked victim fails.
  const forged = await forgedGood('plain', issuerPem, await certificatePem(plain.body.certificate_id), plain.keyFile, victimSerial);
  t.notOk(forged.ok, 'openssl refuses the forged response');
  t.match(forged.output, /Response Verify Failure/, forged.output.trim());
});

t.test('item 6: POST CERT refuses keyCertSign and cRLSign on a CA:FALSE certificate; an intermediate keeps them', async (t) => {
  const serverMade = (overrides: Json) =>
    api.call('POST', CERT, {
      issuer_id: issuerId,
      distinguished_name: { common_name: 'leaf' },
      validity,
      key_algorithm: 'EC256',
      ...overrides,
    });
  for (const usages of [['keyCertSign'], ['digitalSignature', 'cRLSign'], ['digitalSignature', 'keyCertSign', 'cRLSign']]) {
    assertError(
      t,
      await serverMade({ key_usages: usages }),
      400,
      'PCA.00020001',
      /key_usages (keyCertSign|cRLSign) is for CA certificates only/,
    );
  }
  const leaf = await serverMade({ key_algorithm: 'RSA2048', key_usages: ['digitalSignature', 'keyEncipherment'] });
  t.equal(leaf.status, 200, JSON.stringify(leaf.body));
  t.match(
    await certificateText(dir, await certificatePem(leaf.body.certificate_id)),
    /Key Usage: critical\s+Digital Signature, Key Encipherment\s/,
  );
  const intermediate = await serverMade({
    type: 'INTERMEDIATE_CA',
    path_length: 0,
    key_usages: ['digitalSignature', 'keyCertSign', 'cRLSign'],
  });
  t.equal(intermediate.status, 200, JSON.stringify(intermediate.body));
});

t.test('key usages fit the key: none an EC or RSA key cannot use, and a CA always signs certificates and CRLs', async (t) => {
  const keyUsageOf = async (overrides: Json) => {
    const made = await api.call('POST', CERT, { issuer_id: issuerId, distinguished_name: { common_name: 'fit' }, validity, ...overrides });
    t.equal(made.status, 200, JSON.stringify(made.body));
    return /Key Usage: critical\s+(.*)\n/.exec(await certificateText(dir, await certificatePem(made.body.certificate_id)))?.[1];
  };
  t.equal(
    await keyUsageOf({ key_algorithm: 'EC256', key_usages: ['digitalSignature', 'keyEncipherment'] }),
    'Digital Signature',
    'EC: no encipherment',
  );
  t.equal(await keyUsageOf({ key_algorithm: 'RSA2048' }), 'Digital Signature, Key Encipherment', 'RSA default: no key agreement');
  t.equal(await keyUsageOf({ key_algorithm: 'EC256' }), 'Digital Signature, Key Agreement', "EC default: Huawei's");
  t.equal(
    await keyUsageOf({ key_algorithm: 'EC256', key_usages: ['digitalSignature', 'encipherOnly'] }),
    'Digital Signature',
    'encipherOnly needs keyAgreement',
  );
  assertError(
    t,
    await api.call('POST', CERT, {
      issuer_id: issuerId,
      distinguished_name: { common_name: 'fit' },
      validity,
      key_algorithm: 'EC256',
      key_usages: ['keyEncipherment', 'dataEncipherment'],
    }),
    400,
    'PCA.00020001',
    /key_usages keyEncipherment, dataEncipherment do not apply to an EC key/,
  );
  t.equal(
    await keyUsageOf({ key_algorithm: 'EC256', type: 'INTERMEDIATE_CA', path_length: 0, key_usages: ['digitalSignature'] }),
    'Digital Signature, Certificate Sign, CRL Sign',
    'a server-made intermediate asked for digitalSignature only',
  );

  // A CSR's KeyUsage with bits set in its padding: only the bits openssl reads are asked for (0x8F, 3 unused bits).
  const padded = await byCsr(issuerId, 'ku-padding', ['-subj', '/CN=padded', '-addext', 'keyUsage=critical,DER:03:02:03:8F']);
  t.equal(padded.status, 200, JSON.stringify(padded.body));
  t.match(
    await certificateText(dir, await certificatePem(padded.body.certificate_id)),
    /Key Usage: critical\s+Digital Signature, Key Agreement\n/,
    'no Encipher Only from a padding bit',
  );

  // Istio's plug-in CA as a CSR asking digitalSignature only (and cert-manager's default keyEncipherment on an EC key).
  const istio = await byCsr(
    issuerId,
    'istiod-ku',
    [
      '-subj',
      '/O=cluster.local/CN=istiod',
      '-addext',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
    ],
    { type: 'INTERMEDIATE_CA', path_length: 0, validity: { type: 'DAY', value: 300 } },
  );
  t.equal(istio.status, 200, JSON.stringify(istio.body));
  const istioPem = await certificatePem(istio.body.certificate_id);
  t.match(await certificateText(dir, istioPem), /Key Usage: critical\s+Digital Signature, Certificate Sign, CRL Sign\n/);
  // openssl as the workload's verifier: a leaf signed by the Istio CA's own key chains to the root, strictly.
  const istioFile = await dir.write('istiod-ku.pem', istioPem);
  const workload = await opensslCsr(dir, 'workload', [...KEY_ARGS.p256], ['-subj', '/CN=workload']);
  const csrFile = await dir.write('workload.csr', workload.csr);
  const leafFile = dir.file('workload.pem');
  const signed = await openssl(['x509', '-req', '-in', csrFile, '-CA', istioFile, '-CAkey', istio.keyFile, '-days', '1', '-out', leafFile]);
  t.ok(signed.ok, signed.stderr);
  const chain = await dir.write('istiod-chain.pem', `${issuerPem}\n${istioPem}`);
  const rootFile = await dir.write('istiod-root.pem', rootPem);
  const verified = await openssl(['verify', '-x509_strict', '-CAfile', rootFile, '-untrusted', chain, leafFile]);
  t.ok(verified.ok, verified.stdout + verified.stderr);

  assertError(
    t,
    await byCsr(
      issuerId,
      'istiod-nameless',
      ['-subj', '/', '-addext', 'subjectAltName=URI:spiffe://cluster.local/ns/istio-system/sa/istiod'],
      {
        type: 'INTERMEDIATE_CA',
        path_length: 0,
      },
    ),
    400,
    'PCA.00020101',
    /INTERMEDIATE_CA needs a subject name/,
  );
});

t.test('item 7: a CSR subject obeys the JSON path rules, and the API reports what the certificate says', async (t) => {
  // Validity: the certificate states whole seconds, and so does the API, for certificates and CAs alike.
  const issued = await byCsr(issuerId, 'validity-seconds', ['-subj', '/CN=seconds']);
  const issuedShown = (await api.call('GET', `${CERT}/${issued.body.certificate_id}`)).body;
  const dates = (
    await openssl(['x509', '-noout', '-dates', '-in', await dir.write('seconds.pem', await certificatePem(issued.body.certificate_id))])
  ).stdout;
  const dateOf = (name: string) => Date.parse(`${new RegExp(`${name}=(.*)`).exec(dates)![1]}`);
  t.same(
    [issuedShown.not_before, issuedShown.not_after],
    [dateOf('notBefore'), dateOf('notAfter')],
    "not_before and not_after are openssl's",
  );
  const ca = await api.show(await api.subordinate(rootId, { distinguished_name: { ...DN, common_name: 'seconds-ca' } }));
  t.same([ca.not_before % 1000, ca.not_after % 1000], [0, 0], "a CA's too");

  const refused: [string, string[], RegExp][] = [
    ['two-cns', ['-subj', '/CN=shown.example.com/CN=hidden.example.com'], /csr subject common_name appears more than once/],
    ['email-attr', ['-subj', '/CN=web/emailAddress=a@example.com'], /csr subject attribute 1\.2\.840\.113549\.1\.9\.1 is not one of/],
    ['dc', ['-subj', '/DC=com/DC=example/CN=web'], /csr subject attribute 0\.9\.2342\.19200300\.100\.1\.25 is not one of/],
    ['serial', ['-subj', '/CN=web/serialNumber=42'], /attribute 2\.5\.4\.5 is not one of/],
    ['multi', ['-multivalue-rdn', '-subj', '/CN=web+O=acme'], /multi-valued RDN/],
    ['punct', ['-subj', '/CN=web/O=acme; evil'], /csr subject organization must be/],
    ['country', ['-subj', '/C=1x/CN=web'], /csr subject country must be exactly two letters/],
  ];
  for (const [name, reqArgs, message] of refused) {
    const response = await byCsr(issuerId, `subject-${name}`, reqArgs);
    t.equal(response.status, 400, `${name}: ${JSON.stringify(response.body)}`);
    t.match(response.body.error_msg, message, name);
  }
  // Control characters: a CSR made here, since openssl will not write them.
  const key = await generateTestKey('EC256');
  for (const commonName of ['a\u0007b.example.com', 'web.example.com\n', 'x\u202ey']) {
    const csr = toPem('CERTIFICATE REQUEST', await buildCsr({ common_name: commonName }, key.spki, key.signer, 'SHA256'));
    assertError(
      t,
      await api.call('POST', `${CERT}/csr`, { issuer_id: issuerId, csr, validity }),
      400,
      'PCA.00020101',
      /csr subject common_name must be/,
    );
  }

  // X520countryName is a PrintableString: a CSR writing it as a UTF8String would have it copied so.
  const countryAsUtf8 = sequence(
    set(sequence(objectIdentifier('2.5.4.6'), utf8String('CN'))),
    set(sequence(objectIdentifier('2.5.4.3'), utf8String('web.example.com'))),
  );
  const info = sequence(smallInteger(0), countryAsUtf8, key.spki, contextConstructed(0, new Uint8Array(0)));
  assertError(
    t,
    await api.call('POST', `${CERT}/csr`, {
      issuer_id: issuerId,
      csr: toPem('CERTIFICATE REQUEST', await signStructure(info, key.signer, 'SHA256')),
      validity,
    }),
    400,
    'PCA.00020101',
    /csr subject country must be a PrintableString/,
  );

  const accepted = await byCsr(issuerId, 'subject-ok', [
    '-subj',
    '/C=CN/O=acme/OU=web team/CN=web.example.com',
    '-addext',
    'subjectAltName=DNS:web.example.com',
  ]);
  t.equal(accepted.status, 200, JSON.stringify(accepted.body));
  const shown = (await api.call('GET', `${CERT}/${accepted.body.certificate_id}`)).body.distinguished_name;
  t.same(shown, {
    common_name: 'web.example.com',
    country: 'CN',
    state: null,
    locality: null,
    organization: 'acme',
    organizational_unit: 'web team',
  });
  const file = await dir.write('subject-ok.pem', await certificatePem(accepted.body.certificate_id));
  const subject = await openssl(['x509', '-in', file, '-noout', '-subject', '-nameopt', 'sep_comma_plus_space,utf8']);
  t.equal(
    subject.stdout.trim(),
    'subject=C=CN, O=acme, OU=web team, CN=web.example.com',
    'openssl reads the same attributes, in the CSR order',
  );
});

t.test('item 8: customized_extension is bounded, and OIDs whose syntax is known are refused', async (t) => {
  const withExtension = (object_identifier: string, value: string) =>
    api.call('POST', CERT, {
      issuer_id: issuerId,
      distinguished_name: { common_name: 'ext' },
      validity,
      key_algorithm: 'EC256',
      customized_extension: { object_identifier, value },
    });
  assertError(
    t,
    await withExtension('1.3.6.1.4.1.2011.4.99', 'x'.repeat(3 * 1024 * 1024)),
    400,
    'PCA.00020001',
    /customized_extension\.value must be at most 1024 bytes/,
  );
  assertError(t, await withExtension('1.3.6.1.4.1.2011.4.99', '界'.repeat(342)), 400, 'PCA.00020001', /at most 1024 bytes/);
  for (const [oid, what] of [
    ['1.3.6.1.5.5.7.1.24', /TLS Feature/],
    ['1.3.6.1.5.5.7.1.1', /PKIX certificate extension/],
    ['1.3.6.1.5.5.7.48.1.5', /OCSP No Check/],
    ['1.3.6.1.4.1.11129.2.4.2', /Certificate Transparency/],
    ['2.16.840.1.113730.1.1', /Netscape/],
    ['1.3.6.1.4.1.311.21.10', /Microsoft/],
    ['1.3.36.8.3.3', /Admissions/],
  ] as const) {
    assertError(t, await withExtension(oid, 'status_request'), 400, 'PCA.00020001', what);
  }
  const atCap = await withExtension('1.3.6.1.4.1.2011.4.99', `${'界'.repeat(341)}x`);
  t.equal(atCap.status, 200, JSON.stringify(atCap.body));
  const text = await certificateText(dir, await certificatePem(atCap.body.certificate_id));
  t.match(text, /1\.3\.6\.1\.4\.1\.2011\.4\.99:/, 'openssl reads the private extension');
  // Neighbours of a refused arc stay available (Python's cryptography parses Admissions, not its siblings).
  t.equal((await withExtension('1.3.6.1.5.5.7.10', 'label')).status, 200);
  t.equal((await withExtension('1.3.36.8.3.4', 'label')).status, 200);
});
