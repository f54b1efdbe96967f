/**
 * Issuance over HTTP (§4.4.1, §4.4.2, §4.4.3, §10.8, §10.9): every issued certificate judged by
 * `openssl verify -x509_strict`, the CSR rules with their error codes, key usage precedence, and idempotency.
 */
import { createPublicKey, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import t from 'tap';
import { createTestApp } from '../helpers/app.ts';
import { ecKeyOf, ecSpki, generateTestKey, handMadeRsaKey, nextPrime, rsaPrime, rsaSpki } from '../x509/support.ts';
import { buildCsr } from '../../src/x509/csr.ts';
import { toPem } from '../../src/x509/pem.ts';
import { KEY_ALGORITHMS, type Signer } from '../../src/x509/algorithms.ts';
import { MAX_JSON_DEPTH } from '../../src/http/plugins/json-body.ts';
import { KEY_ARGS, certificateText, openssl, opensslCsr, opensslSign, pemBlocks, scratch, seedCa, verifyStrict } from './support.ts';

const harness = await createTestApp();
t.teardown(() => harness.close());
const { app } = harness;
const auth = harness.auth();
const dir = await scratch('issue');

const root = await seedCa(harness, { commonName: 'issue-root', keyAlgorithm: 'RSA2048' });
const sub = await seedCa(harness, { commonName: 'issue-sub', keyAlgorithm: 'EC256', parent: root, pathLength: 1 });
const leafOnlySub = await seedCa(harness, { commonName: 'leaf-only', parent: root, pathLength: 0 });

const validity = { type: 'DAY', value: 30 };

async function post(url: string, payload: unknown, headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url, headers: { ...auth, ...headers }, payload: payload as object });
}

async function exportJson(id: string) {
  const response = await post(`/v1/private-certificates/${id}/export`, { is_compressed: 'false', type: 'OTHER' });
  if (response.statusCode !== 200) throw new Error(`export ${id}: ${response.body}`);
  return response.json() as { certificate: string; certificate_chain: string; private_key: string | null };
}

async function issueByCsr(csr: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  return post('/v1/private-certificates/csr', { issuer_id: sub.id, csr, validity, ...extra }, headers);
}

function errorCode(response: { json(): unknown }): string {
  return (response.json() as { error_code: string }).error_code;
}

t.test('create by CSR: openssl-made CSRs give certificates that pass -x509_strict, with §4.4.2 defaults', async (t) => {
  for (const [name, keyArgs, keyUsage] of [
    ['rsa', KEY_ARGS.rsa2048, 'Digital Signature, Key Encipherment'],
    ['p256', KEY_ARGS.p256, 'Digital Signature, Key Agreement'],
    ['p384', KEY_ARGS.p384, 'Digital Signature, Key Agreement'],
  ] as const) {
    const { csr } = await opensslCsr(
      dir,
      `csr-${name}`,
      [...keyArgs],
      ['-subj', `/CN=${name}.example.com/O=acme`, '-addext', `subjectAltName=DNS:${name}.example.com,IP:10.0.0.1`],
    );
    const response = await issueByCsr(csr);
    t.equal(response.statusCode, 200, response.statusCode === 200 ? 'issued' : response.body);
    const exported = await exportJson(response.json().certificate_id);
    t.equal(exported.private_key, null, 'a CSR-issued certificate exports no key');
    const withPassword = await post(`/v1/private-certificates/${response.json().certificate_id}/export`, {
      is_compressed: 'false',
      type: 'OTHER',
      password: 'abc',
    });
    t.same(withPassword.json(), exported, 'a password, even one too short to protect a key, is ignored where there is no key (§4.4.5)');
    const chain = pemBlocks(exported.certificate_chain);
    t.equal(chain.length, 2, 'chain: issuing CA then root');
    t.equal(chain[1].replace(/\s/g, ''), root.pem.replace(/\s/g, ''), 'the root is last');
    const verified = await verifyStrict(dir, exported.certificate, root.pem, [chain[0]]);
    t.ok(verified.ok, `${name}: ${verified.stdout}${verified.stderr}`);
    const text = await certificateText(dir, exported.certificate);
    t.match(text, /Signature Algorithm: ecdsa-with-SHA384/, 'SHA384 always');
    t.match(text, new RegExp(`X509v3 Key Usage: critical\\s+${keyUsage}\\s`));
    t.match(text, /X509v3 Extended Key Usage:\s+TLS Web Server Authentication, TLS Web Client Authentication/);
    t.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
    t.match(text, new RegExp(`DNS:${name}.example.com, IP Address:10.0.0.1`));
    t.match(text, /CA Issuers - URI:http:\/\/127.0.0.1:8080\/ca\//);
    t.match(text, /Serial Number:\s*\n\s*([0-9a-f]{2}:){15}[0-9a-f]{2}/, '16-byte serial');
  }
});

t.test("create by CSR: the CSR's key usages and EKU win; keyCertSign is dropped from entity certificates", async (t) => {
  const { csr } = await opensslCsr(
    dir,
    'csr-ku',
    [...KEY_ARGS.p256],
    [
      '-subj',
      '/CN=client',
      '-addext',
      'keyUsage=critical,digitalSignature,keyCertSign',
      '-addext',
      'extendedKeyUsage=clientAuth',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
    ],
  );
  const response = await issueByCsr(csr);
  t.equal(response.statusCode, 200, response.statusCode === 200 ? 'issued' : response.body);
  const exported = await exportJson(response.json().certificate_id);
  const text = await certificateText(dir, exported.certificate);
  t.match(text, /X509v3 Key Usage: critical\s+Digital Signature\s/);
  t.match(text, /X509v3 Extended Key Usage:\s+TLS Web Client Authentication\s/);
  t.match(text, /CA:FALSE/, 'basic constraints never come from the CSR');
  t.ok((await verifyStrict(dir, exported.certificate, root.pem, [pemBlocks(exported.certificate_chain)[0]])).ok);
});

t.test("create by CSR: INTERMEDIATE_CA becomes a CSR-held CA row below the issuer's path length", async (t) => {
  const { csr, keyFile } = await opensslCsr(dir, 'mesh', [...KEY_ARGS.p256], ['-subj', '/O=cluster.local/CN=mesh-ca']);
  const response = await issueByCsr(csr, { type: 'INTERMEDIATE_CA', validity: { type: 'HOUR', value: 7200 } });
  t.equal(response.statusCode, 200, response.statusCode === 200 ? 'issued' : response.body);
  const id = response.json().certificate_id as string;
  const row = await harness.database.prisma.certificateAuthority.findUniqueOrThrow({ where: { id } });
  t.match(row, {
    type: 'SUBORDINATE',
    status: 'ACTIVED',
    genMode: 'CSR',
    pathLength: 0,
    issuerId: sub.id,
    keyRef: null,
    commonName: 'mesh-ca',
  });
  t.equal(row.notAfter!.getTime() - row.notBefore!.getTime(), 7200 * 3_600_000, 'HOUR 7200');
  const meshPem = toPem('CERTIFICATE', new Uint8Array(row.certificateDer!));
  const text = await certificateText(dir, meshPem);
  t.match(text, /X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
  t.match(text, /Digital Signature, Certificate Sign, CRL Sign/);
  t.ok((await verifyStrict(dir, meshPem, root.pem, [sub.pem])).ok, 'the mesh CA verifies');
  // A workload certificate signed by the requester's key verifies under the hierarchy.
  const workload = await opensslCsr(dir, 'workload', [...KEY_ARGS.p256], ['-subj', '/CN=workload']);
  const meshFile = await dir.write('mesh.pem', meshPem);
  const ext = await dir.write(
    'workload.ext',
    'basicConstraints=critical,CA:FALSE\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\nsubjectAltName=URI:spiffe://cluster.local/ns/default/sa/default\n',
  );
  const signed = await opensslSign({
    csr: dir.file('workload.csr'),
    ca: meshFile,
    caKey: keyFile,
    extFile: ext,
    out: dir.file('workload.pem'),
  });
  t.ok(signed.ok, signed.stderr);
  const workloadPem = (await dir.read('workload.pem')).toString();
  t.ok((await verifyStrict(dir, workloadPem, root.pem, [sub.pem, meshPem])).ok, 'workload verifies through mesh-ca');
  t.ok(workload.csr);

  const tooDeep = await post('/v1/private-certificates/csr', { issuer_id: leafOnlySub.id, csr, validity, type: 'INTERMEDIATE_CA' });
  t.equal(tooDeep.statusCode, 400);
  t.equal(errorCode(tooDeep), 'PCA.00020203', 'an issuer with path length 0 cannot sign a CA');
  const notBelow = await issueByCsr(csr, { type: 'INTERMEDIATE_CA', path_length: 1 });
  t.equal(errorCode(notBelow), 'PCA.00020203');
  const list = (await app.inject({ method: 'GET', url: '/v1/private-certificates?limit=1000', headers: auth })).json();
  t.notOk(
    list.certificates.some((c: { certificate_id: string }) => c.certificate_id === id),
    'not listed as a certificate',
  );
});

t.test('a burst of CSRs, every third with a broken signature: those refused, the rest issued (checked on the worker)', async (t) => {
  // Several CSRs in one turn make the server busy: a turn's checks after the first go to the verifier's worker thread.
  const keys = await Promise.all(Array.from({ length: 3 }, () => generateTestKey('EC256')));
  const csrs = await Promise.all(
    Array.from({ length: 12 }, async (_, i) => {
      const key = keys[i % 3]!;
      const der = await buildCsr({ common_name: `burst-${i}.example.com` }, key.spki, key.signer, 'SHA256');
      if (i % 3 === 1) der[der.length - 3] ^= 0x01; // inside the signature's last INTEGER
      return toPem('CERTIFICATE REQUEST', der);
    }),
  );
  const before = await harness.database.prisma.certificate.count();
  for (let round = 0; round < 2; round++) {
    const responses = await Promise.all(csrs.map((csr) => issueByCsr(csr)));
    for (const [i, response] of responses.entries()) {
      if (i % 3 === 1) {
        t.equal(errorCode(response), 'PCA.00020001', `round ${round + 1}, CSR ${i}: refused`);
        t.match(response.json().error_msg, /signature is invalid/);
      } else {
        t.equal(response.statusCode, 200, `round ${round + 1}, CSR ${i}: issued`);
      }
    }
  }
  t.equal(await harness.database.prisma.certificate.count(), before + 16, 'the 16 good ones stored, no refused one');
});

t.test('create by CSR: CSR rules refuse with clear 4xx codes', async (t) => {
  const cases: [string, string[], string][] = [
    ['rsa1024', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024'], 'PCA.00020102'],
    ['rsa-e3', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-pkeyopt', 'rsa_keygen_pubexp:3'], 'PCA.00020102'],
    ['k256', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:secp256k1'], 'PCA.00020102'],
    ['ed25519', ['-algorithm', 'ED25519'], 'PCA.00020102'],
  ];
  for (const [name, keyArgs, code] of cases) {
    const { csr } = await opensslCsr(dir, `bad-${name}`, keyArgs);
    const response = await issueByCsr(csr);
    t.equal(response.statusCode, 400, name);
    t.equal(errorCode(response), code, `${name}: ${response.body}`);
  }
  const { csr } = await opensslCsr(dir, 'tamper', [...KEY_ARGS.p256]);
  const der = Buffer.from(csr.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  der[der.length - 5] ^= 0x01;
  const tampered = await issueByCsr(toPem('CERTIFICATE REQUEST', der));
  t.equal(errorCode(tampered), 'PCA.00020001', 'a bad CSR signature');
  t.match(tampered.json().error_msg, /signature/);
  const oversized = await issueByCsr(csr + ' '.repeat(33 * 1024));
  t.equal(errorCode(oversized), 'PCA.00020001', 'over 32 KB');
  const key = await generateTestKey('EC256');
  const anonymous = toPem('CERTIFICATE REQUEST', await buildCsr({}, key.spki, key.signer, 'SHA256'));
  const empty = await issueByCsr(anonymous);
  t.equal(empty.statusCode, 400);
  t.match(empty.json().error_msg, /neither a subject nor subject alternative names/);
  const badSan = await opensslCsr(dir, 'bad-san', [...KEY_ARGS.p256], ['-subj', '/CN=x', '-addext', 'subjectAltName=DNS:bad..name']);
  t.equal(errorCode(await issueByCsr(badSan.csr)), 'PCA.00020110', 'CSR SANs pass the §5.5 rules');
  t.equal(errorCode(await issueByCsr('not a csr')), 'PCA.00020001');
  t.equal(errorCode(await post('/v1/private-certificates/csr', { issuer_id: 'nope', csr, validity })), 'PCA.00020201');
  t.equal(errorCode(await issueByCsr(csr, { validity: { type: 'WEEK', value: 1 } })), 'PCA.00020109');
  t.equal(errorCode(await issueByCsr(csr, { validity: { type: 'YEAR', value: 5 } })), 'PCA.00020109', "past the issuer's not_after");
  const missing = await issueByCsr(csr, { issuer_id: '4bd1b320-e162-419f-8add-dfcc046197c7' });
  t.equal(missing.statusCode, 404);
  const urn = await issueByCsr(csr, { issuer_id: `pca:cn-north-4:${harness.config.defaultDomainId}:ca:${sub.id}` });
  t.equal(urn.statusCode, 200, 'a URN names the issuer');
  t.equal(
    errorCode(await issueByCsr(csr, { issuer_id: `pca:eu-west-101:${harness.config.defaultDomainId}:ca:${sub.id}` })),
    'PCA.00020201',
  );
});

t.test('create by CSR and CSR parse: weak keys and keys clients cannot read get 400, sound keys still issue', async (t) => {
  const csrOf = async (spki: Uint8Array, signer: Signer, commonName: string) =>
    toPem('CERTIFICATE REQUEST', await buildCsr({ common_name: commonName }, spki, signer, 'SHA256'));
  // The audit's forgery: an INTERMEDIATE_CA for a key whose primes are close, factored from its certificate alone.
  const p = rsaPrime(1024);
  const q = nextPrime(p + 2n);
  const close = handMadeRsaKey(p * q, (p - 1n) * (q - 1n));
  const closeCsr = await csrOf(close.spki, close.signer, 'Weak Intermediate');
  const intermediate = await issueByCsr(closeCsr, { type: 'INTERMEDIATE_CA', validity: { type: 'HOUR', value: 24 } });
  t.equal(intermediate.statusCode, 400, intermediate.body);
  t.same(intermediate.json(), {
    error_code: 'PCA.00020102',
    error_msg: "RSA modulus's primes are so close that Fermat's method factors it",
  });
  const parsed = await post('/v1/private-certificates/csr/parse', { csr: closeCsr });
  t.equal(errorCode(parsed), 'PCA.00020102', 'CSR parse (§4.4.3) refuses it too');

  const rsa = await generateTestKey('RSA2048');
  const n = BigInt(
    `0x${Buffer.from(createPublicKey({ key: Buffer.from(rsa.spki), format: 'der', type: 'spki' }).export({ format: 'jwk' }).n!, 'base64url').toString('hex')}`,
  );
  const noParameters = await issueByCsr(await csrOf(rsaSpki(n, null), rsa.signer, 'rsa-no-null.example.com'));
  t.equal(noParameters.statusCode, 400);
  t.match(noParameters.json(), { error_code: 'PCA.00020001', error_msg: /parameters must be NULL/ });
  const ec = ecKeyOf('P-256', BigInt(`0x${randomBytes(32).toString('hex')}`) % (1n << 255n));
  const compressed = await issueByCsr(await csrOf(ecSpki('P-256', ec.compressed), ec.signer, 'compressed.example.com'));
  t.equal(compressed.statusCode, 400);
  t.match(compressed.json(), { error_code: 'PCA.00020102', error_msg: /uncompressed P-256 point/ });

  for (const [name, spki, signer] of [
    ['RSA-2048', rsa.spki, rsa.signer],
    ['P-256', ecSpki('P-256', ec.point), ec.signer],
  ] as const) {
    const issued = await issueByCsr(await csrOf(spki, signer, `${name}.example.com`));
    t.equal(issued.statusCode, 200, `${name}: ${issued.body}`);
  }
});

t.test('create with a server-made key: every algorithm verifies, and the exported key matches', async (t) => {
  for (const keyAlgorithm of KEY_ALGORITHMS) {
    const response = await post('/v1/private-certificates', {
      issuer_id: sub.id,
      distinguished_name: { common_name: `server-${keyAlgorithm}` },
      validity,
      key_algorithm: keyAlgorithm,
      signature_algorithm: 'SHA512',
      subject_alternative_names: [
        { type: 'DNS', value: 'srv.example.com' },
        { type: 'EMAIL', value: 'ops@example.com' },
      ],
      extended_key_usage: { server_auth: true, client_auth: false, code_signing: true },
      customized_extension: { object_identifier: '1.3.6.1.4.1.2011.4.99', value: 'hello' },
    });
    t.equal(response.statusCode, 200, response.statusCode === 200 ? 'issued' : response.body);
    const exported = await exportJson(response.json().certificate_id);
    const chain = pemBlocks(exported.certificate_chain);
    const verified = await verifyStrict(dir, exported.certificate, root.pem, [chain[0]]);
    t.ok(verified.ok, `${keyAlgorithm}: ${verified.stderr}`);
    t.match(exported.private_key, keyAlgorithm.startsWith('RSA') ? /^-----BEGIN RSA PRIVATE KEY-----/ : /^-----BEGIN EC PRIVATE KEY-----/);
    const certFile = await dir.write(`${keyAlgorithm}.pem`, exported.certificate);
    const keyFile = await dir.write(`${keyAlgorithm}.key`, exported.private_key!);
    const certKey = await openssl(['x509', '-in', certFile, '-noout', '-pubkey']);
    const privKey = await openssl(['pkey', '-in', keyFile, '-pubout']);
    t.equal(certKey.stdout, privKey.stdout, `${keyAlgorithm}: the exported key belongs to the certificate`);
    const text = await certificateText(dir, exported.certificate);
    t.match(
      text,
      /Subject: C\s?=\s?CN, ST\s?=\s?zhejiang, L\s?=\s?hangzhou, O\s?=\s?huawei-cloud, OU\s?=\s?container, CN\s?=\s?server-/,
      'DN inherited',
    );
    // Huawei's default (digitalSignature + keyAgreement) for an EC key; an RSA key cannot agree keys (RFC 3279).
    const defaultUsages = keyAlgorithm.startsWith('RSA') ? 'Digital Signature, Key Encipherment' : 'Digital Signature, Key Agreement';
    t.match(text, new RegExp(`Key Usage: critical\\s+${defaultUsages}\\n`), `${keyAlgorithm}: default key usages`);
    t.match(text, /Extended Key Usage:\s+TLS Web Server Authentication, Code Signing/);
    t.match(text, /1.3.6.1.4.1.2011.4.99:\s+..hello/);
    t.match(text, /email:ops@example.com/);
  }
  const row = await harness.database.prisma.certificate.findFirstOrThrow({ where: { commonName: 'server-EC256' } });
  t.match(row.sealedPrivateKey, /^v1\./, 'the private key is sealed at rest');
});

t.test('create with a server-made key: §10.9 intermediates and ISTIO export', async (t) => {
  const response = await post('/v1/private-certificates', {
    issuer_id: sub.id,
    distinguished_name: { common_name: 'istio-ca', organization: 'cluster.local' },
    validity,
    type: 'INTERMEDIATE_CA',
  });
  t.equal(response.statusCode, 200, response.statusCode === 200 ? 'issued' : response.body);
  const id = response.json().certificate_id;
  const istio = await post(`/v1/private-certificates/${id}/export`, { is_compressed: false, type: 'istio' });
  t.equal(istio.statusCode, 200, istio.statusCode === 200 ? 'issued' : istio.body);
  const files = istio.json() as Record<string, string>;
  t.same(Object.keys(files).sort(), ['ca-cert.pem', 'ca-key.pem', 'cert-chain.pem', 'root-cert.pem']);
  t.equal(files['root-cert.pem'].replace(/\s/g, ''), root.pem.replace(/\s/g, ''));
  const text = await certificateText(dir, files['ca-cert.pem']);
  t.match(text, /CA:TRUE, pathlen:0/);
  t.match(text, /Digital Signature, Certificate Sign, CRL Sign/);
  t.ok((await verifyStrict(dir, files['ca-cert.pem'], root.pem, [sub.pem])).ok);
  const withPassword = await post(`/v1/private-certificates/${id}/export`, { type: 'ISTIO', password: 'abc123' });
  t.equal(withPassword.statusCode, 400);
  const errors = await Promise.all([
    post('/v1/private-certificates', {
      issuer_id: leafOnlySub.id,
      distinguished_name: { common_name: 'x' },
      validity,
      type: 'INTERMEDIATE_CA',
    }),
    post('/v1/private-certificates', { issuer_id: sub.id, distinguished_name: { common_name: 'x' }, validity, key_algorithm: 'SM2' }),
    post('/v1/private-certificates', { issuer_id: sub.id, distinguished_name: { common_name: 'x' }, validity, signature_algorithm: 'SM3' }),
    post('/v1/private-certificates', { issuer_id: sub.id, distinguished_name: { common_name: 'x/y' }, validity }),
    post('/v1/private-certificates', { issuer_id: sub.id, distinguished_name: { country: 'CN' }, validity }),
    post('/v1/private-certificates', {
      issuer_id: sub.id,
      distinguished_name: { common_name: 'x' },
      validity,
      subject_alternative_names: [{ type: 'X400', value: 'x' }],
    }),
    post('/v1/private-certificates', {
      issuer_id: sub.id,
      distinguished_name: { common_name: 'x' },
      validity,
      subject_alternative_names: [{ type: 'IP', value: '300.1.1.1' }],
    }),
    // Read as 10.0.0.1 by clients, while IP rules and name constraints are written per family.
    post('/v1/private-certificates', {
      issuer_id: sub.id,
      distinguished_name: { common_name: 'x' },
      validity,
      subject_alternative_names: [{ type: 'IP', value: '::ffff:10.0.0.1' }],
    }),
    post('/v1/private-certificates', { issuer_id: sub.id, distinguished_name: { common_name: 'x' }, validity, key_usages: ['everything'] }),
    post('/v1/private-certificates', {
      issuer_id: sub.id,
      distinguished_name: { common_name: 'x' },
      validity,
      customized_extension: { object_identifier: '2.5.29.19', value: 'x' },
    }),
    // An arc of 2^140 (21 octets) would make a certificate the service itself could not parse back.
    post('/v1/private-certificates', {
      issuer_id: sub.id,
      distinguished_name: { common_name: 'x' },
      validity,
      customized_extension: { object_identifier: `1.3.6.1.4.1.${2n ** 140n}`, value: 'x' },
    }),
  ]);
  t.same(errors.map(errorCode), [
    'PCA.00020203',
    'PCA.00020102',
    'PCA.00020103',
    'PCA.00020101',
    'PCA.00020101',
    'PCA.00020112',
    'PCA.00020111',
    'PCA.00020111',
    'PCA.00020001',
    'PCA.00020001',
    'PCA.00020001',
  ]);
});

t.test('URI SANs that Go cannot read are refused, in the body and in a CSR; valid ones are issued as written', async (t) => {
  // Go's crypto/x509 (cert-manager, istiod, kubelet) refuses the whole certificate over any of these.
  const unreadable = [
    'https://svc.example.com/%zz',
    'https://svc.example.com/%',
    'https://svc.example.com/a%2',
    'spiffe://cluster.local/ns/x/sa/y#%zz',
    'http://ex%41mple.com/',
    'https://svc.example.com./x',
    'https://a..b/x',
    'http://1.2.3.4./',
  ];
  // '#' opens a comment in openssl's configuration, hence its escape in -addext.
  for (const [index, value] of unreadable.entries()) {
    const json = await post('/v1/private-certificates', {
      issuer_id: sub.id,
      distinguished_name: { common_name: 'uri' },
      validity,
      key_algorithm: 'EC256',
      subject_alternative_names: [{ type: 'URI', value }],
    });
    t.equal(json.statusCode, 400, value);
    t.match(json.json(), { error_code: 'PCA.00020001', error_msg: /subject_alternative_names\[0\]\.value is not an absolute URI/ }, value);
    const { csr } = await opensslCsr(
      dir,
      `uri-bad-${index}`,
      [...KEY_ARGS.p256],
      ['-subj', '/CN=uri', '-addext', `subjectAltName=URI:${value.replace('#', '\\#')}`],
    );
    const byCsr = await issueByCsr(csr);
    t.equal(byCsr.statusCode, 400, `CSR ${value}`);
    t.match(
      byCsr.json(),
      { error_code: 'PCA.00020001', error_msg: /subject_alternative_names\[0\]\.value is not an absolute URI/ },
      `CSR ${value}`,
    );
  }
  const readable = [
    'spiffe://cluster.local/ns/x/sa/y',
    'urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66',
    'https://[2001:db8::1]/',
    'https://10.1.2.3/x',
    'mailto:ops@example.com',
    'https://svc.example.com/a%41?b=%41#%41',
  ];
  const issued = await post('/v1/private-certificates', {
    issuer_id: sub.id,
    distinguished_name: { common_name: 'uri' },
    validity,
    key_algorithm: 'EC256',
    subject_alternative_names: readable.map((value) => ({ type: 'URI', value })),
  });
  t.equal(issued.statusCode, 200, issued.body);
  const text = await certificateText(dir, (await exportJson(issued.json().certificate_id)).certificate);
  t.match(text, readable.map((value) => `URI:${value}`).join(', '), 'each written as given');
  const { csr } = await opensslCsr(
    dir,
    'uri-good',
    [...KEY_ARGS.p256],
    ['-subj', '/CN=uri', '-addext', `subjectAltName=${readable.map((value) => `URI:${value.replace('#', '\\#')}`).join(',')}`],
  );
  const byCsr = await issueByCsr(csr);
  t.equal(byCsr.statusCode, 200, byCsr.body);
});

t.test('CSR parse reports the key, signature and subject; nothing is stored', async (t) => {
  const { csr } = await opensslCsr(dir, 'parse', [...KEY_ARGS.rsa2048], ['-subj', '/C=CN/O=acme/CN=parse.example.com']);
  const before = await harness.database.prisma.certificate.count();
  const response = await post('/v1/private-certificates/csr/parse', { csr: csr.replace(/\n/g, '\r\n') });
  t.equal(response.statusCode, 200, response.statusCode === 200 ? 'issued' : response.body);
  t.match(response.json(), {
    key_algorithm: 'RSA',
    key_algorithm_length: 2048,
    signature_algorithm: 'SHA256withRSA',
    public_key: /^-----BEGIN PUBLIC KEY-----\r\n/,
    distinguished_name: {
      common_name: 'parse.example.com',
      country: 'CN',
      organization: 'acme',
      state: null,
      locality: null,
      organizational_unit: null,
    },
  });
  t.equal(await harness.database.prisma.certificate.count(), before);
  t.equal(
    errorCode(
      await post('/v1/private-certificates/csr/parse', {
        csr: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----',
      }),
    ),
    'PCA.00020001',
  );
});

t.test('Idempotency-Key sent twice over HTTP is refused, not read as the key "k, k" (a real socket)', async (t) => {
  const address = new URL(await app.listen({ host: '127.0.0.1', port: 0 }));
  const { csr } = await opensslCsr(dir, 'idem-twice', [...KEY_ARGS.p256], ['-subj', '/CN=idem-twice.example.com']);
  const body = JSON.stringify({ csr, issuer_id: sub.id, validity });
  const send = (keyLines: string[]) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const headers = [
        'host',
        address.host,
        ...Object.entries(auth).flat(),
        'content-type',
        'application/json',
        ...keyLines.flatMap((key) => ['Idempotency-Key', key]),
      ];
      const request = httpRequest(
        { host: address.hostname, port: address.port, method: 'POST', path: '/v1/private-certificates/csr', headers },
        (response) => {
          let text = '';
          response.on('data', (chunk) => (text += chunk));
          response.on('end', () => resolve({ status: response.statusCode!, body: text }));
        },
      );
      request.on('error', reject);
      request.end(body);
    });
  const twice = await send(['twice-1', 'twice-1']);
  t.equal(twice.status, 400, twice.body);
  t.match(JSON.parse(twice.body), { error_code: 'PCA.00020001', error_msg: /sent once/ });
  t.equal((await send(['twice-2, twice-2'])).status, 200, 'one line holding a comma is an ordinary key');
  t.equal((await send(['twice-1'])).status, 200, 'the key sent once issues');
  // Injected as the Lambda adapter does with API Gateway's multiValueHeaders: light-my-request joins the lines too.
  const injected = await app.inject({
    method: 'POST',
    url: '/v1/private-certificates/csr',
    headers: { ...auth, 'content-type': 'application/json', 'idempotency-key': ['twice-3', 'twice-3'] },
    payload: body,
  });
  t.equal(injected.statusCode, 400, 'injected (the Lambda path): refused as well');
});

t.test('Idempotency-Key: same body replays, another body 409, failures do not reserve, concurrency issues once', async (t) => {
  const { csr } = await opensslCsr(dir, 'idem', [...KEY_ARGS.p256], ['-subj', '/CN=idem.example.com']);
  const billing = () => harness.database.prisma.billingRecord.count({ where: { usageType: 'CERT_ISSUE' } });
  const first = await issueByCsr(csr, {}, { 'idempotency-key': 'key-1' });
  t.equal(first.statusCode, 200);
  const billed = await billing();
  const reordered = await app.inject({
    method: 'POST',
    url: '/v1/private-certificates/csr',
    headers: { ...auth, 'idempotency-key': 'key-1', 'content-type': 'application/json' },
    payload: JSON.stringify({ validity: { value: 30, type: 'DAY' }, csr, issuer_id: sub.id }, null, 2),
  });
  t.equal(reordered.statusCode, 200);
  t.equal(reordered.json().certificate_id, first.json().certificate_id, 'the same certificate for the same parsed body');
  t.equal(await billing(), billed, 'a replay bills nothing');
  const other = await issueByCsr(csr, { validity: { type: 'DAY', value: 31 } }, { 'idempotency-key': 'key-1' });
  t.equal(other.statusCode, 409);
  t.equal(errorCode(other), 'PCA.00020001');
  const otherEndpoint = await post(
    '/v1/private-certificates',
    { issuer_id: sub.id, distinguished_name: { common_name: 'idem' }, validity, key_algorithm: 'EC256' },
    { 'idempotency-key': 'key-1' },
  );
  t.equal(otherEndpoint.statusCode, 200, 'the key is scoped to the endpoint');
  t.equal(errorCode(await issueByCsr(csr, {}, { 'idempotency-key': 'k'.repeat(65) })), 'PCA.00020001');
  t.equal(errorCode(await issueByCsr(csr, {}, { 'idempotency-key': '' })), 'PCA.00020001');

  const failed = await issueByCsr(csr, { validity: { type: 'YEAR', value: 19 } }, { 'idempotency-key': 'key-2' });
  t.equal(failed.statusCode, 400);
  const retried = await issueByCsr(csr, {}, { 'idempotency-key': 'key-2' });
  t.equal(retried.statusCode, 200, 'a failure does not reserve the key');

  const countBefore = await harness.database.prisma.certificate.count();
  const billedBefore = await billing();
  const concurrent = await Promise.all(Array.from({ length: 20 }, () => issueByCsr(csr, {}, { 'idempotency-key': 'key-3' })));
  const ids = new Set(concurrent.map((response) => (response.statusCode === 200 ? response.json().certificate_id : response.statusCode)));
  t.equal(ids.size, 1, `one answer for 20 concurrent requests: ${[...ids].join(', ')}`);
  t.equal(await harness.database.prisma.certificate.count(), countBefore + 1, 'exactly one certificate issued');
  t.equal(await billing(), billedBefore + 1, 'and billed once');

  const id = first.json().certificate_id;
  t.equal((await app.inject({ method: 'DELETE', url: `/v1/private-certificates/${id}`, headers: auth })).statusCode, 204);
  const replayAfterDelete = await issueByCsr(csr, {}, { 'idempotency-key': 'key-1' });
  t.equal(replayAfterDelete.json().certificate_id, id, 'a replay after delete still answers the id');
  t.equal((await app.inject({ method: 'GET', url: `/v1/private-certificates/${id}`, headers: auth })).statusCode, 404);
});

t.test('Idempotency-Key with a body nested to the depth limit: issued once, replayed; deeper is refused, unissued', async (t) => {
  const { csr } = await opensslCsr(dir, 'idem-deep', [...KEY_ARGS.p256], ['-subj', '/CN=idem-deep.example.com']);
  const send = (arrays: number) =>
    app.inject({
      method: 'POST',
      url: '/v1/private-certificates/csr',
      headers: { ...auth, 'idempotency-key': `deep-${arrays}`, 'content-type': 'application/json' },
      payload: `{"issuer_id":"${sub.id}","csr":${JSON.stringify(csr)},"validity":{"type":"DAY","value":30},"x":${'['.repeat(arrays)}${']'.repeat(arrays)}}`,
    });
  const countBefore = await harness.database.prisma.certificate.count();
  const first = await send(MAX_JSON_DEPTH - 1);
  t.equal(first.statusCode, 200, first.body.slice(0, 300));
  const again = await send(MAX_JSON_DEPTH - 1);
  t.equal(again.json().certificate_id, first.json().certificate_id, 'the same deep body replays');
  const deeper = await send(100_000);
  t.equal(deeper.statusCode, 400);
  t.match(deeper.json().error_msg, /nests deeper than/);
  t.equal(await harness.database.prisma.certificate.count(), countBefore + 1, 'one certificate for the three requests');
});

t.test('issuing needs an ACTIVED issuer holding its key', async (t) => {
  const disabled = await seedCa(harness, { commonName: 'disabled', parent: root, status: 'DISABLED' });
  const { csr } = await opensslCsr(dir, 'disabled', [...KEY_ARGS.p256]);
  const response = await post('/v1/private-certificates/csr', { issuer_id: disabled.id, csr, validity });
  t.equal(response.statusCode, 400);
  t.match(response.json().error_msg, /DISABLED/);
  const foreign = await seedCa(harness, { commonName: 'foreign', domainId: 'someone-else' });
  t.equal((await post('/v1/private-certificates/csr', { issuer_id: foreign.id, csr, validity })).statusCode, 404);
});
