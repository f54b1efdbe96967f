/**
 * X.509 v2 CRLs (RFC 5280 §5), encoded straight to DER so a million revoked entries stay cheap: the entries are
 * written into the buffer that becomes the whole CRL (sized up front when their total is known), the headers
 * before them once their lengths are known, and the CRL is signed once and wrapped in place.
 */
import type { HashAlgorithm, Signer } from './algorithms.ts';
import {
  bigintBytes,
  bitString,
  concat,
  contextConstructed,
  contextPrimitive,
  enumerated,
  hexToBytes,
  sequence,
  Tag,
  time,
  tlvHeader,
  unsignedInteger,
} from './der-writer.ts';
import {
  contentOf,
  type DerElement,
  expectTag,
  MalformedDer,
  readChildren,
  readElement,
  readOid,
  readSingle,
  readTime,
  requireDerSequence,
  unsignedIntegerValue,
} from './der-reader.ts';
import { signatureAlgorithm } from './public-key.ts';
import { extension } from './extensions.ts';
import { Oid } from './oids.ts';

export interface RevokedEntry {
  /** The certificate's serial as an unsigned big-endian magnitude: bytes, or hex without separators. */
  serialNumber: Uint8Array | string;
  revocationDate: Date;
  /** CRLReason (RFC 5280 §5.3.1); 0 = unspecified, written as no reasonCode extension. */
  reasonCode: number;
}

/**
 * Entries already encoded, concatenated: `count` revokedCertificates SEQUENCEs exactly as encodeRevokedEntry
 * writes them (the database stores each revocation's entry so, see the revocations_entry_der migration).
 */
export interface EncodedEntries {
  der: Uint8Array;
  count: number;
}

export interface CrlInput {
  /** The issuer's DER Name, taken raw from the CA certificate's subject. */
  issuerName: Uint8Array;
  /** The CA certificate's subject key identifier. */
  authorityKeyIdentifier: Uint8Array;
  crlNumber: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  hash: HashAlgorithm;
  entries: Iterable<RevokedEntry | EncodedEntries> | AsyncIterable<RevokedEntry | EncodedEntries>;
  /** The entries' encoded size when known: the CRL is then written into one buffer of its final size. */
  entriesByteLength?: number;
}

export interface BuiltCrl {
  der: Uint8Array;
  revokedCount: number;
  /** Where the entries lie in `der` (the content of revokedCertificates; empty when there are none). */
  entries: { start: number; end: number };
}

/** Reason codes a full CRL may carry: 7 is unassigned and removeFromCRL (8) belongs to delta CRLs only. */
export const CRL_REASON_CODES: readonly number[] = [0, 1, 2, 3, 4, 5, 6, 9, 10];

/** The crlEntryExtensions for each reason, encoded once: `Extensions { reasonCode }`, or nothing for 0. */
const ENTRY_EXTENSIONS_BY_REASON = new Map<number, Uint8Array>(
  CRL_REASON_CODES.map((reason) => [
    reason,
    reason === 0 ? new Uint8Array(0) : sequence(extension(Oid.reasonCode, false, enumerated(reason))),
  ]),
);

const VERSION_2 = Uint8Array.of(Tag.INTEGER, 1, 1);

export async function buildCrl(input: CrlInput, signer: Signer): Promise<BuiltCrl> {
  requireDerSequence(input.issuerName, 'issuerName');
  if (input.authorityKeyIdentifier.length === 0) throw new RangeError('authorityKeyIdentifier is empty');
  if (input.crlNumber < 0n || input.crlNumber >= 1n << 159n) throw new RangeError('crlNumber must fit 20 octets');
  if (!(input.nextUpdate.getTime() > input.thisUpdate.getTime())) throw new RangeError('nextUpdate must follow thisUpdate');

  const algorithm = signatureAlgorithm(signer, input.hash);
  const { certificateList, tbs, entries, revokedCount } = await encodeTbsCertList(input, algorithm);
  const signature = await signer.sign(input.hash, certificateList.subarray(tbs.start, tbs.end));
  const der = wrapSigned(certificateList, tbs, algorithm, signature);
  const offset = der.byteOffset - certificateList.byteOffset;
  return { der, revokedCount, entries: { start: entries.start - offset, end: entries.end - offset } };
}

/** The most a header (tag and a length of up to 4 octets) takes. */
const HEADER_ROOM = 6;
const SIGNATURE_ROOM = 1100; // an AlgorithmIdentifier plus a BIT STRING of up to an RSA-8192 signature
/** Where the entries start when their size is not known, and the least a buffer grows by. */
const UNSIZED_ENTRIES = 64 << 10;

/**
 * The TBSCertList, written once into the buffer that becomes the whole CertificateList: the entries go after
 * room for the CertificateList, TBSCertList and revokedCertificates headers and the fields before them, which
 * are written right-aligned against the entries once the lengths are known. `tbs` locates it in `certificateList`.
 */
async function encodeTbsCertList(
  input: CrlInput,
  algorithm: Uint8Array,
): Promise<{
  certificateList: Uint8Array;
  tbs: { start: number; end: number };
  entries: { start: number; end: number };
  revokedCount: number;
}> {
  const head = concat([VERSION_2, algorithm, input.issuerName, time(input.thisUpdate), time(input.nextUpdate)]);
  const crlExtensions = contextConstructed(
    0,
    sequence(
      extension(Oid.authorityKeyIdentifier, false, sequence(contextPrimitive(0, input.authorityKeyIdentifier))),
      extension(Oid.crlNumber, false, unsignedInteger(bigintBytes(input.crlNumber))),
    ),
  );
  const entriesStart = 3 * HEADER_ROOM + head.length;
  const tail = crlExtensions.length + SIGNATURE_ROOM;
  let buffer = new Uint8Array(entriesStart + (input.entriesByteLength ?? UNSIZED_ENTRIES) + tail);
  let end = entriesStart;
  let revokedCount = 0;
  const write = (bytes: Uint8Array): void => {
    if (buffer.length - end - tail < bytes.length) {
      // Only when the size was not known (or more entries came than announced): one copy per growth.
      const grown = new Uint8Array(Math.max(Math.ceil(buffer.length * 1.5), end + bytes.length + tail + UNSIZED_ENTRIES));
      grown.set(buffer.subarray(0, end));
      buffer = grown;
    }
    buffer.set(bytes, end);
    end += bytes.length;
  };
  const append = (entry: RevokedEntry | EncodedEntries): void => {
    if ('der' in entry) {
      write(entry.der);
      revokedCount += entry.count;
    } else {
      write(encodeRevokedEntry(entry));
      revokedCount++;
    }
  };
  if (Symbol.iterator in input.entries) for (const entry of input.entries) append(entry);
  else for await (const entry of input.entries) append(entry);

  // RFC 5280 §5.1.2.6: with no revoked certificates the list is absent, not empty.
  const revokedHeader = revokedCount > 0 ? tlvHeader(Tag.SEQUENCE, end - entriesStart) : new Uint8Array(0);
  const tbsContentLength = head.length + revokedHeader.length + (end - entriesStart) + crlExtensions.length;
  const tbsHeader = tlvHeader(Tag.SEQUENCE, tbsContentLength);
  const start = entriesStart - revokedHeader.length - head.length - tbsHeader.length;
  buffer.set(tbsHeader, start);
  buffer.set(head, start + tbsHeader.length);
  buffer.set(revokedHeader, entriesStart - revokedHeader.length);
  buffer.set(crlExtensions, end);
  return { certificateList: buffer, tbs: { start, end: end + crlExtensions.length }, entries: { start: entriesStart, end }, revokedCount };
}

/** SEQUENCE { tbs, algorithm, signature BIT STRING } in place around the TBS, returned as a view of `buffer`. */
function wrapSigned(buffer: Uint8Array, tbs: { start: number; end: number }, algorithm: Uint8Array, signature: Uint8Array): Uint8Array {
  const signatureBits = bitString(signature);
  if (algorithm.length + signatureBits.length > SIGNATURE_ROOM) throw new RangeError('signature too large');
  buffer.set(algorithm, tbs.end);
  buffer.set(signatureBits, tbs.end + algorithm.length);
  const end = tbs.end + algorithm.length + signatureBits.length;
  const header = tlvHeader(Tag.SEQUENCE, end - tbs.start);
  buffer.set(header, tbs.start - header.length);
  return buffer.subarray(tbs.start - header.length, end);
}

/** revokedCertificates entry: SEQUENCE { userCertificate, revocationDate, crlEntryExtensions OPTIONAL }. */
export function encodeRevokedEntry(entry: RevokedEntry): Uint8Array {
  const extensions = ENTRY_EXTENSIONS_BY_REASON.get(entry.reasonCode);
  if (!extensions) throw new RangeError(`reason code ${entry.reasonCode} cannot appear in a CRL`);
  const serial = unsignedInteger(typeof entry.serialNumber === 'string' ? hexToBytes(entry.serialNumber) : entry.serialNumber);
  return sequence(serial, time(entry.revocationDate), extensions);
}

export interface CrlSummary {
  crlNumber: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  revokedCount: number;
}

/**
 * The few facts the authenticated CRL read reports, by walking the DER: entries are counted, not decoded, so a
 * CRL of any size costs one pass over their headers. Throws MalformedDer for anything that is not such a CRL.
 */
export function parseCrlSummary(der: Uint8Array): CrlSummary {
  const [tbs] = readChildren(readSingle(der), Tag.SEQUENCE);
  const fields = readChildren(required(tbs, 'tbsCertList'), Tag.SEQUENCE);
  // version (absent in v1), signature, issuer, then the dates
  let index = fields[0]?.tag === Tag.INTEGER ? 3 : 2;
  const next = (): DerElement | undefined => fields[index++];
  const thisUpdate = readTime(required(next(), 'thisUpdate'));
  const nextUpdateField = required(next(), 'nextUpdate');
  if (nextUpdateField.tag !== Tag.UTC_TIME && nextUpdateField.tag !== Tag.GENERALIZED_TIME) {
    throw new MalformedDer('CRL has no nextUpdate');
  }

  let revokedCount = 0;
  let field = next();
  if (field?.tag === Tag.SEQUENCE) {
    for (let offset = field.contentStart; offset < field.end; revokedCount++) {
      offset = readElement(der, offset, field.end).end;
    }
    field = next();
  }
  if (field?.tag !== 0xa0) throw new MalformedDer('CRL has no extensions');
  const [extensions] = readChildren(field);
  return {
    crlNumber: crlNumberOf(required(extensions, 'crlExtensions')),
    thisUpdate,
    nextUpdate: readTime(nextUpdateField),
    revokedCount,
  };
}

function required(field: DerElement | undefined, what: string): DerElement {
  if (!field) throw new MalformedDer(`CRL has no ${what}`);
  return field;
}

function crlNumberOf(extensions: DerElement): bigint {
  for (const extension of readChildren(extensions, Tag.SEQUENCE)) {
    const parts = readChildren(extension, Tag.SEQUENCE);
    if (readOid(parts[0]) !== Oid.crlNumber) continue;
    const value = contentOf(expectTag(parts[parts.length - 1], Tag.OCTET_STRING));
    const magnitude = unsignedIntegerValue(readSingle(value, Tag.INTEGER));
    return magnitude.reduce((number, octet) => (number << 8n) | BigInt(octet), 0n);
  }
  throw new MalformedDer('CRL has no CRL Number');
}
