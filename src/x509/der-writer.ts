/**
 * The DER writer. Certificates, CRLs and OCSP responses are encoded here rather than through pkijs/asn1js objects
 * because issuance is the hot path (the pkijs encoding alone costs about 1 ms per certificate).
 */

export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  T61_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  VISIBLE_STRING: 0x1a,
  UNIVERSAL_STRING: 0x1c,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** One TLV with a single-byte tag and the DER (shortest) length form. */
export function tlv(tag: number, content: Uint8Array): Uint8Array {
  const length = content.length;
  const lengthOctets = length < 0x80 ? 0 : length < 0x100 ? 1 : length < 0x10000 ? 2 : length < 0x1000000 ? 3 : 4;
  const out = new Uint8Array(2 + lengthOctets + length);
  out[0] = tag;
  if (lengthOctets === 0) {
    out[1] = length;
  } else {
    out[1] = 0x80 | lengthOctets;
    for (let i = 0; i < lengthOctets; i++) out[2 + i] = (length >>> (8 * (lengthOctets - 1 - i))) & 0xff;
  }
  out.set(content, 2 + lengthOctets);
  return out;
}

export const sequence = (...parts: Uint8Array[]): Uint8Array => tlv(Tag.SEQUENCE, concat(parts));
export const set = (...parts: Uint8Array[]): Uint8Array => tlv(Tag.SET, concat(parts));
export const octetString = (bytes: Uint8Array): Uint8Array => tlv(Tag.OCTET_STRING, bytes);
export const DER_NULL = new Uint8Array([Tag.NULL, 0]);
export const DER_TRUE = new Uint8Array([Tag.BOOLEAN, 1, 0xff]);
/** `[n] EXPLICIT` (or an IMPLICIT constructed type): context-specific, constructed. */
export const contextConstructed = (n: number, content: Uint8Array): Uint8Array => tlv(0xa0 | n, content);
/** `[n] IMPLICIT` of a primitive type: context-specific, primitive. */
export const contextPrimitive = (n: number, content: Uint8Array): Uint8Array => tlv(0x80 | n, content);

/** A BIT STRING whose last octet is used completely (signatures, keys). */
export function bitString(bytes: Uint8Array, unusedBits = 0): Uint8Array {
  const content = new Uint8Array(bytes.length + 1);
  content[0] = unusedBits;
  content.set(bytes, 1);
  return tlv(Tag.BIT_STRING, content);
}

/** The content octets of a non-negative INTEGER whose magnitude is `bytes` (big-endian): minimal, sign-safe. */
function unsignedIntegerContent(bytes: Uint8Array): Uint8Array {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const magnitude = bytes.length === 0 ? new Uint8Array(1) : bytes.subarray(start);
  if ((magnitude[0] & 0x80) === 0) return magnitude;
  const content = new Uint8Array(magnitude.length + 1);
  content.set(magnitude, 1);
  return content;
}

export const unsignedInteger = (bytes: Uint8Array): Uint8Array => tlv(Tag.INTEGER, unsignedIntegerContent(bytes));

export function smallInteger(value: number): Uint8Array {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`not a small non-negative integer: ${value}`);
  const bytes: number[] = [];
  for (let v = value; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  return unsignedInteger(new Uint8Array(bytes));
}

const oidCache = new Map<string, Uint8Array>();

/** An OBJECT IDENTIFIER from its dotted form; encodings are cached since the same few OIDs recur constantly. */
export function objectIdentifier(dotted: string): Uint8Array {
  let encoded = oidCache.get(dotted);
  if (encoded === undefined) {
    encoded = tlv(Tag.OID, oidContent(dotted));
    if (oidCache.size < 1000) oidCache.set(dotted, encoded);
  }
  return encoded;
}

function oidContent(dotted: string): Uint8Array {
  if (!/^[0-2](\.(0|[1-9]\d*))+$/.test(dotted)) throw new RangeError(`not a dotted OID: ${dotted}`);
  const arcs = dotted.split('.').map((arc) => BigInt(arc));
  if (arcs[0] < 2n && arcs[1] > 39n) throw new RangeError(`not a valid OID: ${dotted}`);
  const out: number[] = [];
  for (const arc of [arcs[0] * 40n + arcs[1], ...arcs.slice(2)]) {
    const base128: number[] = [Number(arc & 0x7fn)];
    for (let rest = arc >> 7n; rest > 0n; rest >>= 7n) base128.unshift(Number(rest & 0x7fn) | 0x80);
    out.push(...base128);
  }
  return new Uint8Array(out);
}

const utf8 = new TextEncoder();
export const utf8String = (value: string): Uint8Array => tlv(Tag.UTF8_STRING, utf8.encode(value));

export function printableString(value: string): Uint8Array {
  if (!/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(value)) throw new RangeError('not a PrintableString');
  return tlv(Tag.PRINTABLE_STRING, utf8.encode(value));
}

/** The content octets of an IA5String (ASCII), e.g. for the IMPLICIT-tagged GeneralName forms. */
export function ascii(value: string): Uint8Array {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: IA5 is exactly the 7-bit range, controls included
  if (!/^[\x00-\x7f]*$/.test(value)) throw new RangeError('not an IA5String');
  return utf8.encode(value);
}

const pad2 = (n: number): string => String(n).padStart(2, '0');

/** MMDDHHMMSSZ of `date` (whole seconds, UTC), after checking that its year has four digits. */
function monthToSecond(date: Date): string {
  const year = date.getUTCFullYear();
  if (!Number.isFinite(date.getTime()) || year < 0 || year > 9999) throw new RangeError('date out of range');
  return (
    pad2(date.getUTCMonth() + 1) +
    pad2(date.getUTCDate()) +
    pad2(date.getUTCHours()) +
    pad2(date.getUTCMinutes()) +
    pad2(date.getUTCSeconds()) +
    'Z'
  );
}

/** GeneralizedTime to the whole second, `Z` (RFC 5280 4.1.2.5.2; OCSP uses it for every date). */
export function generalizedTime(date: Date): Uint8Array {
  const rest = monthToSecond(date);
  return tlv(Tag.GENERALIZED_TIME, utf8.encode(String(date.getUTCFullYear()).padStart(4, '0') + rest));
}

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds, always `Z`. */
export function time(date: Date): Uint8Array {
  const rest = monthToSecond(date);
  const year = date.getUTCFullYear();
  return year >= 1950 && year < 2050 ? tlv(Tag.UTC_TIME, utf8.encode(pad2(year % 100) + rest)) : generalizedTime(date);
}

/**
 * WebCrypto's ECDSA signature (r || s, each padded to the curve size) as the DER ECDSA-Sig-Value that X.509
 * carries. `keyBits` is the curve size (256, 384, 521).
 */
export function ecdsaRawToDer(raw: Uint8Array, keyBits: number): Uint8Array {
  const size = Math.ceil(keyBits / 8);
  if (raw.length !== 2 * size) throw new RangeError(`ECDSA signature must be ${2 * size} bytes, got ${raw.length}`);
  return sequence(unsignedInteger(raw.subarray(0, size)), unsignedInteger(raw.subarray(size)));
}

/** Tag and length octets of a TLV whose `contentLength` content octets are written separately. */
export function tlvHeader(tag: number, contentLength: number): Uint8Array {
  if (contentLength < 0x80) return Uint8Array.of(tag, contentLength);
  const octets: number[] = [];
  for (let rest = contentLength; rest > 0; rest = Math.floor(rest / 256)) octets.unshift(rest % 256);
  return Uint8Array.of(tag, 0x80 | octets.length, ...octets);
}

export function enumerated(value: number): Uint8Array {
  if (!Number.isInteger(value) || value < 0 || value > 127) throw new RangeError(`ENUMERATED ${value} out of range`);
  return Uint8Array.of(Tag.ENUMERATED, 1, value);
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

export const bytesToHex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex');
