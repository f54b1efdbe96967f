/** CSRs: openssl-made requests parsed by parseCsr, rejections with the contract's codes, buildCsr judged by openssl. */
import t from 'tap';
import { EC_CURVES } from '../../src/x509/algorithms.ts';
import { buildCertificate, randomSerial } from '../../src/x509/certificate.ts';
import { MAX_CSR_LENGTH, buildCsr, parseCsr } from '../../src/x509/csr.ts';
import { encodeName } from '../../src/x509/name.ts';
import { toPem } from '../../src/x509/pem.ts';
import { keySizeOf, spkiToPem, subjectKeyIdentifier } from '../../src/x509/public-key.ts';
import { X509Error } from '../../src/x509/x509-errors.ts';
import { appErrorOf, generateTestKey, openssl, scratch } from './support.ts';
import { fuzzer } from '../helpers/fuzz.ts';

const work = await scratch('csr');

/** A key made by openssl (`genpkey` options), written to `<name>.key`. */
async function opensslKey(name: string, options: string[]): Promise<string> {
  const made = await openssl(['genpkey', ...options, '-out', work.file(`${name}.key`)]);
  if (!made.ok) throw new Error(`openssl genpkey ${options.join(' ')}: ${made.stderr}`);
  return work.file(`${name}.key`);
}

/** `openssl req -new` with the key, subject and extra options; returns the PEM text. */
async function opensslCsr(name: string, keyFile: string, subject: string, options: string[] = []): Promise<string> {
  const made = await openssl(['req', '-new', '-key', keyFile, '-subj', subject, ...options, '-out', work.file(`${name}.csr`)]);
  if (!made.ok) throw new Error(`openssl req ${options.join(' ')}: ${made.stderr}`);
  return (await work.read(`${name}.csr`)).toString();
}

const EXTENSIONS = [
  '-addext',
  'subjectAltName=DNS:a.example.com,IP:10.0.0.1,IP:2001:db8::1,email:a@example.com,URI:spiffe://x/y',
  '-addext',
  'keyUsage=critical,digitalSignature,keyEncipherment',
  '-addext',
  'extendedKeyUsage=serverAuth,clientAuth',
];

const [rsaKey, ec256Key, ec384Key, ec521Key] = await Promise.all([
  opensslKey('rsa2048', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048']),
  opensslKey('ec256', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']),
  opensslKey('ec384', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384']),
  opensslKey('ec521', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-521']),
]);

t.test('openssl CSRs of every accepted key parse with the right fields', async (t) => {
  const cases = [
    { key: rsaKey, hash: '-sha256', keyAlgorithm: 'RSA2048', signatureAlgorithm: 'SHA256withRSA', bits: 2048 },
    { key: ec256Key, hash: '-sha256', keyAlgorithm: 'EC256', signatureAlgorithm: 'SHA256withECDSA', bits: 256 },
    { key: ec384Key, hash: '-sha384', keyAlgorithm: 'EC384', signatureAlgorithm: 'SHA384withECDSA', bits: 384 },
    { key: ec521Key, hash: '-sha512', keyAlgorithm: 'EC521', signatureAlgorithm: 'SHA512withECDSA', bits: 521 },
    { key: rsaKey, hash: '-sha512', keyAlgorithm: 'RSA2048', signatureAlgorithm: 'SHA512withRSA', bits: 2048 },
  ] as const;
  for (const c of cases) {
    const name = `${c.keyAlgorithm}${c.hash}`;
    const pem = await opensslCsr(name, c.key, '/C=CN/ST=zhejiang/L=hangzhou/O=huawei-cloud/OU=container/CN=mesh-ca', [
      c.hash,
      ...EXTENSIONS,
    ]);
    const csr = await parseCsr(pem);
    t.equal(csr.keyAlgorithm, c.keyAlgorithm, name);
    t.equal(keySizeOf(csr.keyAlgorithm), c.bits);
    t.equal(csr.signatureAlgorithm, c.signatureAlgorithm);
    t.same(csr.subject, {
      common_name: 'mesh-ca',
      country: 'CN',
      state: 'zhejiang',
      locality: 'hangzhou',
      organization: 'huawei-cloud',
      organizational_unit: 'container',
    });
    t.same(csr.subjectAltNames, [
      { type: 'DNS', value: 'a.example.com' },
      { type: 'IP', value: '10.0.0.1' },
      { type: 'IP', value: '2001:db8::1' },
      { type: 'EMAIL', value: 'a@example.com' },
      { type: 'URI', value: 'spiffe://x/y' },
    ]);
    t.same(csr.keyUsages, ['digitalSignature', 'keyEncipherment']);
    t.same(csr.extendedKeyUsages, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    const publicKey = await openssl(['req', '-in', work.file(`${name}.csr`), '-noout', '-pubkey']);
    t.equal(`${spkiToPem(csr.spki).replaceAll('\r\n', '\n')}\n`, publicKey.stdout, 'public_key PEM');
    t.notMatch(spkiToPem(csr.spki), /[^\r]\n/, 'public_key uses \\r\\n');
  }
});

t.test('CSR input tolerance: \\r\\n, surrounding whitespace, bare base64, NEW CERTIFICATE REQUEST', async (t) => {
  const pem = await opensslCsr('tolerance', ec256Key, '/CN=tolerant');
  const body = pem.replace(/-----[^-]+-----/g, '').trim();
  for (const [name, text] of [
    ['CRLF', pem.replaceAll('\n', '\r\n')],
    ['mixed', pem.replace('\n', '\r\n')],
    ['surrounding whitespace', `\n\n  ${pem}  \r\n\t`],
    ['bare base64', body],
    ['one line base64', body.replace(/\s/g, '')],
    ['old label', pem.replaceAll('CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST')],
  ]) {
    t.equal((await parseCsr(text)).subject.common_name, 'tolerant', name);
  }
  const csr = await parseCsr(pem);
  t.equal(csr.keyUsages, undefined, 'no KU requested');
  t.equal(csr.extendedKeyUsages, undefined, 'no EKU requested');
  t.same(csr.subjectAltNames, []);
});

t.test('unusual but valid CSRs', async (t) => {
  const emptySubject = await parseCsr(await opensslCsr('empty-subject', ec256Key, '/', ['-addext', 'subjectAltName=DNS:x.example']));
  t.same(emptySubject.subjectDer, new Uint8Array([0x30, 0]));
  t.equal(emptySubject.subject.common_name, null);
  t.same(emptySubject.subjectAltNames, [{ type: 'DNS', value: 'x.example' }]);

  const multiValued = await parseCsr(await opensslCsr('multi', ec256Key, '/O=org+CN=both', ['-multivalue-rdn']));
  t.equal(multiValued.subject.common_name, 'both');
  t.equal(multiValued.subject.organization, 'org');

  const cjk = await parseCsr(await opensslCsr('cjk', ec256Key, '/CN=网格证书/O=华为', ['-utf8']));
  t.equal(cjk.subject.common_name, '网格证书');
  t.equal(cjk.subject.organization, '华为');
});

t.test('a certificate issued from a parsed CSR keeps its subject and key, and verifies', async (t) => {
  const pem = await opensslCsr('issue', ec384Key, '/O=cluster.local/CN=mesh-ca', ['-addext', 'subjectAltName=DNS:istiod.istio-system.svc']);
  const csr = await parseCsr(pem);
  const ca = await generateTestKey('RSA2048');
  const caDn = encodeName({ common_name: 'asm-subordinate-ca', country: 'CN' });
  const caDer = await buildCertificate(
    {
      serialNumber: randomSerial(),
      subject: caDn,
      issuer: caDn,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 86_400_000),
      spki: ca.spki,
      hash: 'SHA256',
      basicConstraints: { ca: true },
      keyUsages: ['keyCertSign', 'cRLSign'],
    },
    ca.signer,
  );
  const der = await buildCertificate(
    {
      serialNumber: randomSerial(),
      subject: csr.subjectDer,
      issuer: caDn,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 3600_000),
      spki: csr.spki,
      hash: 'SHA384',
      basicConstraints: { ca: true, pathLength: 0 },
      keyUsages: ['digitalSignature', 'keyCertSign', 'cRLSign'],
      subjectAltNames: csr.subjectAltNames,
      authorityKeyIdentifier: subjectKeyIdentifier(ca.spki),
    },
    ca.signer,
  );
  const certFile = await work.write('issued.pem', toPem('CERTIFICATE', der));
  const caFile = await work.write('issuer.pem', toPem('CERTIFICATE', caDer));
  const verified = await openssl(['verify', '-x509_strict', '-CAfile', caFile, certFile]);
  t.ok(verified.ok, verified.stdout + verified.stderr);
  const certSubject = await openssl(['x509', '-in', certFile, '-noout', '-subject', '-nameopt', 'RFC2253']);
  const csrSubject = await openssl(['req', '-in', work.file('issue.csr'), '-noout', '-subject', '-nameopt', 'RFC2253']);
  t.equal(certSubject.stdout, csrSubject.stdout);
  const keyMatches = await openssl(['x509', '-in', certFile, '-noout', '-pubkey']);
  const csrKey = await openssl(['req', '-in', work.file('issue.csr'), '-noout', '-pubkey']);
  t.equal(keyMatches.stdout, csrKey.stdout);
});

t.test(
  'EC proof of possession: a tampered signature does not verify, a point off the curve is named; compressed points are refused',
  async (t) => {
    const invalid = async (name: string, der: Uint8Array) =>
      t.match(
        await appErrorOf(() => parseCsr(toPem('CERTIFICATE REQUEST', der))),
        { code: 'PCA.00020001', message: /signature is invalid/ },
        name,
      );
    for (const [alg, key] of [
      ['EC256', ec256Key],
      ['EC384', ec384Key],
      ['EC521', ec521Key],
    ] as const) {
      const compressedKey = work.file(`${alg}-compressed.key`);
      const converted = await openssl(['ec', '-in', key, '-conv_form', 'compressed', '-out', compressedKey]);
      t.ok(converted.ok, converted.stderr);
      // Go's x509.ParseCertificate and Java cannot read a certificate with a compressed point (RFC 5480 §2.2).
      t.match(
        await appErrorOf(async () => parseCsr(await opensslCsr(`${alg}-compressed`, compressedKey, '/CN=compressed'))),
        { code: 'PCA.00020102', message: `must be an uncompressed ${EC_CURVES[alg].namedCurve} point` },
        `${alg}: openssl's compressed point is refused`,
      );

      const pem = await opensslCsr(`${alg}-plain`, key, '/CN=plain-point');
      const csr = await parseCsr(pem);
      const der = new Uint8Array(Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64'));
      const lastPointByte = Buffer.from(der).indexOf(Buffer.from(csr.spki)) + csr.spki.length - 1;
      const offCurve = der.slice();
      offCurve[lastPointByte] ^= 0x01;
      t.match(
        await appErrorOf(() => parseCsr(toPem('CERTIFICATE REQUEST', offCurve))),
        { code: 'PCA.00020001', message: `public key is not a point on the ${EC_CURVES[alg].namedCurve} curve` },
        `${alg}: a point off the curve`,
      );
      const signatureTampered = der.slice();
      signatureTampered[der.length - 3] ^= 0x01;
      await invalid(`${alg}: a tampered signature`, signatureTampered);
      const subjectTampered = der.slice();
      subjectTampered[Buffer.from(der).indexOf('plain-point')] ^= 0x01;
      await invalid(`${alg}: a tampered subject`, subjectTampered);
    }
  },
);

t.test('rejections carry the contract codes', async (t) => {
  const [rsa1024, rsaE3, secp256k1, ed25519, sm2] = await Promise.all([
    opensslKey('rsa1024', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024']),
    opensslKey('rsa-e3', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-pkeyopt', 'rsa_keygen_pubexp:3']),
    opensslKey('k1', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:secp256k1']),
    opensslKey('ed25519', ['-algorithm', 'ED25519']),
    opensslKey('sm2', ['-algorithm', 'SM2']),
  ]);
  const rejected = async (name: string, pem: string, code: string, message?: RegExp) =>
    t.match(await appErrorOf(() => parseCsr(pem)), { code, statusCode: 400, ...(message ? { message } : {}) }, name);

  await rejected('RSA-1024', await opensslCsr('rsa1024', rsa1024, '/CN=x'), 'PCA.00020102', /1024 bits/);
  await rejected('RSA e=3', await opensslCsr('rsa-e3', rsaE3, '/CN=x'), 'PCA.00020102', /65537/);
  await rejected('secp256k1', await opensslCsr('k1', secp256k1, '/CN=x'), 'PCA.00020102', /secp256k1/);
  await rejected('Ed25519', await opensslCsr('ed25519', ed25519, '/CN=x'), 'PCA.00020102', /Ed25519/);
  await rejected('SM2', await opensslCsr('sm2', sm2, '/CN=x', ['-sm3']), 'PCA.00020102', /SM2/);
  await rejected('SHA-1 signature', await opensslCsr('sha1', rsaKey, '/CN=x', ['-sha1']), 'PCA.00020103');
  await rejected('RSA-PSS signature', await opensslCsr('pss', rsaKey, '/CN=x', ['-sigopt', 'rsa_padding_mode:pss']), 'PCA.00020103');
  await rejected('no subject, no SAN', await opensslCsr('nothing', ec256Key, '/'), 'PCA.00020001', /neither/);
  const signer = await generateTestKey('EC256');
  const nullPrefixed = await buildCsr({ common_name: 'good.example\u0000.evil.example' }, signer.spki, signer.signer, 'SHA256');
  await rejected('a NUL in the subject (null-prefix)', toPem('CERTIFICATE REQUEST', nullPrefixed), 'PCA.00020001', /NUL/);
  await rejected(
    'otherName SAN',
    await opensslCsr('othername', ec256Key, '/CN=x', ['-addext', 'subjectAltName=otherName:1.2.3.4;UTF8:foo']),
    'PCA.00020112',
  );

  // Tampering: a changed subject byte and a changed signature byte both break proof of possession.
  const good = await opensslCsr('tamper', rsaKey, '/CN=tamper-me');
  const der = new Uint8Array(Buffer.from(good.replace(/-----[^-]+-----|\s/g, ''), 'base64'));
  const subjectAt = Buffer.from(der).indexOf('tamper-me');
  const subjectTampered = der.slice();
  subjectTampered[subjectAt] ^= 0x01;
  await rejected('tampered subject', toPem('CERTIFICATE REQUEST', subjectTampered), 'PCA.00020001', /signature is invalid/);
  const signatureTampered = der.slice();
  signatureTampered[der.length - 5] ^= 0x40;
  await rejected('tampered signature', toPem('CERTIFICATE REQUEST', signatureTampered), 'PCA.00020001', /signature is invalid/);

  await rejected('wrong label', good.replaceAll('CERTIFICATE REQUEST', 'CERTIFICATE'), 'PCA.00020001', /expected/);
  await rejected('two blocks', `${good}\n${good}`, 'PCA.00020001', /exactly one/);
  await rejected('not base64', '-----BEGIN CERTIFICATE REQUEST-----\n%%%%\n-----END CERTIFICATE REQUEST-----', 'PCA.00020001');
  await rejected('unterminated', good.slice(0, good.indexOf('-----END')), 'PCA.00020001');
  await rejected('empty', '   ', 'PCA.00020001');
  await rejected('a certificate body', toPem('CERTIFICATE REQUEST', new Uint8Array([0x30, 0x03, 2, 1, 0])), 'PCA.00020001');
  await rejected('too large', `${good}${' '.repeat(MAX_CSR_LENGTH)}`, 'PCA.00020001', /exceeds/);
});

t.test('buildCsr output passes openssl req -verify and parses back', async (t) => {
  const dn = {
    country: 'CN',
    state: 'zhejiang',
    locality: 'hangzhou',
    organization: 'huawei-cloud',
    organizational_unit: 'container',
    common_name: 'pending-sub',
  };
  for (const [alg, hash] of [
    ['RSA2048', 'SHA256'],
    ['EC384', 'SHA384'],
    ['EC521', 'SHA512'],
  ] as const) {
    const key = await generateTestKey(alg);
    const pem = toPem('CERTIFICATE REQUEST', await buildCsr(dn, key.spki, key.signer, hash));
    const file = await work.write(`built-${alg}.csr`, pem);
    const verified = await openssl(['req', '-in', file, '-noout', '-verify', '-subject']);
    t.ok(verified.ok, `${alg}: ${verified.stderr}`);
    t.match(verified.stdout + verified.stderr, /verify OK/i);
    t.match(verified.stdout, 'subject=C = CN, ST = zhejiang, L = hangzhou, O = huawei-cloud, OU = container, CN = pending-sub');
    const parsed = await parseCsr(pem);
    t.equal(parsed.keyAlgorithm, alg);
    t.equal(parsed.signatureAlgorithm, `${hash}with${alg.startsWith('RSA') ? 'RSA' : 'ECDSA'}`);
    t.same(parsed.subject, dn);
  }
  const key = await generateTestKey('EC256');
  const anonymous = toPem('CERTIFICATE REQUEST', await buildCsr({}, key.spki, key.signer, 'SHA256'));
  t.match(await appErrorOf(() => parseCsr(anonymous)), { code: 'PCA.00020001' }, 'a CSR without subject nor SAN');
});

t.test('mutated CSR bytes never throw anything but an X509Error', async (t) => {
  const pem = await opensslCsr('mutate', ec256Key, '/C=CN/O=org/CN=mutant', EXTENSIONS);
  const original = new Uint8Array(Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64'));
  const { integer: pick } = fuzzer(t, 20240501);
  const mutations: ((b: Uint8Array) => Uint8Array)[] = [
    (b) => {
      const c = b.slice();
      c[pick(c.length)] ^= 1 << pick(8);
      return c;
    },
    (b) => {
      const c = b.slice();
      c[pick(c.length)] = [0x00, 0x7f, 0x80, 0x81, 0x82, 0x84, 0xff][pick(7)];
      return c;
    },
    (b) => b.slice(0, pick(b.length)),
    (b) => {
      const at = pick(b.length);
      return new Uint8Array([...b.slice(0, at), pick(256), ...b.slice(at)]);
    },
    (b) => {
      const at = pick(b.length);
      return new Uint8Array([...b.slice(0, at), ...b.slice(at + 1 + pick(8))]);
    },
    (b) => {
      const at = pick(b.length);
      const len = pick(40);
      return new Uint8Array([...b.slice(0, at), ...b.slice(at, at + len), ...b.slice(at)]);
    },
  ];
  const outcomes = new Map<string, number>();
  for (let i = 0; i < 400; i++) {
    let bytes: Uint8Array = original;
    for (let n = 1 + pick(3); n > 0; n--) bytes = mutations[pick(mutations.length)](bytes);
    try {
      await parseCsr(toPem('CERTIFICATE REQUEST', bytes));
      outcomes.set('accepted', (outcomes.get('accepted') ?? 0) + 1);
    } catch (error) {
      if (!(error instanceof X509Error)) {
        t.fail(`mutation ${i} threw ${String(error)}: ${Buffer.from(bytes).toString('hex')}`);
        continue;
      }
      outcomes.set(error.kind, (outcomes.get(error.kind) ?? 0) + 1);
    }
  }
  t.ok((outcomes.get('malformed') ?? 0) > 300, `outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`);
});
