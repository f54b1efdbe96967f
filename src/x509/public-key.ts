/**
 * Subject public keys (DER SubjectPublicKeyInfo): which contract key algorithm they are, SKI; and the signatures
 * these keys make over X.509 structures (algorithm identifiers, the SIGNED envelope, verification).
 */
import { createHash, createPublicKey, verify } from 'node:crypto';
import {
  EC_CURVES,
  RSA_MODULUS_BITS,
  SIGNATURE_OIDS,
  NODE_HASH,
  type HashAlgorithm,
  type KeyAlgorithm,
  type KeyFamily,
  type Signer,
  keyFamily,
} from './algorithms.ts';
import { bitString, concat, DER_NULL, objectIdentifier, sequence, Tag, tlvHeader } from './der-writer.ts';
import {
  MalformedDer,
  encodingOf,
  expectTag,
  type DerElement,
  ecdsaDerToRaw,
  parsingUntrusted,
  readChildren,
  readOctetAlignedBitString,
  readOid,
  readSingle,
  unsignedIntegerValue,
} from './der-reader.ts';
import { toPem } from './pem.ts';
import { isSmallMultipleOfGenerator, rsaModulusWeakness } from './weak-keys.ts';
import { Oid } from './oids.ts';
import { X509Error } from './x509-errors.ts';

/** Key types people do send, named so that the rejection says what was found. */
const KNOWN_UNSUPPORTED: Record<string, string> = {
  '1.2.840.113549.1.1.10': 'RSASSA-PSS',
  '1.2.840.10040.4.1': 'DSA',
  '1.3.101.110': 'X25519',
  '1.3.101.111': 'X448',
  '1.3.101.112': 'Ed25519',
  '1.3.101.113': 'Ed448',
  '1.2.156.10197.1.301': 'SM2',
  '1.3.132.0.10': 'secp256k1',
  '1.2.840.10045.3.1.1': 'P-192',
  '1.3.132.0.33': 'P-224',
  '1.3.36.3.3.2.8.1.1.7': 'brainpoolP256r1',
};

const CURVE_BY_OID = new Map<string, { alg: KeyAlgorithm; namedCurve: string; bits: number }>(
  Object.entries(EC_CURVES).map(([alg, curve]) => [curve.oid, { alg: alg as KeyAlgorithm, ...curve }]),
);

interface SpkiParts {
  algorithmOid: string;
  /** The namedCurve OID of an EC key, else null. */
  curveOid: string | null;
  /** Whether the AlgorithmIdentifier's parameters are exactly a NULL. */
  nullParameters: boolean;
  /** The subjectPublicKey BIT STRING's bytes. */
  publicKey: Uint8Array;
}

function readSpki(spki: Uint8Array): SpkiParts {
  return parsingUntrusted('public key', () => {
    const [algorithm, subjectPublicKey, ...rest] = readChildren(readSingle(spki), Tag.SEQUENCE);
    if (subjectPublicKey === undefined || rest.length > 0) throw new X509Error('malformed', 'public key is malformed');
    const [oid, parameters, ...more] = readChildren(algorithm, Tag.SEQUENCE);
    const algorithmOid = readOid(oid);
    const curveOid = algorithmOid === Oid.ecPublicKey && parameters?.tag === Tag.OID ? readOid(parameters) : null;
    const nullParameters = parameters?.tag === Tag.NULL && parameters.end === parameters.contentStart && more.length === 0;
    return { algorithmOid, curveOid, nullParameters, publicKey: readOctetAlignedBitString(subjectPublicKey) };
  });
}

/** The contract key algorithm (§10.3) of a public key; anything else is an `unsupported-key` X509Error saying what it is. */
export function keyAlgorithmOfSpki(spki: Uint8Array): KeyAlgorithm {
  const { algorithmOid, curveOid, publicKey } = readSpki(spki);
  if (algorithmOid === Oid.rsaEncryption) return rsaKeyAlgorithm(publicKey);
  if (algorithmOid === Oid.ecPublicKey) {
    const curve = curveOid === null ? undefined : CURVE_BY_OID.get(curveOid);
    if (curve === undefined) {
      const name = curveOid === null ? 'with explicit parameters' : (KNOWN_UNSUPPORTED[curveOid] ?? curveOid);
      throw new X509Error('unsupported-key', `EC curve ${name} is not supported; use P-256, P-384 or P-521`);
    }
    const size = Math.ceil(curve.bits / 8);
    const pointLength = publicKey[0] === 4 ? 1 + 2 * size : 1 + size;
    if (![2, 3, 4].includes(publicKey[0]) || publicKey.length !== pointLength) {
      throw new X509Error('malformed', `public key is not a valid ${curve.namedCurve} point`);
    }
    return curve.alg;
  }
  const name = KNOWN_UNSUPPORTED[algorithmOid] ?? `with algorithm ${algorithmOid}`;
  throw new X509Error('unsupported-key', `${name} keys are not supported; use RSA 2048/3072/4096 or EC P-256/P-384/P-521`);
}

/**
 * Refuses a key of `alg` (keyAlgorithmOfSpki's verdict) that a requester asks this CA to certify (a CSR's) when
 * clients could not read the certificate (`malformed`: RSA parameters other than NULL; `unsupported-key`: a
 * compressed EC point) or its private key is known or easily found (`unsupported-key`, src/x509/weak-keys.ts).
 */
export function assertCertifiableKey(spki: Uint8Array, alg: KeyAlgorithm): void {
  const { nullParameters, publicKey } = readSpki(spki);
  if (keyFamily(alg) === 'RSA') {
    // Copied into the certificate, other parameters make Go refuse it ("x509: RSA key missing NULL parameters").
    if (!nullParameters) throw new X509Error('malformed', 'RSA public key algorithm parameters must be NULL (RFC 3279 §2.3.1)');
    const weakness = rsaModulusWeakness(readRsaPublicKey(publicKey).modulus);
    if (weakness !== null) throw new X509Error('unsupported-key', weakness);
    return;
  }
  const { namedCurve } = EC_CURVES[alg as keyof typeof EC_CURVES];
  if (publicKey[0] !== 4) {
    // RFC 5480 §2.2 makes only the uncompressed form mandatory; Go's x509.ParseCertificate and Java refuse the other.
    throw new X509Error(
      'unsupported-key',
      `EC public key must be an uncompressed ${namedCurve} point (RFC 5480 §2.2), not a compressed one`,
    );
  }
  if (isSmallMultipleOfGenerator(namedCurve, publicKey)) {
    throw new X509Error('unsupported-key', 'EC private key is a small number: the public key is k·G for |k| ≤ 256');
  }
}

/**
 * Throws a `malformed` X509Error when OpenSSL cannot import the key (an EC point off its curve): a failed signature
 * check is then the key's fault, not the signature's. Only a failed check pays for it.
 */
export function assertImportableKey(spki: Uint8Array): void {
  try {
    createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch {
    const { curveOid } = readSpki(spki);
    const curve = curveOid === null ? undefined : CURVE_BY_OID.get(curveOid);
    throw new X509Error('malformed', curve ? `public key is not a point on the ${curve.namedCurve} curve` : 'public key is malformed');
  }
}

/** RSAPublicKey (RFC 8017 §A.1.1): the magnitudes of its modulus and exponent. */
function readRsaPublicKey(rsaPublicKey: Uint8Array): { modulus: Uint8Array; exponent: Uint8Array } {
  return parsingUntrusted('RSA public key', () => {
    const [modulus, publicExponent, ...rest] = readChildren(readSingle(rsaPublicKey), Tag.SEQUENCE);
    if (publicExponent === undefined || rest.length > 0) throw new X509Error('malformed', 'RSA public key is malformed');
    return { modulus: unsignedIntegerValue(modulus), exponent: unsignedIntegerValue(publicExponent) };
  });
}

function rsaKeyAlgorithm(rsaPublicKey: Uint8Array): KeyAlgorithm {
  const { modulus, exponent } = readRsaPublicKey(rsaPublicKey);
  const bits = (modulus.length - 1) * 8 + bitLength(modulus[0]);
  const alg = Object.keys(RSA_MODULUS_BITS).find((name) => RSA_MODULUS_BITS[name] === bits);
  if (alg === undefined) {
    throw new X509Error('unsupported-key', `RSA key of ${bits} bits is not supported; use 2048, 3072 or 4096 bits`);
  }
  if (exponent.length !== 3 || exponent[0] !== 1 || exponent[1] !== 0 || exponent[2] !== 1) {
    throw new X509Error('unsupported-key', 'RSA public exponent must be 65537');
  }
  return alg as KeyAlgorithm;
}

const bitLength = (byte: number): number => (byte === 0 ? 0 : 32 - Math.clz32(byte));

/** The key size in bits (2048, …, 256, 384, 521), as §4.4.3's `key_algorithm_length` reports it. */
export function keySizeOf(alg: KeyAlgorithm): number {
  return keyFamily(alg) === 'RSA' ? RSA_MODULUS_BITS[alg] : EC_CURVES[alg as keyof typeof EC_CURVES].bits;
}

export const spkiToPem = (spki: Uint8Array): string => toPem('PUBLIC KEY', spki);

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING's bytes. */
export function subjectKeyIdentifier(spki: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha1').update(readSpki(spki).publicKey).digest());
}

/**
 * Whether `signature` (as X.509 carries it) over `data` was made by the key of `spki` with `family`/`hash`.
 * False for a bad signature and for a key that cannot verify it (other algorithm, unknown curve, bad point).
 */
export function verifySignature(
  spki: Uint8Array,
  family: KeyFamily,
  hash: HashAlgorithm,
  data: Uint8Array,
  signature: Uint8Array,
): boolean {
  const check = signatureCheck(spki, family, hash, data, signature);
  return check !== null && runSignatureCheck(check);
}

/** OpenSSL's part of a signature check, in plain values (it may run on another thread). */
export interface SignatureCheck {
  /** The key as PEM text: Node imports P-256 from PEM in ~33 µs, from DER or JWK in 55-70 µs. */
  keyPem: string;
  /** Node's digest name. */
  hash: string;
  data: Uint8Array;
  signature: Uint8Array;
}

/** A way to run checks: in place (`runSignatureCheck`) or off the event loop. */
export type SignatureCheckRunner = (check: SignatureCheck) => boolean | Promise<boolean>;

/**
 * The check OpenSSL is left with, or null where none can pass: a key of another family, an unknown curve, or an EC
 * signature that fails our strict DER decoding (OpenSSL then checks it as it is).
 */
export function signatureCheck(
  spki: Uint8Array,
  family: KeyFamily,
  hash: HashAlgorithm,
  data: Uint8Array,
  signature: Uint8Array,
): SignatureCheck | null {
  const { algorithmOid, curveOid } = readSpki(spki);
  const rsa = family === 'RSA' && algorithmOid === Oid.rsaEncryption;
  const curve = family === 'EC' && curveOid !== null ? CURVE_BY_OID.get(curveOid) : undefined;
  if (!rsa && (curve === undefined || ecdsaDerToRaw(signature, curve.bits) === null)) return null;
  return { keyPem: spkiToPem(spki), hash: NODE_HASH[hash], data, signature };
}

/**
 * Runs `check` here. The bare KeyObject, not an options object ({ key, format } or { key, dsaEncoding }): Node tells
 * key kinds apart by catching exceptions, 15-50 µs a call. The signature-verifier worker runs the same two calls.
 */
export function runSignatureCheck({ keyPem, hash, data, signature }: SignatureCheck): boolean {
  try {
    return verify(hash, data, createPublicKey(keyPem), signature);
  } catch {
    return false; // OpenSSL refuses keys it cannot use (e.g. a point off the curve): nothing verifies
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Signatures over X.509 structures

export interface SignatureAlgorithm {
  family: KeyFamily;
  hash: HashAlgorithm;
}

const SIGNATURE_ALGORITHM_BY_OID = new Map<string, SignatureAlgorithm>(
  Object.entries(SIGNATURE_OIDS).flatMap(([family, byHash]) =>
    Object.entries(byHash).map(([hash, oid]) => [oid, { family, hash } as SignatureAlgorithm]),
  ),
);

/** AlgorithmIdentifier: RSA PKCS#1 v1.5 carries NULL parameters, ECDSA none (RFC 4055, RFC 5758). */
export function signatureAlgorithmIdentifier({ family, hash }: SignatureAlgorithm): Uint8Array {
  const oid = objectIdentifier(SIGNATURE_OIDS[family][hash]);
  return family === 'RSA' ? sequence(oid, DER_NULL) : sequence(oid);
}

/** Java-style names, as §4.4.3 reports them: `SHA256withRSA`, `SHA384withECDSA`. */
export const signatureAlgorithmName = ({ family, hash }: SignatureAlgorithm): string => `${hash}with${family === 'RSA' ? 'RSA' : 'ECDSA'}`;

/** The AlgorithmIdentifier `signer` produces with `hash`. */
export const signatureAlgorithm = (signer: Signer, hash: HashAlgorithm): Uint8Array =>
  signatureAlgorithmIdentifier({ family: keyFamily(signer.keyAlgorithm), hash });

/**
 * Signs `tbs` and wraps it as X.509 SIGNED{} structures are: SEQUENCE { tbs, signatureAlgorithm, signature BIT
 * STRING, ...trailer } (the trailer: BasicOCSPResponse `certs`). The TBS, possibly a huge CRL, is copied once.
 */
export async function signStructure(tbs: Uint8Array, signer: Signer, hash: HashAlgorithm, ...trailer: Uint8Array[]): Promise<Uint8Array> {
  const signature = await signer.sign(hash, tbs);
  const parts = [tbs, signatureAlgorithm(signer, hash), bitString(signature), ...trailer];
  return concat([
    tlvHeader(
      Tag.SEQUENCE,
      parts.reduce((length, part) => length + part.length, 0),
    ),
    ...parts,
  ]);
}

export interface SignedStructure {
  /** The to-be-signed element, whose encoding is the signed data. */
  tbs: DerElement;
  /** The encoding of the outer AlgorithmIdentifier (a certificate repeats it inside its TBS). */
  algorithmIdentifier: Uint8Array;
  algorithmOid: string;
  /** Null for any algorithm outside §10.3's six. */
  algorithm: SignatureAlgorithm | null;
  signature: Uint8Array;
}

/** Reads a SIGNED envelope (certificate, CSR). Throws MalformedDer; callers run it inside `parsingUntrusted`. */
export function readSigned(der: Uint8Array): SignedStructure {
  const [tbs, algorithm, signature, ...rest] = readChildren(readSingle(der), Tag.SEQUENCE);
  if (signature === undefined || rest.length > 0) throw new MalformedDer('a signed structure has three parts');
  expectTag(tbs, Tag.SEQUENCE);
  const [oid, parameters, ...more] = readChildren(algorithm, Tag.SEQUENCE);
  const algorithmOid = readOid(oid);
  const known = SIGNATURE_ALGORITHM_BY_OID.get(algorithmOid) ?? null;
  const parametersFit = known?.family === 'RSA' ? parameters === undefined || parameters.tag === Tag.NULL : !parameters;
  if (more.length > 0 || (known !== null && !parametersFit)) {
    throw new MalformedDer('bad signature AlgorithmIdentifier');
  }
  return {
    tbs,
    algorithmIdentifier: encodingOf(algorithm),
    algorithmOid,
    algorithm: known,
    signature: readOctetAlignedBitString(signature),
  };
}
