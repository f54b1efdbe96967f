/**
 * The DER reader: parsing hostile input with a reader that checks every bound keeps failures predictable. Reader
 * failures are MalformedDer; public parse functions turn them into an X509Error naming what was being parsed.
 */
import { Tag } from './der-writer.ts';
import { X509Error } from './x509-errors.ts';

/** Thrown by the reader. */
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

/**
 * The longest arc read, in octets: 140 bits, past UUID arcs (2.25.x, 128 bits in 19 octets). Growing a BigInt octet by
 * octet costs the square of its length: one arc of 64 KB, an OCSP request's worth, took half a second.
 */
export const MAX_ARC_OCTETS = 20;

export function readOid(el: DerElement): string {
  const content = contentOf(expectTag(el, Tag.OID));
  if (content.length === 0 || content[content.length - 1] & 0x80) throw new MalformedDer('bad OID');
  // Arcs are summed as numbers while exact (below 2^52 after the next shift), as BigInt past that (UUID arcs are 128
  // bits): BigInt arithmetic on every arc was most of a CSR's DER parsing.
  const arcs: (number | bigint)[] = [];
  let value = 0;
  let big: bigint | undefined;
  let fresh = true;
  let octets = 0;
  for (const byte of content) {
    if (fresh && byte === 0x80) throw new MalformedDer('OID arc not in shortest form');
    if (++octets > MAX_ARC_OCTETS) throw new MalformedDer(`OID arc longer than ${MAX_ARC_OCTETS} octets`);
    if (big === undefined && value < 2 ** 45) value = value * 128 + (byte & 0x7f);
    else big = ((big ?? BigInt(value)) << 7n) | BigInt(byte & 0x7f);
    fresh = (byte & 0x80) === 0;
    if (fresh) {
      arcs.push(big ?? value);
      octets = 0;
      value = 0;
      big = undefined;
    }
  }
  const [joint] = arcs as [number | bigint];
  // The first two arcs share one value: 40 * first + second, where only the arc 2 may have a second above 39.
  const [first, second] =
    typeof joint === 'bigint' ? [2, joint - 80n] : joint < 80 ? [Math.floor(joint / 40), joint % 40] : [2, joint - 80];
  return [first, second, ...arcs.slice(1)].join('.');
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

/** `der` itself, once checked to be exactly one DER SEQUENCE; otherwise a TypeError naming `what`. */
export function requireDerSequence(der: Uint8Array, what: string): Uint8Array {
  try {
    readSingle(der, Tag.SEQUENCE);
    return der;
  } catch (cause) {
    throw new TypeError(`${what} is not a DER SEQUENCE`, { cause });
  }
}
