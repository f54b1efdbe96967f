/**
 * A small DER writer and reader. Certificates are encoded here rather than through pkijs/asn1js objects because
 * issuance is the hot path (the pkijs encoding alone costs about 1 ms per certificate); parsing hostile input with
 * a reader that checks every bound keeps failures predictable.
 */
import { X509Error } from './x509-errors.ts';

// ---------------------------------------------------------------------------------------------------------------
// Writing

export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
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
  if (!/^[\x00-\x7f]*$/.test(value)) throw new RangeError('not an IA5String');
  return utf8.encode(value);
}

const pad2 = (n: number): string => String(n).padStart(2, '0');

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds, always `Z`. */
export function time(date: Date): Uint8Array {
  const year = date.getUTCFullYear();
  if (!Number.isFinite(date.getTime()) || year < 0 || year > 9999) throw new RangeError('date out of range');
  const rest =
    pad2(date.getUTCMonth() + 1) +
    pad2(date.getUTCDate()) +
    pad2(date.getUTCHours()) +
    pad2(date.getUTCMinutes()) +
    pad2(date.getUTCSeconds()) +
    'Z';
  return year >= 1950 && year < 2050
    ? tlv(Tag.UTC_TIME, utf8.encode(pad2(year % 100) + rest))
    : tlv(Tag.GENERALIZED_TIME, utf8.encode(String(year).padStart(4, '0') + rest));
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

/** The reverse of `ecdsaRawToDer`, for WebCrypto verification; null when `der` is not a fitting ECDSA-Sig-Value. */
export function ecdsaDerToRaw(der: Uint8Array, keyBits: number): Uint8Array<ArrayBuffer> | null {
  const size = Math.ceil(keyBits / 8);
  try {
    const [r, s] = readChildren(readSingle(der), Tag.SEQUENCE);
    const raw = new Uint8Array(2 * size);
    for (const [index, part] of [r, s].entries()) {
      const magnitude = unsignedIntegerValue(part);
      if (magnitude.length > size) return null;
      raw.set(magnitude, (index + 1) * size - magnitude.length);
    }
    return raw;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Reading

/** Thrown by the reader; public parse functions turn it into an X509Error naming what was being parsed. */
export class MalformedDer extends Error {}

export interface DerElement {
  readonly tag: number;
  /** The buffer the element lives in, and its bounds: [start, end) whole TLV, [contentStart, end) content. */
  readonly buffer: Uint8Array;
  readonly start: number;
  readonly contentStart: number;
  readonly end: number;
}

export const contentOf = (el: DerElement): Uint8Array => el.buffer.subarray(el.contentStart, el.end);
export const encodingOf = (el: DerElement): Uint8Array => el.buffer.subarray(el.start, el.end);

/** Reads the TLV at `offset`, which must end by `limit`. Only DER: low tag numbers, definite shortest lengths. */
export function readElement(buffer: Uint8Array, offset: number, limit = buffer.length): DerElement {
  if (offset + 2 > limit) throw new MalformedDer('truncated element');
  const tag = buffer[offset];
  if ((tag & 0x1f) === 0x1f) throw new MalformedDer('high tag numbers are not supported');
  const first = buffer[offset + 1];
  let length = first;
  let contentStart = offset + 2;
  if (first & 0x80) {
    const octets = first & 0x7f;
    if (octets === 0) throw new MalformedDer('indefinite length is not DER');
    if (octets > 4) throw new MalformedDer('element too long');
    if (contentStart + octets > limit) throw new MalformedDer('truncated length');
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + buffer[contentStart + i];
    if (length < 0x80 || buffer[contentStart] === 0) throw new MalformedDer('length not in shortest form');
    contentStart += octets;
  }
  const end = contentStart + length;
  if (end > limit) throw new MalformedDer('truncated content');
  return { tag, buffer, start: offset, contentStart, end };
}

/** Reads a buffer that must hold exactly one element. */
export function readSingle(buffer: Uint8Array, expectedTag?: number): DerElement {
  const el = readElement(buffer, 0);
  if (el.end !== buffer.length) throw new MalformedDer('trailing bytes after the element');
  if (expectedTag !== undefined) expectTag(el, expectedTag);
  return el;
}

export function expectTag(el: DerElement, tag: number): DerElement {
  if (el.tag !== tag) throw new MalformedDer(`expected tag 0x${tag.toString(16)}, found 0x${el.tag.toString(16)}`);
  return el;
}

/** The elements inside a constructed element (optionally checking its tag). */
export function readChildren(el: DerElement, expectedTag?: number): DerElement[] {
  if (expectedTag !== undefined) expectTag(el, expectedTag);
  if ((el.tag & 0x20) === 0) throw new MalformedDer('expected a constructed element');
  const children: DerElement[] = [];
  for (let offset = el.contentStart; offset < el.end; ) {
    const child = readElement(el.buffer, offset, el.end);
    children.push(child);
    offset = child.end;
  }
  return children;
}

export function readOid(el: DerElement): string {
  const content = contentOf(expectTag(el, Tag.OID));
  if (content.length === 0 || content[content.length - 1] & 0x80) throw new MalformedDer('bad OID');
  const arcs: bigint[] = [];
  let value = 0n;
  let fresh = true;
  for (const byte of content) {
    if (fresh && byte === 0x80) throw new MalformedDer('OID arc not in shortest form');
    value = (value << 7n) | BigInt(byte & 0x7f);
    fresh = (byte & 0x80) === 0;
    if (fresh) {
      arcs.push(value);
      value = 0n;
    }
  }
  const first = arcs[0] < 80n ? arcs[0] / 40n : 2n;
  return [first, arcs[0] - first * 40n, ...arcs.slice(1)].join('.');
}

/** The magnitude of a non-negative INTEGER (the sign octet removed). Negative values are malformed here. */
export function unsignedIntegerValue(el: DerElement): Uint8Array {
  const content = contentOf(expectTag(el, Tag.INTEGER));
  if (content.length === 0) throw new MalformedDer('empty INTEGER');
  if (content[0] & 0x80) throw new MalformedDer('negative INTEGER');
  if (content.length > 1 && content[0] === 0 && (content[1] & 0x80) === 0) {
    throw new MalformedDer('INTEGER not in shortest form');
  }
  return content[0] === 0 && content.length > 1 ? content.subarray(1) : content;
}

export function readSmallInteger(el: DerElement): number {
  const magnitude = unsignedIntegerValue(el);
  if (magnitude.length > 6) throw new MalformedDer('INTEGER too large');
  return magnitude.reduce((value, byte) => value * 256 + byte, 0);
}

export function readBoolean(el: DerElement): boolean {
  const content = contentOf(expectTag(el, Tag.BOOLEAN));
  if (content.length !== 1 || (content[0] !== 0 && content[0] !== 0xff)) throw new MalformedDer('bad BOOLEAN');
  return content[0] === 0xff;
}

/** The bytes of a BIT STRING that must use whole octets (keys, signatures). */
export function readOctetAlignedBitString(el: DerElement): Uint8Array {
  const content = contentOf(expectTag(el, Tag.BIT_STRING));
  if (content.length === 0 || content[0] !== 0) throw new MalformedDer('BIT STRING with unused bits');
  return content.subarray(1);
}

const utf8Strict = new TextDecoder('utf-8', { fatal: true });
const latin1 = new TextDecoder('latin1');
const utf16be = new TextDecoder('utf-16be', { fatal: true });

/** The text of a directory-string-like element; null for a tag that is not a character string. */
export function readString(el: DerElement): string | null {
  const content = contentOf(el);
  switch (el.tag) {
    case Tag.UTF8_STRING:
      return utf8Strict.decode(content);
    case Tag.PRINTABLE_STRING:
    case Tag.IA5_STRING:
    case Tag.VISIBLE_STRING:
    case Tag.T61_STRING:
      return latin1.decode(content);
    case Tag.BMP_STRING:
      return utf16be.decode(content);
    case Tag.UNIVERSAL_STRING: {
      if (content.length % 4 !== 0) throw new MalformedDer('bad UniversalString');
      const view = new DataView(content.buffer, content.byteOffset, content.length);
      const codePoints = Array.from({ length: content.length / 4 }, (_, i) => view.getUint32(4 * i));
      if (codePoints.some((cp) => cp > 0x10ffff)) throw new MalformedDer('bad UniversalString');
      return String.fromCodePoint(...codePoints);
    }
    default:
      return null;
  }
}

export function readTime(el: DerElement): Date {
  const text = latin1.decode(contentOf(el));
  const match =
    el.tag === Tag.UTC_TIME
      ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)
      : el.tag === Tag.GENERALIZED_TIME
        ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.\d+)?Z$/.exec(text)
        : null;
  if (!match) throw new MalformedDer('bad time');
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number);
  const fullYear = el.tag === Tag.UTC_TIME ? (year < 50 ? 2000 + year : 1900 + year) : year;
  const date = new Date(Date.UTC(fullYear, month - 1, day, hour, minute, second));
  if (date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day || hour > 23 || minute > 59 || second > 59) {
    throw new MalformedDer('bad time');
  }
  date.setUTCFullYear(fullYear); // Date.UTC maps years 0-99 to 19xx
  return date;
}

/**
 * Runs a parse step on untrusted bytes and guarantees that only X509Errors leave it: reader failures (and any
 * stray TypeError/RangeError on hostile input) become `malformed` naming `what`.
 */
export function parsingUntrusted<T>(what: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof X509Error) throw error;
    const detail = error instanceof MalformedDer ? `: ${error.message}` : '';
    throw new X509Error('malformed', `${what} is not valid DER${detail}`);
  }
}
