/** PKCS#10 certificate requests: strict parsing of untrusted CSRs (§4.4.2, §4.4.3) and building a CA's own CSR. */
import { type HashAlgorithm, type KeyAlgorithm, type Signer, keyFamily } from './algorithms.ts';
import { contextConstructed, objectIdentifier, sequence, set, smallInteger, Tag } from './der-writer.ts';
import {
  type DerElement,
  encodingOf,
  expectTag,
  MalformedDer,
  parsingUntrusted,
  readChildren,
  readOid,
  readSmallInteger,
} from './der-reader.ts';
import {
  decodeExtendedKeyUsage,
  decodeKeyUsage,
  decodeSubjectAltNames,
  extension,
  readExtensions,
  type KeyUsage,
  type RawExtension,
  type SubjectAltName,
} from './extensions.ts';
import { decodeNameConstraints, nameConstraintsValue, type NameConstraints } from './name-constraints.ts';
import { decodeName, encodeName, isEmptyName, type DistinguishedName } from './name.ts';
import { parseSinglePem } from './pem.ts';
import {
  assertCertifiableKey,
  assertImportableKey,
  keyAlgorithmOfSpki,
  readSigned,
  runSignatureCheck,
  type SignatureCheckRunner,
  signatureCheck,
  signStructure,
  signatureAlgorithmName,
} from './public-key.ts';
import { Oid } from './oids.ts';
import { X509Error } from './x509-errors.ts';

/** The largest CSR text accepted (characters). */
export const MAX_CSR_LENGTH = 32 * 1024;

const CSR_LABELS = ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST'];

export interface ParsedCsr {
  /** The subject Name exactly as the CSR encodes it, to be copied into the certificate. */
  subjectDer: Uint8Array;
  subject: DistinguishedName;
  spki: Uint8Array;
  keyAlgorithm: KeyAlgorithm;
  /** e.g. `SHA256withRSA`, `SHA384withECDSA`. */
  signatureAlgorithm: string;
  /** From the extensionRequest, in the CSR's order. */
  subjectAltNames: SubjectAltName[];
  /** Present only when the CSR requests key usages. */
  keyUsages?: KeyUsage[];
  /** OIDs; present only when the CSR requests extended key usages. */
  extendedKeyUsages?: string[];
  /** Present only when the CSR requests name constraints (RFC 5280 §4.2.1.10; used for INTERMEDIATE_CA). */
  nameConstraints?: NameConstraints;
  /**
   * Why the requested name constraints cannot be carried (a form other than DNS, IP, URI and email): refused only
   * where they would be (csrNameConstraints), as an entity CSR's constraints are ignored.
   */
  unsupportedNameConstraints?: string;
}

/**
 * Parses and checks a CSR given as PEM (or bare base64): proof of possession (its signature, checked by `checkSignature`),
 * a §10.3 key (`unsupported-key`) that is neither weak nor unreadable to clients (assertCertifiableKey), a §10.3
 * signature algorithm (`unsupported-signature-algorithm`), and a subject or SANs. Whatever the bytes, only X509Errors
 * leave it.
 */
export async function parseCsr(pem: string, checkSignature: SignatureCheckRunner = runSignatureCheck): Promise<ParsedCsr> {
  if (typeof pem !== 'string' || pem.trim() === '') throw new X509Error('malformed', 'csr is required');
  if (pem.length > MAX_CSR_LENGTH) throw new X509Error('malformed', `csr exceeds ${MAX_CSR_LENGTH} characters`);
  const der = parseSinglePem(pem, CSR_LABELS, 'csr');
  const { signed, subjectDer, spki, extensions } = parsingUntrusted('csr', () => {
    const signed = readSigned(der);
    const [version, subject, spki, attributes, ...rest] = readChildren(signed.tbs);
    if (spki === undefined || rest.length > 0) throw new MalformedDer('CertificationRequestInfo is malformed');
    if (readSmallInteger(version) !== 0) throw new MalformedDer('unknown CSR version');
    return {
      signed,
      subjectDer: encodingOf(expectTag(subject, Tag.SEQUENCE)).slice(),
      spki: encodingOf(expectTag(spki, Tag.SEQUENCE)).slice(),
      extensions: attributes === undefined ? new Map<string, RawExtension>() : requestedExtensions(attributes),
    };
  });
  const requested = parsingUntrusted('csr extensions', () => ({
    subjectAltNames: decodeIfPresent(extensions, Oid.subjectAltName, decodeSubjectAltNames) ?? [],
    keyUsages: decodeIfPresent(extensions, Oid.keyUsage, decodeKeyUsage),
    extendedKeyUsages: decodeIfPresent(extensions, Oid.extendedKeyUsage, decodeExtendedKeyUsage),
    ...requestedNameConstraints(extensions),
  }));
  const keyAlgorithm = keyAlgorithmOfSpki(spki);
  if (signed.algorithm === null) {
    throw new X509Error(
      'unsupported-signature-algorithm',
      `CSR signature algorithm ${signed.algorithmOid} is not supported; use SHA256, SHA384 or SHA512 with RSA or ECDSA`,
    );
  }
  const { family, hash } = signed.algorithm;
  if (family !== keyFamily(keyAlgorithm)) {
    throw new X509Error(
      'bad-signature',
      `CSR signature algorithm ${signatureAlgorithmName(signed.algorithm)} does not fit its ${keyFamily(keyAlgorithm)} key`,
    );
  }
  const check = signatureCheck(spki, family, hash, encodingOf(signed.tbs), signed.signature);
  if (check === null || !(await checkSignature(check))) {
    assertImportableKey(spki);
    throw new X509Error('bad-signature', 'CSR signature is invalid');
  }
  // Once possession is proven: the weak-key arithmetic (about 0.1 ms for a new RSA modulus) is spent only on held keys.
  assertCertifiableKey(spki, keyAlgorithm);
  if (isEmptyName(subjectDer) && requested.subjectAltNames.length === 0) {
    throw new X509Error('malformed', 'CSR has neither a subject nor subject alternative names');
  }
  const parsed: ParsedCsr = {
    subjectDer,
    subject: decodeName(subjectDer),
    spki,
    keyAlgorithm,
    signatureAlgorithm: signatureAlgorithmName(signed.algorithm),
    subjectAltNames: requested.subjectAltNames,
  };
  if (requested.keyUsages !== undefined) parsed.keyUsages = requested.keyUsages;
  if (requested.extendedKeyUsages !== undefined) parsed.extendedKeyUsages = requested.extendedKeyUsages;
  if (requested.nameConstraints !== undefined) parsed.nameConstraints = requested.nameConstraints;
  if (requested.unsupportedNameConstraints !== undefined) parsed.unsupportedNameConstraints = requested.unsupportedNameConstraints;
  return parsed;
}

/** Malformed constraints are refused like any malformed extension; unsupported forms are set aside (ParsedCsr). */
function requestedNameConstraints(extensions: Map<string, RawExtension>): {
  nameConstraints?: NameConstraints;
  unsupportedNameConstraints?: string;
} {
  try {
    return { nameConstraints: decodeIfPresent(extensions, Oid.nameConstraints, decodeNameConstraints) };
  } catch (error) {
    if (error instanceof X509Error && error.kind === 'unsupported-name-constraint') return { unsupportedNameConstraints: error.message };
    throw error;
  }
}

/** The name constraints a CA issued from this CSR carries; refuses forms it could not carry. */
export function csrNameConstraints(csr: ParsedCsr): NameConstraints | null {
  if (csr.unsupportedNameConstraints !== undefined) throw new X509Error('unsupported-name-constraint', csr.unsupportedNameConstraints);
  return csr.nameConstraints ?? null;
}

/** The extensions of the CSR's extensionRequest attribute (PKCS#9), if any. */
function requestedExtensions(attributes: DerElement): Map<string, RawExtension> {
  const requests = readChildren(attributes, 0xa0).filter((attribute) => {
    const [type] = readChildren(attribute, Tag.SEQUENCE);
    return type !== undefined && readOid(type) === Oid.extensionRequest;
  });
  if (requests.length === 0) return new Map();
  if (requests.length > 1) throw new MalformedDer('more than one extensionRequest');
  const [, values, ...extra] = readChildren(requests[0]);
  if (values === undefined || extra.length > 0) throw new MalformedDer('bad extensionRequest attribute');
  const [extensions, ...more] = readChildren(values, Tag.SET);
  if (extensions === undefined || more.length > 0) throw new MalformedDer('extensionRequest must hold one value');
  return readExtensions(extensions);
}

function decodeIfPresent<T>(extensions: Map<string, RawExtension>, oid: string, decode: (value: Uint8Array) => T) {
  const extension = extensions.get(oid);
  return extension === undefined ? undefined : decode(extension.value);
}

/**
 * A CSR for a CA's own key (§4.2.5): the DN as subject, signed through the key store. Name constraints the CA was
 * created with are requested in an extensionRequest (critical), so that an outside parent can honour them.
 */
export async function buildCsr(
  subject: DistinguishedName,
  spki: Uint8Array,
  signer: Signer,
  hash: HashAlgorithm,
  nameConstraints?: NameConstraints | null,
): Promise<Uint8Array> {
  const attributes = nameConstraints
    ? sequence(
        objectIdentifier(Oid.extensionRequest),
        set(sequence(extension(Oid.nameConstraints, true, nameConstraintsValue(nameConstraints)))),
      )
    : new Uint8Array(0);
  const info = sequence(smallInteger(0), encodeName(subject), spki, contextConstructed(0, attributes));
  return signStructure(info, signer, hash);
}
