/**
 * Issue #5: the hand-built certificate encoding (buildCertificate) checked byte for byte against the same
 * certificate built from pkijs objects, for profiles covering every field and extension the builder can write.
 */
import t from 'tap';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { X509Certificate } from 'node:crypto';
import { keyFamily, type KeyAlgorithm, type KeyFamily } from '../../src/x509/algorithms.ts';
import { buildCertificate, randomSerial, type CertificateProfile } from '../../src/x509/certificate.ts';
import { encodingOf } from '../../src/x509/der-reader.ts';
import { encodeName } from '../../src/x509/name.ts';
import { readSigned, subjectKeyIdentifier } from '../../src/x509/public-key.ts';
import { generateTestKey, type TestKey } from './support.ts';

const engine = new pkijs.CryptoEngine({ name: 'node', crypto: globalThis.crypto });

/** Written out here rather than imported, so that a wrong OID in src/ cannot agree with itself. */
const SIGNATURE_OID: Record<KeyFamily, Record<CertificateProfile['hash'], string>> = {
  RSA: { SHA256: '1.2.840.113549.1.1.11', SHA384: '1.2.840.113549.1.1.12', SHA512: '1.2.840.113549.1.1.13' },
  EC: { SHA256: '1.2.840.10045.4.3.2', SHA384: '1.2.840.10045.4.3.3', SHA512: '1.2.840.10045.4.3.4' },
};
const KEY_USAGE_BIT: Record<CertificateProfile['keyUsages'][number], number> = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
  encipherOnly: 7,
  decipherOnly: 8,
};
const GENERAL_NAME_TYPE = { EMAIL: 1, DNS: 2, URI: 6, IP: 7 } as const;
const IP_OCTETS: Record<string, number[]> = {
  '10.1.2.3': [10, 1, 2, 3],
  '2001:db8::8a2e:370:7334': [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0x8a, 0x2e, 0x03, 0x70, 0x73, 0x34],
};

/** KeyUsage as a named-bit BIT STRING, trailing zero bits dropped (X.690 §11.2.2). */
function keyUsageBits(usages: CertificateProfile['keyUsages']): asn1js.BitString {
  const bits = usages.map((usage) => KEY_USAGE_BIT[usage]);
  const length = Math.max(...bits) + 1;
  const bytes = new Uint8Array(Math.ceil(length / 8));
  for (const bit of bits) bytes[bit >> 3] |= 0x80 >> (bit & 7);
  return new asn1js.BitString({ valueHex: bytes.buffer, unusedBits: bytes.length * 8 - length });
}

const nonEmpty = <T>(values: T[] | undefined) => (values?.length ? values : undefined);
const uri = (value: string) => new pkijs.GeneralName({ type: 6, value });

/** The certificate of `profile` built from pkijs objects, carrying `signature` (taken from ours, ECDSA being randomized). */
async function pkijsCertificate(profile: CertificateProfile, family: KeyFamily, signature: Uint8Array) {
  const extension = (extnID: string, value: { toBER(): ArrayBuffer }, critical = false) =>
    new pkijs.Extension({ extnID, critical, extnValue: value.toBER() });
  // RFC 5280 §4.1.2.5: UTCTime through 2049, then GeneralizedTime; never fractional seconds.
  const time = (date: Date) =>
    new pkijs.Time({ type: date.getUTCFullYear() < 2050 ? 0 : 1, value: new Date(Math.floor(date.getTime() / 1000) * 1000) });
  const subjectDer = profile.subject instanceof Uint8Array ? profile.subject : encodeName(profile.subject);
  const subject = pkijs.RelativeDistinguishedNames.fromBER(subjectDer.slice());
  const spki = pkijs.PublicKeyInfo.fromBER(profile.spki.slice());
  const ski = await engine.digest({ name: 'SHA-1' }, spki.subjectPublicKey.valueBlock.valueHexView.slice());
  const sans = (profile.subjectAltNames ?? []).map(({ type, value }) =>
    type === 'IP'
      ? new pkijs.GeneralName({ type: 7, value: new asn1js.OctetString({ valueHex: new Uint8Array(IP_OCTETS[value]).buffer }) })
      : new pkijs.GeneralName({ type: GENERAL_NAME_TYPE[type], value }),
  );
  const accessDescriptions = [
    ['1.3.6.1.5.5.7.48.1', profile.ocspUrl],
    ['1.3.6.1.5.5.7.48.2', profile.caIssuersUrl],
  ].flatMap(([accessMethod, url]) => (url ? [new pkijs.AccessDescription({ accessMethod, accessLocation: uri(url) })] : []));
  const { ca, pathLength } = profile.basicConstraints;
  // pkijs writes pathLenConstraint whenever the key is present, even as undefined, so pass it only when set.
  const basicConstraints = new pkijs.BasicConstraints({
    cA: ca,
    ...(pathLength === undefined ? {} : { pathLenConstraint: pathLength }),
  });
  const algorithm = new pkijs.AlgorithmIdentifier({
    algorithmId: SIGNATURE_OID[family][profile.hash],
    ...(family === 'RSA' ? { algorithmParams: new asn1js.Null() } : {}), // RFC 4055 §5; RFC 5758 §3.2 omits them
  });
  const present = <T>(value: T | undefined, make: (value: T) => pkijs.Extension) => (value ? [make(value)] : []);
  return new pkijs.Certificate({
    version: 2,
    serialNumber: asn1js.Integer.fromBigInt(BigInt(`0x${Buffer.from(profile.serialNumber).toString('hex')}`)),
    signature: algorithm,
    issuer: pkijs.RelativeDistinguishedNames.fromBER(profile.issuer.slice()),
    notBefore: time(profile.notBefore),
    notAfter: time(profile.notAfter),
    subject,
    subjectPublicKeyInfo: spki,
    extensions: [
      extension('2.5.29.19', basicConstraints.toSchema(), true),
      ...present(nonEmpty(profile.keyUsages), (usages) => extension('2.5.29.15', keyUsageBits(usages), true)),
      ...present(nonEmpty(profile.extendedKeyUsages), (keyPurposes) =>
        extension('2.5.29.37', new pkijs.ExtKeyUsage({ keyPurposes }).toSchema()),
      ),
      extension('2.5.29.14', new asn1js.OctetString({ valueHex: ski })),
      ...present(profile.authorityKeyIdentifier, (keyId) =>
        extension(
          '2.5.29.35',
          new pkijs.AuthorityKeyIdentifier({ keyIdentifier: new asn1js.OctetString({ valueHex: keyId.slice().buffer }) }).toSchema(),
        ),
      ),
      ...present(nonEmpty(sans), (names) =>
        extension('2.5.29.17', new pkijs.GeneralNames({ names }).toSchema(), subject.typesAndValues.length === 0),
      ),
      ...present(profile.crlDistributionPoint, (url) =>
        extension(
          '2.5.29.31',
          new pkijs.CRLDistributionPoints({
            distributionPoints: [new pkijs.DistributionPoint({ distributionPoint: [uri(url)] })],
          }).toSchema(),
        ),
      ),
      ...present(nonEmpty(accessDescriptions), (descriptions) =>
        extension('1.3.6.1.5.5.7.1.1', new pkijs.InfoAccess({ accessDescriptions: descriptions }).toSchema()),
      ),
      ...(profile.customExtensions ?? []).map(({ oid, value }) => extension(oid, new asn1js.Utf8String({ value }))),
    ],
    signatureAlgorithm: algorithm,
    signatureValue: new asn1js.BitString({ valueHex: signature.slice().buffer }),
  });
}

/** A Name as a CSR may carry it: a multi-valued RDN and attributes the DN encoder never writes. */
const csrSubject = new Uint8Array(
  new pkijs.RelativeDistinguishedNames({
    typesAndValues: [
      new pkijs.AttributeTypeAndValue({ type: '2.5.4.3', value: new asn1js.PrintableString({ value: 'csr subject' }) }),
      new pkijs.AttributeTypeAndValue({ type: '1.2.840.113549.1.9.1', value: new asn1js.IA5String({ value: 'ops@example.com' }) }),
    ],
  })
    .toSchema()
    .toBER(),
);

interface Case {
  id: string;
  name: string;
  key: KeyAlgorithm;
  /** The case whose certificate signs this one; absent for the self-signed root. */
  issuer?: string;
  profile: Omit<CertificateProfile, 'serialNumber' | 'issuer' | 'spki' | 'notBefore' | 'notAfter' | 'authorityKeyIdentifier'> &
    Partial<CertificateProfile>;
}

const NOT_BEFORE = new Date('2025-03-01T00:00:00Z');
const ONE_YEAR_LATER = new Date('2026-03-01T00:00:00Z');

// In order: each issuer comes before what it signs.
const cases: Case[] = [
  {
    id: 'root',
    name: 'RSA root: self-signed without AKI, SHA-512, notAfter in 2060 (GeneralizedTime)',
    key: 'RSA2048',
    profile: {
      subject: { country: 'CN', organization: 'Test Org', common_name: 'Test Root CA' },
      hash: 'SHA512',
      notAfter: new Date('2060-03-01T12:00:00Z'),
      basicConstraints: { ca: true },
      keyUsages: ['digitalSignature', 'keyCertSign', 'cRLSign'],
    },
  },
  {
    id: 'ca',
    name: 'EC P-384 CA: pathLength 0, keyCertSign+cRLSign, SHA-384, CDP and caIssuers only, a 20-octet serial with the top bit set',
    key: 'EC384',
    issuer: 'root',
    profile: {
      serialNumber: new Uint8Array(20).fill(0xa5),
      subject: {
        country: 'CN',
        state: 'zhejiang',
        locality: 'hangzhou',
        organization: 'Test Org',
        organizational_unit: 'PKI',
        common_name: '中间 CA',
      },
      hash: 'SHA384',
      basicConstraints: { ca: true, pathLength: 0 },
      keyUsages: ['keyCertSign', 'cRLSign'],
      crlDistributionPoint: 'http://crl.example.com/root.crl',
      caIssuersUrl: 'http://pki.example.com/root.cer',
    },
  },
  {
    id: 'leaf',
    name: 'EC P-256 leaf: DNS+IP+email+URI SANs, serverAuth+clientAuth, CDP, OCSP and caIssuers, AKI',
    key: 'EC256',
    issuer: 'ca',
    profile: {
      subject: { common_name: 'www.example.com', organization: 'Test Org' },
      hash: 'SHA256',
      basicConstraints: { ca: false },
      keyUsages: ['digitalSignature', 'keyAgreement'],
      extendedKeyUsages: ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'],
      subjectAltNames: [
        { type: 'DNS', value: 'www.example.com' },
        { type: 'DNS', value: '*.api.example.com' },
        { type: 'IP', value: '10.1.2.3' },
        { type: 'IP', value: '2001:db8::8a2e:370:7334' },
        { type: 'EMAIL', value: 'admin@example.com' },
        { type: 'URI', value: 'spiffe://example.com/ns/default/sa/web' },
      ],
      crlDistributionPoint: 'http://crl.example.com/ca.crl',
      ocspUrl: 'http://ocsp.example.com',
      caIssuersUrl: 'http://pki.example.com/ca.cer',
    },
  },
  {
    id: 'anonymous',
    name: 'RSA-issued leaf with an empty subject: SAN critical, no AIA or CDP, a P-521 key, serial 1',
    key: 'EC521',
    issuer: 'root',
    profile: {
      serialNumber: Uint8Array.of(0, 0, 1),
      subject: Uint8Array.of(0x30, 0x00),
      hash: 'SHA256',
      basicConstraints: { ca: false },
      keyUsages: ['digitalSignature', 'keyEncipherment'],
      subjectAltNames: [{ type: 'DNS', value: 'anonymous.example.com' }],
    },
  },
  {
    id: 'custom',
    name: 'custom extensions, a raw CSR subject, decipherOnly (two-octet KeyUsage), SHA-512, validity across 2050',
    key: 'EC256',
    issuer: 'ca',
    profile: {
      subject: csrSubject,
      hash: 'SHA512',
      notBefore: new Date('2049-12-31T23:59:59.750Z'),
      notAfter: new Date('2050-01-01T00:00:00.250Z'), // milliseconds dropped: pkijs alone would write .25
      basicConstraints: { ca: false },
      keyUsages: ['digitalSignature', 'decipherOnly'],
      extendedKeyUsages: ['1.3.6.1.5.5.7.3.3', '1.3.6.1.4.1.311.20.2.2'],
      subjectAltNames: [{ type: 'URI', value: 'urn:example:device:42' }],
      ocspUrl: 'http://ocsp.example.com',
      customExtensions: [
        { oid: '1.3.6.1.4.1.2011.4.99', value: 'tenant=42' },
        { oid: '1.2.3.4.5', value: 'ünïcödé 证书 ✓' },
      ],
    },
  },
];

const keys = new Map<KeyAlgorithm, Promise<TestKey>>();
const keyFor = (alg: KeyAlgorithm) => keys.get(alg) ?? keys.set(alg, generateTestKey(alg)).get(alg)!;
const issued = new Map<string, { der: Uint8Array; key: TestKey; subjectDer: Uint8Array }>();

for (const { id, name, key: alg, issuer: issuerName, profile: partial } of cases) {
  t.test(name, async (t) => {
    const key = await keyFor(alg);
    const issuer = issuerName === undefined ? undefined : issued.get(issuerName)!;
    const subjectDer = partial.subject instanceof Uint8Array ? partial.subject : encodeName(partial.subject);
    const profile: CertificateProfile = {
      serialNumber: randomSerial(),
      issuer: issuer?.subjectDer ?? subjectDer,
      notBefore: NOT_BEFORE,
      notAfter: ONE_YEAR_LATER,
      spki: key.spki,
      authorityKeyIdentifier: issuer && subjectKeyIdentifier(issuer.key.spki),
      ...partial,
    };
    const signingKey = issuer?.key ?? key;
    const ours = await buildCertificate(profile, signingKey.signer);
    const signed = readSigned(ours);

    const theirs = await pkijsCertificate(profile, keyFamily(signingKey.signer.keyAlgorithm), signed.signature);
    t.same(Buffer.from(encodingOf(signed.tbs)), Buffer.from(theirs.encodeTBS().toBER()), 'TBSCertificate byte-identical to pkijs');
    t.same(Buffer.from(ours), Buffer.from(theirs.toSchema(true).toBER()), 'so is the envelope around our signature');

    const issuerCertificate = new X509Certificate(issuer?.der ?? ours);
    t.ok(new X509Certificate(ours).verify(issuerCertificate.publicKey), 'OpenSSL verifies the signature with the issuer key');
    const pkijsIssuer = pkijs.Certificate.fromBER(issuerCertificate.raw);
    t.ok(await pkijs.Certificate.fromBER(ours.slice()).verify(pkijsIssuer, engine), 'so does pkijs');

    issued.set(id, { der: ours, key, subjectDer });
  });
}
