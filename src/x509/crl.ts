/**
 * X.509 v2 CRLs (RFC 5280 §5), encoded straight to DER so a million revoked entries stay cheap: each entry is
 * written as bytes into a paged sink, the TBSCertList is assembled once into the buffer of the whole CRL, signed
 * once and wrapped in place.
 */
import type { HashAlgorithm, Signer } from './algorithms.ts';
import {
  MalformedDer,
  Tag,
  bitString,
  concat,
  contentOf,
  contextConstructed,
  contextPrimitive,
  expectTag,
  readChildren,
  readElement,
  readOid,
  readSingle,
  readTime,
  sequence,
  time,
  unsignedInteger,
  unsignedIntegerValue,
  type DerElement,
} from './der.ts';
import {
  ByteSink,
  bigintBytes,
  enumerated,
  hexToBytes,
  nonCriticalExtension,
  requireDerSequence,
  signatureAlgorithm,
  tlvHeader,
} from './der-writer.ts';

export const OID_CRL_NUMBER = '2.5.29.20';
export const OID_REASON_CODE = '2.5.29.21';
export const OID_AUTHORITY_KEY_IDENTIFIER = '2.5.29.35';

export interface RevokedEntry {
  /** The certificate's serial as an unsigned big-endian magnitude: bytes, or hex without separators. */
  serialNumber: Uint8Array | string;
  revocationDate: Date;
  /** CRLReason (RFC 5280 §5.3.1); 0 = unspecified, written as no reasonCode extension. */
  reasonCode: number;
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
  entries: Iterable<RevokedEntry> | AsyncIterable<RevokedEntry>;
}

export interface BuiltCrl {
  der: Uint8Array;
  revokedCount: number;
}

/** Reason codes a full CRL may carry: 7 is unassigned and removeFromCRL (8) belongs to delta CRLs only. */
export const CRL_REASON_CODES: readonly number[] = [0, 1, 2, 3, 4, 5, 6, 9, 10];

/** The crlEntryExtensions for each reason, encoded once: `Extensions { reasonCode }`, or nothing for 0. */
const ENTRY_EXTENSIONS_BY_REASON = new Map<number, Uint8Array>(
  CRL_REASON_CODES.map((reason) => [
    reason,
    reason === 0 ? new Uint8Array(0) : sequence(nonCriticalExtension(OID_REASON_CODE, enumerated(reason))),
  ]),
);

const VERSION_2 = Uint8Array.of(Tag.INTEGER, 1, 1);

export async function buildCrl(input: CrlInput, signer: Signer): Promise<BuiltCrl> {
  requireDerSequence(input.issuerName, 'issuerName');
  if (input.authorityKeyIdentifier.length === 0) throw new RangeError('authorityKeyIdentifier is empty');
  if (input.crlNumber < 0n || input.crlNumber >= 1n << 159n) throw new RangeError('crlNumber must fit 20 octets');
  if (!(input.nextUpdate.getTime() > input.thisUpdate.getTime())) throw new RangeError('nextUpdate must follow thisUpdate');

  // The entries are encoded in their own frame so their pages are unreachable by the time the CRL is signed.
  const { certificateList, tbs, revokedCount } = await encodeTbsCertList(input, signer);
  const signature = await signer.sign(input.hash, certificateList.subarray(tbs.start, tbs.end));
  return { der: wrapSigned(certificateList, tbs, signatureAlgorithm(signer, input.hash), signature), revokedCount };
}

/** Room around the TBSCertList for the CertificateList's header (tag, 4-octet length) and its algorithm and signature. */
const OUTER_HEADER_ROOM = 6;
const SIGNATURE_ROOM = 1100; // an AlgorithmIdentifier plus a BIT STRING of up to an RSA-8192 signature

/**
 * The TBSCertList, written once into the buffer that becomes the whole CertificateList (so a CRL of tens of MiB
 * exists in memory once beside its entry pages, not three times); `tbs` locates it inside `certificateList`.
 */
async function encodeTbsCertList(
  input: CrlInput,
  signer: Signer,
): Promise<{ certificateList: Uint8Array; tbs: { start: number; end: number }; revokedCount: number }> {
  const revoked = new ByteSink();
  let revokedCount = 0;
  const append = (entry: RevokedEntry): void => {
    writeRevokedEntry(revoked, entry);
    revokedCount++;
  };
  if (Symbol.iterator in input.entries) for (const entry of input.entries) append(entry);
  else for await (const entry of input.entries) append(entry);

  const head = concat([
    VERSION_2,
    signatureAlgorithm(signer, input.hash),
    input.issuerName,
    time(input.thisUpdate),
    time(input.nextUpdate),
    // RFC 5280 §5.1.2.6: with no revoked certificates the list is absent, not empty.
    revokedCount > 0 ? tlvHeader(Tag.SEQUENCE, revoked.byteLength) : new Uint8Array(0),
  ]);
  const crlExtensions = contextConstructed(
    0,
    sequence(
      nonCriticalExtension(OID_AUTHORITY_KEY_IDENTIFIER, sequence(contextPrimitive(0, input.authorityKeyIdentifier))),
      nonCriticalExtension(OID_CRL_NUMBER, unsignedInteger(bigintBytes(input.crlNumber))),
    ),
  );

  const contentLength = head.length + revoked.byteLength + crlExtensions.length;
  const tbsHeader = tlvHeader(Tag.SEQUENCE, contentLength);
  const start = OUTER_HEADER_ROOM;
  const end = start + tbsHeader.length + contentLength;
  const certificateList = new Uint8Array(end + SIGNATURE_ROOM);
  certificateList.set(tbsHeader, start);
  certificateList.set(head, start + tbsHeader.length);
  certificateList.set(crlExtensions, revoked.drainInto(certificateList, start + tbsHeader.length + head.length));
  return { certificateList, tbs: { start, end }, revokedCount };
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
function writeRevokedEntry(sink: ByteSink, entry: RevokedEntry): void {
  const extensions = ENTRY_EXTENSIONS_BY_REASON.get(entry.reasonCode);
  if (!extensions) throw new RangeError(`reason code ${entry.reasonCode} cannot appear in a CRL`);
  const serial = unsignedInteger(
    typeof entry.serialNumber === 'string' ? hexToBytes(entry.serialNumber) : entry.serialNumber,
  );
  const revocationDate = time(entry.revocationDate);
  sink.write(tlvHeader(Tag.SEQUENCE, serial.length + revocationDate.length + extensions.length));
  sink.write(serial);
  sink.write(revocationDate);
  sink.write(extensions);
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
    if (readOid(parts[0]) !== OID_CRL_NUMBER) continue;
    const value = contentOf(expectTag(parts[parts.length - 1], Tag.OCTET_STRING));
    const magnitude = unsignedIntegerValue(readSingle(value, Tag.INTEGER));
    return magnitude.reduce((number, octet) => (number << 8n) | BigInt(octet), 0n);
  }
  throw new MalformedDer('CRL has no CRL Number');
}
