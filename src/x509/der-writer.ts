/**
 * What the revocation codecs (CRL, OCSP) need on top of der.ts: TLV headers for content written separately, the
 * few encoders der.ts lacks, and the X.509 SIGNED{} wrapper over a Signer.
 */
import { keyFamily, type HashAlgorithm, type Signer } from './algorithms.ts';
import { Tag, bitString, concat, objectIdentifier, readSingle, sequence, tlv } from './der.ts';
import { signatureAlgorithmIdentifier } from './public-key.ts';

/** Tag and length octets of a TLV whose `contentLength` content octets are written separately. */
export function tlvHeader(tag: number, contentLength: number): Uint8Array {
  if (contentLength < 0x80) return Uint8Array.of(tag, contentLength);
  const octets: number[] = [];
  for (let rest = contentLength; rest > 0; rest = Math.floor(rest / 256)) octets.unshift(rest % 256);
  return Uint8Array.of(tag, 0x80 | octets.length, ...octets);
}

const ENUMERATED = 0x0a;

export function enumerated(value: number): Uint8Array {
  if (!Number.isInteger(value) || value < 0 || value > 127) throw new RangeError(`ENUMERATED ${value} out of range`);
  return Uint8Array.of(ENUMERATED, 1, value);
}

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

/** GeneralizedTime to the whole second, `Z` (RFC 5280 4.1.2.5.2; OCSP uses it for every date). */
export function generalizedTime(date: Date): Uint8Array {
  const year = date.getUTCFullYear();
  if (!Number.isFinite(date.getTime()) || year < 0 || year > 9999) throw new RangeError('date out of range');
  const text =
    pad(year, 4) +
    pad(date.getUTCMonth() + 1, 2) +
    pad(date.getUTCDate(), 2) +
    pad(date.getUTCHours(), 2) +
    pad(date.getUTCMinutes(), 2) +
    pad(date.getUTCSeconds(), 2) +
    'Z';
  return tlv(Tag.GENERALIZED_TIME, Uint8Array.from(text, (c) => c.charCodeAt(0)));
}

/** Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }, non-critical. */
export const nonCriticalExtension = (oid: string, value: Uint8Array): Uint8Array =>
  sequence(objectIdentifier(oid), tlv(Tag.OCTET_STRING, value));

/** The AlgorithmIdentifier `signer` produces with `hash`. */
export const signatureAlgorithm = (signer: Signer, hash: HashAlgorithm): Uint8Array =>
  signatureAlgorithmIdentifier({ family: keyFamily(signer.keyAlgorithm), hash });

/**
 * SIGNED{} of X.509: SEQUENCE { tbs, signatureAlgorithm, signature BIT STRING, ...trailer }. Unlike public-key.ts's
 * signStructure it takes trailing fields (BasicOCSPResponse `certs`) and copies the TBS only once.
 */
export async function signStructure(
  tbs: Uint8Array,
  signer: Signer,
  hash: HashAlgorithm,
  ...trailer: Uint8Array[]
): Promise<Uint8Array> {
  const signature = await signer.sign(hash, tbs);
  const parts = [tbs, signatureAlgorithm(signer, hash), bitString(signature), ...trailer];
  // One copy of a possibly huge TBS (der.ts's sequence() would copy it twice).
  return concat([tlvHeader(Tag.SEQUENCE, parts.reduce((length, part) => length + part.length, 0)), ...parts]);
}

/** `der` itself, once checked to be exactly one DER SEQUENCE; otherwise a TypeError naming `what`. */
export function requireDerSequence(der: Uint8Array, what: string): Uint8Array {
  try {
    readSingle(der, Tag.SEQUENCE);
    return der;
  } catch (cause) {
    throw new TypeError(`${what} is not a DER SEQUENCE`, { cause });
  }
}

/** The big-endian magnitude of a non-negative bigint. */
export function bigintBytes(value: bigint): Uint8Array {
  if (value < 0n) throw new RangeError('negative integers are not supported');
  return hexToBytes(value.toString(16));
}

const HEX = /^[0-9a-fA-F]*$/;

/** Hex without separators (odd length allowed) to bytes. */
export function hexToBytes(hex: string): Uint8Array {
  if (!HEX.test(hex)) throw new RangeError(`not a hex string: ${hex.slice(0, 40)}`);
  return Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex');
}

export const bytesToHex = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex');
