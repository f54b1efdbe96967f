/**
 * Certificates built by src/x509/certificate.ts, judged by openssl: chains root -> subordinate (pathLen 1) ->
 * intermediate (pathLen 0) -> leaf for every key algorithm and hash, extension content, and parsing.
 */
import t from 'tap';
import type { HashAlgorithm, KeyAlgorithm } from '../../src/x509/algorithms.ts';
import {
  buildCertificate,
  parseCertificate,
  randomSerial,
  serialToHex,
  verifyCertificateSignature,
  type CertificateProfile,
} from '../../src/x509/certificate.ts';
import { encodeName, type DistinguishedName } from '../../src/x509/name.ts';
import { toPem } from '../../src/x509/pem.ts';
import { subjectKeyIdentifier } from '../../src/x509/public-key.ts';
import { appErrorOf, generateTestKey, openssl, scratch, type TestKey } from './support.ts';

interface Issued {
  der: Uint8Array;
  pem: string;
  key: TestKey;
  subjectDer: Uint8Array;
}

const HOUR = 3600_000;
const now = Date.now();

/** Issues a certificate for `key` under `issuer` (self-signed when absent) with the contract's CA defaults. */
async function issue(
  key: TestKey,
  subject: DistinguishedName | Uint8Array,
  hash: HashAlgorithm,
  issuer: Issued | undefined,
  overrides: Partial<CertificateProfile> = {},
): Promise<Issued> {
  const subjectDer = subject instanceof Uint8Array ? subject : encodeName(subject);
  const profile: CertificateProfile = {
    serialNumber: randomSerial(),
    subject,
    issuer: issuer?.subjectDer ?? subjectDer,
    notBefore: new Date(now - HOUR),
    notAfter: new Date(now + (issuer ? 24 * HOUR : 30 * 365 * 24 * HOUR)), // a root reaches GeneralizedTime
    spki: key.spki,
    hash,
    basicConstraints: { ca: true },
    keyUsages: ['digitalSignature', 'keyCertSign', 'cRLSign'],
    authorityKeyIdentifier: issuer ? subjectKeyIdentifier(issuer.key.spki) : undefined,
    ...overrides,
  };
  const der = await buildCertificate(profile, (issuer?.key ?? key).signer);
  return { der, pem: toPem('CERTIFICATE', der), key, subjectDer };
}

const dn = (cn: string): DistinguishedName => ({
  country: 'CN',
  state: 'zhejiang',
  locality: 'hangzhou',
  organization: 'huawei-cloud',
  organizational_unit: 'container',
  common_name: cn,
});

const SIGNATURE_TEXT: Record<string, string> = {
  RSA: 'sha{n}WithRSAEncryption',
  EC: 'ecdsa-with-SHA{n}',
};
const signatureText = (alg: KeyAlgorithm, hash: HashAlgorithm): string =>
  SIGNATURE_TEXT[alg.startsWith('RSA') ? 'RSA' : 'EC'].replace('{n}', hash.slice(3));

const dir = await scratch('cert');

async function text(cert: Issued): Promise<string> {
  const result = await openssl(['x509', '-in', await dir.write(`${serialToHex(randomSerial())}.pem`, cert.pem), '-noout', '-text']);
  if (!result.ok) throw new Error(result.stderr);
  return result.stdout;
}

async function verify(root: Issued, untrusted: Issued[], leaf: Issued, extra: string[] = []) {
  const id = serialToHex(randomSerial());
  const rootFile = await dir.write(`root-${id}.pem`, root.pem);
  const untrustedFile = await dir.write(`untrusted-${id}.pem`, untrusted.map((c) => c.pem).join('\r\n'));
  const leafFile = await dir.write(`leaf-${id}.pem`, leaf.pem);
  const untrustedArgs = untrusted.length > 0 ? ['-untrusted', untrustedFile] : [];
  return openssl(['verify', '-x509_strict', ...extra, '-CAfile', rootFile, ...untrustedArgs, leafFile]);
}

// Every key algorithm signs at least once, each family with each hash, and the families mix within chains.
const CHAINS: { name: string; levels: [KeyAlgorithm, HashAlgorithm][]; leaf: [KeyAlgorithm, HashAlgorithm] }[] = [
  {
    name: 'RSA',
    levels: [
      ['RSA4096', 'SHA512'],
      ['RSA3072', 'SHA384'],
      ['RSA2048', 'SHA256'],
    ],
    leaf: ['EC256', 'SHA384'],
  },
  {
    name: 'EC',
    levels: [
      ['EC521', 'SHA512'],
      ['EC384', 'SHA384'],
      ['EC256', 'SHA256'],
    ],
    leaf: ['RSA2048', 'SHA512'],
  },
  {
    name: 'mixed',
    levels: [
      ['EC256', 'SHA256'],
      ['RSA2048', 'SHA512'],
      ['EC384', 'SHA384'],
    ],
    leaf: ['EC521', 'SHA256'],
  },
];

const leafExtensions: Partial<CertificateProfile> = {
  basicConstraints: { ca: false },
  keyUsages: ['digitalSignature', 'keyEncipherment'],
  extendedKeyUsages: ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'],
  subjectAltNames: [
    { type: 'DNS', value: 'cert-test.com' },
    { type: 'DNS', value: '*.mesh.local' },
    { type: 'IP', value: '10.1.2.3' },
    { type: 'IP', value: '2001:db8::1' },
    { type: 'EMAIL', value: 'ops@example.com' },
    { type: 'URI', value: 'spiffe://cluster.local/ns/default/sa/x' },
  ],
  crlDistributionPoint: 'http://pki.example/crl/inter.crl',
  ocspUrl: 'http://pki.example/ocsp/inter',
  caIssuersUrl: 'http://pki.example/ca/inter.crt',
  customExtensions: [{ oid: '1.3.6.1.4.1.2011.4.99', value: '自定义 value' }],
};

for (const chain of CHAINS) {
  t.test(`${chain.name} chain: root -> subordinate -> intermediate -> leaf`, async (t) => {
    const [rootKey, subKey, interKey, leafKey] = await Promise.all(
      [...chain.levels.map(([alg]) => alg), chain.leaf[0]].map(generateTestKey),
    );
    const [[rootAlg, rootHash], [subAlg, subHash], [interAlg, interHash]] = chain.levels;
    const root = await issue(rootKey, dn('asm'), rootHash, undefined);
    const sub = await issue(subKey, dn('asm-subordinate-ca'), subHash, root, { basicConstraints: { ca: true, pathLength: 1 } });
    const inter = await issue(interKey, dn('mesh-ca'), interHash, sub, { basicConstraints: { ca: true, pathLength: 0 } });
    const leaf = await issue(leafKey, dn('ingress-server-crt'), chain.leaf[1], inter, leafExtensions);

    const verified = await verify(root, [sub, inter], leaf, ['-purpose', 'sslserver']);
    t.ok(verified.ok, `openssl verify: ${verified.stdout}${verified.stderr}`);
    t.match(verified.stdout, /: OK/);

    // Signature algorithm as openssl reads it, at each level (the signer is the issuer's key).
    t.match(await text(root), `Signature Algorithm: ${signatureText(rootAlg, rootHash)}`);
    t.match(await text(sub), `Signature Algorithm: ${signatureText(rootAlg, subHash)}`);
    t.match(await text(inter), `Signature Algorithm: ${signatureText(subAlg, interHash)}`);
    t.match(await text(leaf), `Signature Algorithm: ${signatureText(interAlg, chain.leaf[1])}`);

    const rootText = await text(root);
    t.match(rootText, /X509v3 Basic Constraints: critical\s+CA:TRUE\n/, 'root: no path length');
    t.notMatch(rootText, /Authority Key Identifier|Authority Information Access|CRL Distribution/);
    t.match(rootText, /Not After : \w+ +\d+ [\d:]+ 20[5-9]\d GMT/, 'root ends after 2049 (GeneralizedTime)');
    t.match(rootText, 'Subject: C = CN, ST = zhejiang, L = hangzhou, O = huawei-cloud, OU = container, CN = asm\n');
    t.match(await text(sub), /CA:TRUE, pathlen:1/);
    t.match(await text(inter), /CA:TRUE, pathlen:0/);

    const leafText = await text(leaf);
    t.match(leafText, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
    t.match(leafText, /X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment\n/);
    t.match(leafText, /X509v3 Extended Key Usage: \s+TLS Web Server Authentication, TLS Web Client Authentication\n/);
    t.match(
      leafText,
      /X509v3 Subject Alternative Name: \s+DNS:cert-test.com, DNS:\*.mesh.local, IP Address:10.1.2.3, IP Address:2001:DB8:0:0:0:0:0:1, email:ops@example.com, URI:spiffe:\/\/cluster.local\/ns\/default\/sa\/x\n/,
      'SAN not critical when there is a subject',
    );
    t.match(leafText, /X509v3 CRL Distribution Points: \s+Full Name:\s+URI:http:\/\/pki.example\/crl\/inter.crl\n/);
    t.match(
      leafText,
      /Authority Information Access: \s+OCSP - URI:http:\/\/pki.example\/ocsp\/inter\s+CA Issuers - URI:http:\/\/pki.example\/ca\/inter.crt\n/,
    );
    t.match(leafText, /1\.3\.6\.1\.4\.1\.2011\.4\.99: \n/, 'custom extension is not critical');
    const asn1 = await openssl(['asn1parse', '-in', await dir.write('leaf-asn1.pem', leaf.pem)]);
    const customValue = Buffer.from('自定义 value');
    t.match(
      asn1.stdout,
      new RegExp(
        `OBJECT +:1\\.3\\.6\\.1\\.4\\.1\\.2011\\.4\\.99\\n.*OCTET STRING +\\[HEX DUMP\\]:0C${customValue.length.toString(16).padStart(2, '0')}${customValue.toString('hex')}\\n`,
        'i',
      ),
      'custom extension holds a DER UTF8String',
    );
    const interSki = (await text(inter)).match(/Subject Key Identifier: \s+([0-9A-F:]+)/)?.[1];
    t.match(leafText, new RegExp(`Authority Key Identifier: \\s+(keyid:)?${interSki}\\n`), 'leaf AKI = issuer SKI');

    // Parsing what was built.
    const parsedSub = parseCertificate(sub.der);
    t.same(parsedSub.subject, dn('asm-subordinate-ca'));
    t.same(parsedSub.issuerDer, root.subjectDer);
    t.equal(parsedSub.isCA, true);
    t.equal(parsedSub.pathLength, 1);
    t.equal(parsedSub.keyAlgorithm, subAlg);
    t.equal(parsedSub.signatureHash, subHash);
    t.same(parsedSub.keyUsages, ['digitalSignature', 'keyCertSign', 'cRLSign']);
    t.same(parsedSub.subjectKeyIdentifier, subjectKeyIdentifier(subKey.spki));
    t.same(parsedSub.authorityKeyIdentifier, subjectKeyIdentifier(rootKey.spki));
    t.same(parsedSub.spki, subKey.spki);
    t.equal(parsedSub.notBefore.getTime(), Math.floor((now - HOUR) / 1000) * 1000);
    const serial = await openssl(['x509', '-in', await dir.write('sub.pem', sub.pem), '-noout', '-serial']);
    t.equal(`serial=${parsedSub.serialHex.toUpperCase()}\n`, serial.stdout);
    const parsedRoot = parseCertificate(root.der);
    t.equal(parsedRoot.keyAlgorithm, rootAlg);
    t.equal(parsedRoot.signatureHash, rootHash);
    t.equal(parsedRoot.pathLength, undefined);
    t.equal(parsedRoot.authorityKeyIdentifier, undefined);
    t.equal(parsedRoot.notAfter.getUTCFullYear() >= 2050, true);
    const parsedLeaf = parseCertificate(leaf.der);
    t.equal(parsedLeaf.isCA, false);
    t.same(parsedLeaf.keyUsages, ['digitalSignature', 'keyEncipherment']);

    t.equal(verifyCertificateSignature(sub.der, root.key.spki), true);
    t.equal(verifyCertificateSignature(leaf.der, inter.key.spki), true);
    t.equal(verifyCertificateSignature(leaf.der, sub.key.spki), false, 'wrong issuer key');
    t.equal(verifyCertificateSignature(root.der, root.key.spki), true, 'self-signed');

    // The path length is enforced by relying parties: a CA below the pathLen-0 intermediate cannot issue.
    const tooDeep = await issue(await generateTestKey('EC256'), dn('too-deep'), 'SHA256', inter, {
      basicConstraints: { ca: true, pathLength: 0 },
    });
    const leafBelow = await issue(await generateTestKey('EC256'), dn('leaf-below'), 'SHA256', tooDeep, leafExtensions);
    const refused = await verify(root, [sub, inter, tooDeep], leafBelow);
    t.notOk(refused.ok, 'pathLen 0 intermediate cannot have a CA below it');
    t.match(refused.stdout + refused.stderr, /path length/);
  });
}

t.test('a leaf without subject carries a critical SAN and verifies', async (t) => {
  const [rootKey, leafKey] = await Promise.all([generateTestKey('EC256'), generateTestKey('EC256')]);
  const root = await issue(rootKey, dn('root'), 'SHA256', undefined);
  const leaf = await issue(leafKey, {}, 'SHA256', root, {
    ...leafExtensions,
    subjectAltNames: [{ type: 'DNS', value: 'only-san.example' }],
  });
  const verified = await verify(root, [], leaf);
  t.ok(verified.ok, verified.stdout + verified.stderr);
  const leafText = await text(leaf);
  t.match(leafText, /Subject: *\n/);
  t.match(leafText, /X509v3 Subject Alternative Name: critical\s+DNS:only-san.example\n/);
  t.same(parseCertificate(leaf.der).subject, {
    common_name: null,
    country: null,
    state: null,
    locality: null,
    organization: null,
    organizational_unit: null,
  });
  const error = await appErrorOf(() => issue(leafKey, {}, 'SHA256', root, { ...leafExtensions, subjectAltNames: [] }));
  t.match(error, { code: 'PCA.00020001' }, 'no subject and no SAN');
});

t.test('building rejects impossible profiles', async (t) => {
  const key = await generateTestKey('EC256');
  const root = await issue(key, dn('root'), 'SHA256', undefined);
  t.match(await appErrorOf(() => issue(key, dn('x'), 'SHA256', root, { serialNumber: new Uint8Array(2) })), {
    code: 'PCA.00020001',
  });
  t.match(await appErrorOf(() => issue(key, dn('x'), 'SHA256', root, { notBefore: new Date(now), notAfter: new Date(now - 1) })), {
    code: 'PCA.00020109',
  });
  t.match(
    await appErrorOf(() =>
      issue(key, dn('x'), 'SHA256', root, { customExtensions: [{ oid: '1.3.6.1.5.5.7.1.1', value: 'x' }], caIssuersUrl: 'http://a/b' }),
    ),
    { code: 'PCA.00020001', message: /twice/ },
    'a custom extension cannot duplicate one the service writes',
  );
  t.match(await appErrorOf(() => issue(key, new Uint8Array([0x30, 0x05, 1]), 'SHA256', root)), { code: 'PCA.00020001' });
  const san = { subjectAltNames: [{ type: 'URI' as const, value: 'spiffe://cluster.local/ns/istio-system/sa/istiod' }] };
  t.match(
    await appErrorOf(() => issue(key, {}, 'SHA256', root, san)),
    { code: 'PCA.00020101', message: /CA certificate needs a subject name/ },
    'a CA with an empty subject, even with SANs (RFC 5280 §4.1.2.6)',
  );
  t.match(
    await appErrorOf(() =>
      issue(key, dn('istiod'), 'SHA256', root, { basicConstraints: { ca: true, pathLength: 0 }, keyUsages: ['digitalSignature'] }),
    ),
    { code: 'PCA.00020001', message: /CA certificate needs keyCertSign/ },
    'a CA that could not sign certificates (RFC 5280 §4.2.1.9)',
  );
});

t.test('randomSerial: positive, 16 octets, distinct, each its own bytes; serialToHex', async (t) => {
  // Over several refills of the pool the serials are cut from.
  const serials = Array.from({ length: 1000 }, randomSerial);
  t.ok(serials.every((s) => s.length === 16 && s[0] >= 0x40 && s[0] < 0x80));
  t.equal(new Set(serials.map(serialToHex)).size, 1000);
  t.ok(
    serials.every((s) => s.byteOffset === 0 && s.buffer.byteLength === 16),
    'a copy, not a view of the pool (a refill would change it, a stored row would carry the pool)',
  );
  const first = serialToHex(serials[0]!);
  Array.from({ length: 600 }, randomSerial);
  t.equal(serialToHex(serials[0]!), first, 'unchanged by later refills');
  for (let octet = 1; octet < 16; octet++) {
    const values = new Set(serials.map((s) => s[octet]));
    t.ok(values.size > 200, `octet ${octet} takes ${values.size} values in 1000 serials`);
  }
  t.equal(serialToHex(new Uint8Array([0x0a, 0xff])), '0aff');
});

t.test('parseCertificate of openssl-made certificates and of garbage', async (t) => {
  const work = await scratch('parse');
  const made = await openssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    work.file('k.pem'),
    '-out',
    work.file('c.pem'),
    '-subj',
    '/C=DE/O=Example/CN=openssl root',
    '-days',
    '2',
    '-sha384',
    '-addext',
    'basicConstraints=critical,CA:TRUE,pathlen:3',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  t.ok(made.ok, 'openssl req -x509');
  const der = new Uint8Array(Buffer.from((await work.read('c.pem')).toString().replace(/-----[^-]+-----|\s/g, ''), 'base64'));
  const parsed = parseCertificate(der);
  t.equal(parsed.keyAlgorithm, 'RSA2048');
  t.equal(parsed.signatureHash, 'SHA384');
  t.equal(parsed.isCA, true);
  t.equal(parsed.pathLength, 3);
  t.same(parsed.keyUsages, ['keyCertSign', 'cRLSign']);
  t.equal(parsed.subject.common_name, 'openssl root');
  t.equal(parsed.subject.organization, 'Example');
  t.equal(parsed.subject.state, null);
  t.same(parsed.subjectKeyIdentifier, subjectKeyIdentifier(parsed.spki), 'openssl computes the SKI the same way');
  t.equal(verifyCertificateSignature(der, parsed.spki), true);

  for (const [name, bytes] of [
    ['empty', new Uint8Array(0)],
    ['truncated', der.subarray(0, der.length - 1)],
    ['trailing byte', new Uint8Array([...der, 0])],
    ['garbage', new Uint8Array([0x30, 0x82, 0xff, 0xff, 1, 2, 3])],
    ['a CSR-sized sequence', new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00])],
  ] as const) {
    t.match(await appErrorOf(() => parseCertificate(bytes)), { code: 'PCA.00020001' }, name);
    t.match(await appErrorOf(() => verifyCertificateSignature(bytes, parsed.spki)), { code: 'PCA.00020001' }, name);
  }
  t.match(await appErrorOf(() => verifyCertificateSignature(der, new Uint8Array([0x30, 0]))), { code: 'PCA.00020001' });
});
