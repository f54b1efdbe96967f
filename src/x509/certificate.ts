/** Certificates: building (the issuance hot path, encoded directly in DER) and parsing (imports, checks). */
import { randomFillSync } from 'node:crypto';
import { keyFamily, type HashAlgorithm, type KeyAlgorithm, type Signer } from './algorithms.ts';
import { contextConstructed, octetString, sequence, Tag, time, unsignedInteger } from './der-writer.ts';
import { encodingOf, expectTag, MalformedDer, parsingUntrusted, readChildren, readTime, unsignedIntegerValue } from './der-reader.ts';
import {
  authorityInfoAccessValue,
  authorityKeyIdentifierValue,
  basicConstraintsValue,
  crlDistributionPointsValue,
  customExtensionValue,
  decodeAuthorityKeyIdentifier,
  decodeBasicConstraints,
  decodeKeyUsage,
  decodeSubjectAltNames,
  decodeSubjectKeyIdentifier,
  extendedKeyUsageValue,
  extension,
  keyUsageValue,
  readExtensions,
  subjectAltNameValue,
  type CustomExtension,
  type KeyUsage,
  type RawExtension,
  type SubjectAltName,
} from './extensions.ts';
import { decodeNameConstraints, nameConstraintsValue, type NameConstraints } from './name-constraints.ts';
import { checkNameDer, decodeName, encodeName, isEmptyName, type DistinguishedName } from './name.ts';
import {
  keyAlgorithmOfSpki,
  readSigned,
  signStructure,
  signatureAlgorithmIdentifier,
  subjectKeyIdentifier,
  verifySignature,
} from './public-key.ts';
import { Oid } from './oids.ts';
import { X509Error } from './x509-errors.ts';

export interface CertificateProfile {
  /** Positive; use `randomSerial()`. */
  serialNumber: Uint8Array;
  /** A DN, or a raw DER Name copied from a CSR. */
  subject: DistinguishedName | Uint8Array;
  /** The issuer certificate's subject Name, copied raw (equal to the subject for a root). */
  issuer: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  /** The subject public key, DER SubjectPublicKeyInfo. */
  spki: Uint8Array;
  /** Signature hash; the signature algorithm's family is the signer's. */
  hash: HashAlgorithm;
  /** Always critical; `pathLength` is omitted for a root. */
  basicConstraints: { ca: boolean; pathLength?: number };
  /** Critical; omitted when empty. */
  keyUsages: KeyUsage[];
  /** OIDs; omitted when empty. */
  extendedKeyUsages?: string[];
  /** Critical when the subject is empty. */
  subjectAltNames?: SubjectAltName[];
  /** The issuer's SKI; absent for roots. */
  authorityKeyIdentifier?: Uint8Array;
  crlDistributionPoint?: string;
  ocspUrl?: string;
  caIssuersUrl?: string;
  /** Non-critical, each a DER UTF8String. */
  customExtensions?: CustomExtension[];
  /** CA certificates only; critical (RFC 5280 §4.2.1.10). */
  nameConstraints?: NameConstraints | null;
}

const VERSION_3 = contextConstructed(0, unsignedInteger(new Uint8Array([2])));

const SERIAL_OCTETS = 16;
/**
 * Serials are cut from a buffer of CSPRNG output filled 256 serials at a time: a randomBytes call per serial cost
 * ~2-5 µs of the event loop's time, the cut ~0.1 µs. Each octet is handed out once.
 */
const serialPool = new Uint8Array(SERIAL_OCTETS * 256);
let serialPoolAt = serialPool.length;

/**
 * 16 random octets with the top bit clear (positive) and the next bit set, so the INTEGER is always exactly these
 * 16 octets (its hex is stable, never zero) and carries 126 random bits (§4.2.1: 64-160 bits).
 */
export function randomSerial(): Uint8Array {
  if (serialPoolAt === serialPool.length) {
    randomFillSync(serialPool);
    serialPoolAt = 0;
  }
  const serial = serialPool.slice(serialPoolAt, serialPoolAt + SERIAL_OCTETS);
  serialPoolAt += SERIAL_OCTETS;
  serial[0] = (serial[0]! & 0x7f) | 0x40;
  return serial;
}

export const serialToHex = (serial: Uint8Array): string => Buffer.from(serial).toString('hex');

export async function buildCertificate(profile: CertificateProfile, signer: Signer): Promise<Uint8Array> {
  const { serialNumber, notBefore, notAfter } = profile;
  if (serialNumber.length === 0 || serialNumber.length > 20 || serialNumber.every((byte) => byte === 0)) {
    throw new X509Error('invalid-profile', 'serial number must be 1-20 octets and positive');
  }
  if (!(notBefore.getTime() <= notAfter.getTime())) throw new X509Error('invalid-validity', 'notAfter precedes notBefore');
  const subject = profile.subject instanceof Uint8Array ? checkNameDer(profile.subject, 'subject') : encodeName(profile.subject);
  const tbs = sequence(
    VERSION_3,
    unsignedInteger(serialNumber),
    signatureAlgorithmIdentifier({ family: keyFamily(signer.keyAlgorithm), hash: profile.hash }),
    profile.issuer,
    sequence(time(notBefore), time(notAfter)),
    subject,
    profile.spki,
    contextConstructed(3, sequence(...extensionsOf(profile, subject))),
  );
  return signStructure(tbs, signer, profile.hash);
}

function extensionsOf(profile: CertificateProfile, subject: Uint8Array): Uint8Array[] {
  const sans = profile.subjectAltNames ?? [];
  if (sans.length === 0 && isEmptyName(subject)) {
    throw new X509Error('invalid-profile', 'a certificate without a subject needs subject alternative names');
  }
  const { ca, pathLength } = profile.basicConstraints;
  // RFC 5280 §4.1.2.6 and §4.2.1.9: a CA names itself, and signs certificates only with keyCertSign asserted.
  if (ca && isEmptyName(subject)) throw new X509Error('invalid-name', 'a CA certificate needs a subject name');
  if (ca && !profile.keyUsages.includes('keyCertSign')) throw new X509Error('invalid-profile', 'a CA certificate needs keyCertSign');
  const ekus = profile.extendedKeyUsages ?? [];
  const entries: [oid: string, critical: boolean, value: Uint8Array | null][] = [
    [Oid.basicConstraints, true, basicConstraintsValue(ca, pathLength)],
    [Oid.keyUsage, true, keyUsageValue(profile.keyUsages)],
    [Oid.extendedKeyUsage, false, ekus.length > 0 ? extendedKeyUsageValue(ekus) : null],
    [Oid.subjectKeyIdentifier, false, octetString(subjectKeyIdentifier(profile.spki))],
    [Oid.authorityKeyIdentifier, false, ifPresent(profile.authorityKeyIdentifier, authorityKeyIdentifierValue)],
    [Oid.subjectAltName, isEmptyName(subject), sans.length > 0 ? subjectAltNameValue(sans) : null],
    [Oid.nameConstraints, true, ca ? ifPresent(profile.nameConstraints ?? undefined, nameConstraintsValue) : null],
    [Oid.crlDistributionPoints, false, ifPresent(profile.crlDistributionPoint, crlDistributionPointsValue)],
    [Oid.authorityInfoAccess, false, authorityInfoAccessValue(profile)],
    ...(profile.customExtensions ?? []).map(({ oid, value }): [string, boolean, Uint8Array] => [oid, false, customExtensionValue(value)]),
  ];
  const seen = new Set<string>();
  const encoded: Uint8Array[] = [];
  for (const [oid, critical, value] of entries) {
    if (!value) continue;
    if (seen.has(oid)) throw new X509Error('invalid-profile', `extension ${oid} would appear twice`);
    seen.add(oid);
    encoded.push(extension(oid, critical, value));
  }
  return encoded;
}

const ifPresent = <T>(value: T | undefined, encode: (value: T) => Uint8Array): Uint8Array | null => (value ? encode(value) : null);

// ---------------------------------------------------------------------------------------------------------------
// Parsing

export interface ParsedCertificate {
  /** Lowercase hex of the serial number's magnitude. */
  serialHex: string;
  subject: DistinguishedName;
  subjectDer: Uint8Array;
  issuerDer: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  spki: Uint8Array;
  /** Null when the key is not one of §10.3's. */
  keyAlgorithm: KeyAlgorithm | null;
  isCA: boolean;
  /** An X.509 v1 certificate (no version field): it carries no extensions, so no basicConstraints. */
  version1: boolean;
  pathLength: number | undefined;
  subjectKeyIdentifier: Uint8Array | undefined;
  authorityKeyIdentifier: Uint8Array | undefined;
  keyUsages: KeyUsage[];
  /** Null when the signature algorithm is not one of §10.3's. */
  signatureHash: HashAlgorithm | null;
  /** RFC 5280 §4.2.1.10, when the certificate carries them. */
  nameConstraints: NameConstraints | null;
}

/**
 * The identifier children's AKI and CRLs give a CA's key: its SKI, or RFC 5280 §4.2.1.2 method 1 over its key when
 * the certificate has none (imported third-party CAs may lack one; verifiers then match by name and signature).
 */
export function caKeyIdentifier(certificate: Pick<ParsedCertificate, 'subjectKeyIdentifier' | 'spki'>): Uint8Array {
  return certificate.subjectKeyIdentifier ?? subjectKeyIdentifier(certificate.spki);
}

/** Malformed input is a `malformed` X509Error; nothing else escapes. */
export function parseCertificate(der: Uint8Array): ParsedCertificate {
  return parsingUntrusted('certificate', () => {
    const signed = readSigned(der);
    const fields = readChildren(signed.tbs);
    const [serial, innerAlgorithm, issuer, validity, subject, spki, ...optional] = fields[0]?.tag === 0xa0 ? fields.slice(1) : fields;
    if (spki === undefined) throw new MalformedDer('TBSCertificate is incomplete');
    if (!Buffer.from(encodingOf(innerAlgorithm)).equals(signed.algorithmIdentifier)) {
      throw new MalformedDer('the two signature algorithms differ');
    }
    const [notBefore, notAfter, ...extra] = readChildren(validity, Tag.SEQUENCE);
    if (notAfter === undefined || extra.length > 0) throw new MalformedDer('bad Validity');
    const extensionsField = optional.find((el) => el.tag === 0xa3);
    const extensions = extensionsField ? readExtensions(readChildren(extensionsField)[0]) : new Map();
    const basicConstraints = extensions.get(Oid.basicConstraints);
    const { ca, pathLength } = basicConstraints ? decodeBasicConstraints(basicConstraints.value) : { ca: false };
    const keyUsage = extensions.get(Oid.keyUsage);
    const ski = extensions.get(Oid.subjectKeyIdentifier);
    const aki = extensions.get(Oid.authorityKeyIdentifier);
    const nameConstraints = extensions.get(Oid.nameConstraints);
    const subjectDer = encodingOf(expectTag(subject, Tag.SEQUENCE)).slice();
    const spkiDer = encodingOf(expectTag(spki, Tag.SEQUENCE)).slice();
    return {
      serialHex: serialToHex(unsignedIntegerValue(serial)),
      subject: decodeName(subjectDer),
      subjectDer,
      issuerDer: encodingOf(expectTag(issuer, Tag.SEQUENCE)).slice(),
      notBefore: readTime(notBefore),
      notAfter: readTime(notAfter),
      spki: spkiDer,
      keyAlgorithm: supportedKeyAlgorithm(spkiDer),
      isCA: ca,
      version1: fields[0]?.tag !== 0xa0,
      pathLength: ca ? pathLength : undefined,
      subjectKeyIdentifier: ski && decodeSubjectKeyIdentifier(ski.value).slice(),
      authorityKeyIdentifier: aki && decodeAuthorityKeyIdentifier(aki.value)?.slice(),
      keyUsages: keyUsage ? decodeKeyUsage(keyUsage.value) : [],
      signatureHash: signed.algorithm?.hash ?? null,
      nameConstraints: nameConstraints ? decodeNameConstraints(nameConstraints.value, 'signed') : null,
    };
  });
}

function supportedKeyAlgorithm(spki: Uint8Array): KeyAlgorithm | null {
  try {
    return keyAlgorithmOfSpki(spki);
  } catch (error) {
    if (error instanceof X509Error && error.kind === 'unsupported-key') return null;
    throw error;
  }
}

/**
 * Whether `childDer` carries a valid signature by the key `issuerSpki` (e.g. an imported CA certificate and its
 * supplied parent). False for a bad signature or an algorithm outside §10.3; malformed DER is a `malformed` X509Error.
 */
export function verifyCertificateSignature(childDer: Uint8Array, issuerSpki: Uint8Array): boolean {
  const signed = parsingUntrusted('certificate', () => readSigned(childDer));
  if (signed.algorithm === null) return false;
  const { family, hash } = signed.algorithm;
  return verifySignature(issuerSpki, family, hash, encodingOf(signed.tbs), signed.signature);
}

/** A certificate's extensions by OID, read without the rest of parseCertificate; inside a `parsingUntrusted` step. */
function extensionsRead(der: Uint8Array): Map<string, RawExtension> {
  const extensionsField = readChildren(readSigned(der).tbs).find((el) => el.tag === 0xa3);
  return extensionsField ? readExtensions(readChildren(extensionsField)[0]) : new Map();
}

/**
 * Whether the certificate carries the extension `oid` at all: `parseCertificate` reads an absent keyUsage and one
 * naming no usage alike (no usages), where RFC 5280 §4.2.1.3 treats them differently. Malformed DER is a
 * `malformed` X509Error.
 */
export function certificateHasExtension(der: Uint8Array, oid: string): boolean {
  return parsingUntrusted('certificate', () => extensionsRead(der).has(oid));
}

/**
 * A certificate's subject alternative names (none without the extension). Apart from parseCertificate, which imports
 * use: a name of a form §5.5 does not write (otherName, directoryName) is a `malformed` X509Error here.
 */
export function certificateSubjectAltNames(der: Uint8Array): SubjectAltName[] {
  return parsingUntrusted('certificate', () => {
    const extension = extensionsRead(der).get(Oid.subjectAltName);
    return extension ? decodeSubjectAltNames(extension.value) : [];
  });
}
