/**
 * OCSP (RFC 6960) as pure functions: a strict request parser that fails only with OcspMalformedError, a
 * BasicOCSPResponse builder signed through a Signer, error responses, CertID matching and the GET form.
 */
import { createHash } from 'node:crypto';
import type { HashAlgorithm, Signer } from './algorithms.ts';
import {
  bytesToHex,
  concat,
  contextConstructed,
  contextPrimitive,
  enumerated,
  generalizedTime,
  objectIdentifier,
  octetString,
  sequence,
  Tag,
} from './der-writer.ts';
import {
  contentOf,
  type DerElement,
  encodingOf,
  expectTag,
  readBoolean,
  readChildren,
  readOctetAlignedBitString,
  readOid,
  readSingle,
  readSmallInteger,
  requireDerSequence,
  unsignedIntegerValue,
} from './der-reader.ts';
import { signStructure } from './public-key.ts';
import { extension } from './extensions.ts';
import { Oid } from './oids.ts';
import { CRL_REASON_CODES } from './crl.ts';

/** CertID hash algorithms this responder can match (openssl sends SHA-1 unless told otherwise). */
export const CERT_ID_HASH_OIDS = {
  SHA1: Oid.sha1,
  SHA256: Oid.sha256,
  SHA384: Oid.sha384,
  SHA512: Oid.sha512,
} as const;
const NODE_HASH_BY_OID = new Map<string, string>([
  [CERT_ID_HASH_OIDS.SHA1, 'sha1'],
  [CERT_ID_HASH_OIDS.SHA256, 'sha256'],
  [CERT_ID_HASH_OIDS.SHA384, 'sha384'],
  [CERT_ID_HASH_OIDS.SHA512, 'sha512'],
]);

/**
 * CertIDs per request. Real clients ask about one certificate (RFC 5019 §2.1.1 requires it); each CertID costs a
 * lookup, so a 64 KB request of ~860 CertIDs was an amplifier. More is malformedRequest.
 */
export const MAX_OCSP_CERT_IDS = 10;
/** RFC 8954 §2.1: a nonce is 1 to 32 octets. A longer one is malformedRequest, not echoed. */
export const MAX_OCSP_NONCE_OCTETS = 32;

export class OcspMalformedError extends Error {
  override name = 'OcspMalformedError';
}

// ---------------------------------------------------------------------------------------------------------------
// Requests

export interface OcspCertIdRequest {
  /** The request's CertID DER, to echo unchanged in the response. */
  certId: Uint8Array;
  hashAlgorithmOid: string;
  issuerNameHash: Uint8Array;
  issuerKeyHash: Uint8Array;
  /** Lower-case hex of the serial's unsigned magnitude, without leading zero octets. */
  serialNumberHex: string;
}

export interface OcspRequest {
  requests: OcspCertIdRequest[];
  /** The nonce extension's extnValue octets, to echo verbatim. */
  nonce?: Uint8Array;
}

/** Parses a DER OCSPRequest. Any defect, of any kind, surfaces as OcspMalformedError. */
export function parseOcspRequest(der: Uint8Array): OcspRequest {
  try {
    if (!(der instanceof Uint8Array)) throw new TypeError('request is not bytes');
    return readOcspRequest(der);
  } catch (cause) {
    if (cause instanceof OcspMalformedError) throw cause;
    throw new OcspMalformedError(`malformed OCSP request: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}

/** `[n]` context-specific constructed tag, as EXPLICIT tagging uses. */
const explicitTag = (n: number): number => 0xa0 | n;

/** The single element inside an EXPLICIT tag. */
function unwrapExplicit(wrapper: DerElement): DerElement {
  const children = readChildren(wrapper);
  if (children.length !== 1) throw new OcspMalformedError('an explicit tag must hold one element');
  return children[0];
}

function readOcspRequest(der: Uint8Array): OcspRequest {
  // OCSPRequest ::= SEQUENCE { tbsRequest, optionalSignature [0] EXPLICIT Signature OPTIONAL } (signature ignored)
  const [tbsRequest, signature, ...extra] = readChildren(readSingle(der), Tag.SEQUENCE);
  if (!tbsRequest || extra.length > 0 || (signature && signature.tag !== explicitTag(0))) {
    throw new OcspMalformedError('bad OCSPRequest');
  }

  // TBSRequest ::= SEQUENCE { version [0], requestorName [1], requestList, requestExtensions [2] }
  const fields = readChildren(tbsRequest, Tag.SEQUENCE);
  let index = 0;
  if (fields[index]?.tag === explicitTag(0) && readSmallInteger(unwrapExplicit(fields[index++])) !== 0) {
    throw new OcspMalformedError('unsupported OCSP request version');
  }
  if (fields[index]?.tag === explicitTag(1)) index++;
  const requestList = fields[index++];
  if (!requestList) throw new OcspMalformedError('no requestList');
  const listed = readChildren(requestList, Tag.SEQUENCE);
  if (listed.length === 0) throw new OcspMalformedError('empty requestList');
  if (listed.length > MAX_OCSP_CERT_IDS) throw new OcspMalformedError(`more than ${MAX_OCSP_CERT_IDS} CertIDs`);
  const requests = listed.map(readRequest);

  let nonce: Uint8Array | undefined;
  if (fields[index]?.tag === explicitTag(2)) {
    nonce = extensionValues(unwrapExplicit(fields[index++])).get(Oid.ocspNonce);
    if (nonce && nonceOctets(nonce) > MAX_OCSP_NONCE_OCTETS)
      throw new OcspMalformedError(`nonce longer than ${MAX_OCSP_NONCE_OCTETS} octets`);
  }
  if (index !== fields.length) throw new OcspMalformedError('unexpected fields in tbsRequest');
  return { requests, nonce };
}

/** The nonce's length: the OCTET STRING inside extnValue (RFC 8954), or extnValue itself from clients that send it bare. */
function nonceOctets(extnValue: Uint8Array): number {
  try {
    return contentOf(readSingle(extnValue, Tag.OCTET_STRING)).length;
  } catch {
    return extnValue.length;
  }
}

/** Request ::= SEQUENCE { reqCert CertID, singleRequestExtensions [0] EXPLICIT Extensions OPTIONAL } */
function readRequest(request: DerElement): OcspCertIdRequest {
  const [certId, extensions, ...extra] = readChildren(request, Tag.SEQUENCE);
  if (!certId || extra.length > 0 || (extensions && extensions.tag !== explicitTag(0))) {
    throw new OcspMalformedError('bad Request');
  }
  if (extensions) extensionValues(unwrapExplicit(extensions));

  // CertID ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier, issuerNameHash, issuerKeyHash, serialNumber }
  const parts = readChildren(certId, Tag.SEQUENCE);
  if (parts.length !== 4) throw new OcspMalformedError('CertID needs four fields');
  const [algorithm, nameHash, keyHash, serial] = parts;
  const algorithmParts = readChildren(algorithm, Tag.SEQUENCE);
  if (algorithmParts.length < 1 || algorithmParts.length > 2) throw new OcspMalformedError('bad hashAlgorithm');
  return {
    certId: encodingOf(certId).slice(),
    hashAlgorithmOid: readOid(algorithmParts[0]),
    issuerNameHash: contentOf(expectTag(nameHash, Tag.OCTET_STRING)).slice(),
    issuerKeyHash: contentOf(expectTag(keyHash, Tag.OCTET_STRING)).slice(),
    serialNumberHex: bytesToHex(unsignedIntegerValue(serial)),
  };
}

/** Extensions as OID -> extnValue octets, each Extension's shape checked. */
function extensionValues(extensions: DerElement): Map<string, Uint8Array> {
  const values = new Map<string, Uint8Array>();
  for (const extension of readChildren(extensions, Tag.SEQUENCE)) {
    const parts = readChildren(extension, Tag.SEQUENCE);
    if (parts.length === 3) readBoolean(parts[1]);
    else if (parts.length !== 2) throw new OcspMalformedError('bad Extension');
    values.set(readOid(parts[0]), contentOf(expectTag(parts[parts.length - 1], Tag.OCTET_STRING)).slice());
  }
  return values;
}

/**
 * The GET form (RFC 6960 A.1): the path segment is URL-decoded, then base64-decoded. Missing padding, the URL-safe
 * alphabet and '+' turned into ' ' by a form decoder are tolerated.
 */
export function decodeOcspGetPath(segment: string): Uint8Array {
  let text: string;
  try {
    text = decodeURIComponent(segment);
  } catch (cause) {
    throw new OcspMalformedError('bad percent-encoding in OCSP GET path', { cause });
  }
  const base64 = text.replace(/ /g, '+').replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '');
  if (base64.length === 0 || base64.length % 4 === 1 || !/^[A-Za-z0-9+/]*$/.test(base64)) {
    throw new OcspMalformedError('OCSP GET path is not base64');
  }
  return new Uint8Array(Buffer.from(base64, 'base64'));
}

// ---------------------------------------------------------------------------------------------------------------
// Matching a CertID to a CA

export interface IssuerHashes {
  nameHash: Uint8Array;
  keyHash: Uint8Array;
}

/**
 * The CertID hashes of a CA certificate under `hashOid`: of its subject Name DER, and of its subjectPublicKey
 * BIT STRING value. `undefined` for a hash algorithm this responder does not compute (answer such CertIDs
 * 'unknown'). The SHA-1 keyHash is also the responder's byKey ResponderID.
 */
export function issuerHashes(caCertificateDer: Uint8Array, hashOid: string): IssuerHashes | undefined {
  const nodeHash = NODE_HASH_BY_OID.get(hashOid);
  if (!nodeHash) return undefined;
  const { subject, publicKeyBits } = subjectAndKey(caCertificateDer);
  const digest = (bytes: Uint8Array): Uint8Array => new Uint8Array(createHash(nodeHash).update(bytes).digest());
  return { nameHash: digest(subject), keyHash: digest(publicKeyBits) };
}

function subjectAndKey(certificate: Uint8Array): { subject: Uint8Array; publicKeyBits: Uint8Array } {
  const [tbs] = readChildren(readSingle(certificate), Tag.SEQUENCE);
  const fields = readChildren(tbs, Tag.SEQUENCE);
  // TBSCertificate: [0] version?, serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, ...
  const first = fields[0]?.tag === explicitTag(0) ? 1 : 0;
  const subject = expectTag(fields[first + 4], Tag.SEQUENCE);
  const [, publicKey] = readChildren(fields[first + 5], Tag.SEQUENCE);
  return { subject: encodingOf(subject), publicKeyBits: readOctetAlignedBitString(publicKey) };
}

// ---------------------------------------------------------------------------------------------------------------
// Responses

export type OcspCertStatus = 'good' | 'unknown' | { revoked: { time: Date; reasonCode: number } };

export interface OcspSingleResponseInput {
  /** The CertID DER exactly as the request carried it. */
  certId: Uint8Array;
  status: OcspCertStatus;
  thisUpdate: Date;
  nextUpdate?: Date;
}

export type OcspResponderId = { responderKeyHash: Uint8Array } | { responderName: Uint8Array };

export type OcspResponseInput = OcspResponderId & {
  producedAt: Date;
  responses: OcspSingleResponseInput[];
  /** The request's nonce (extnValue octets), echoed. */
  nonce?: Uint8Array;
  hash: HashAlgorithm;
  /** Certificates (DER) for the BasicOCSPResponse `certs` field, e.g. a delegated responder's. */
  signerCertificates?: Uint8Array[];
};

const RESPONSE_STATUS = {
  successful: 0,
  malformedRequest: 1,
  internalError: 2,
  tryLater: 3,
  sigRequired: 5,
  unauthorized: 6,
} as const;
export type OcspErrorStatus = Exclude<keyof typeof RESPONSE_STATUS, 'successful'>;

/** OCSPResponse without responseBytes, for every status but successful. */
export function ocspErrorResponse(status: OcspErrorStatus): Uint8Array {
  const code: number | undefined = RESPONSE_STATUS[status];
  if (code === undefined || code === RESPONSE_STATUS.successful) throw new RangeError(`not an OCSP error status: ${status}`);
  return sequence(enumerated(code));
}

/** A successful OCSPResponse holding a BasicOCSPResponse signed by `signer`. */
export async function buildOcspResponse(input: OcspResponseInput, signer: Signer): Promise<Uint8Array> {
  const responderId =
    'responderKeyHash' in input
      ? contextConstructed(2, octetString(input.responderKeyHash))
      : contextConstructed(1, requireDerSequence(input.responderName, 'responderName'));
  const extensions = input.nonce ? [contextConstructed(1, sequence(extension(Oid.ocspNonce, false, input.nonce)))] : [];
  // ResponseData: version v1 is the DEFAULT, hence absent.
  const responseData = sequence(
    responderId,
    generalizedTime(input.producedAt),
    sequence(...input.responses.map(encodeSingleResponse)),
    ...extensions,
  );
  const certs = input.signerCertificates?.length
    ? [contextConstructed(0, sequence(...input.signerCertificates.map((cert) => requireDerSequence(cert, 'signer certificate'))))]
    : [];
  const basic = await signStructure(responseData, signer, input.hash, ...certs);
  return sequence(
    enumerated(RESPONSE_STATUS.successful),
    contextConstructed(0, sequence(objectIdentifier(Oid.ocspBasic), octetString(basic))),
  );
}

/** SingleResponse ::= SEQUENCE { certID, certStatus, thisUpdate, nextUpdate [0] EXPLICIT OPTIONAL } */
function encodeSingleResponse(response: OcspSingleResponseInput): Uint8Array {
  const nextUpdate = response.nextUpdate ? [contextConstructed(0, generalizedTime(response.nextUpdate))] : [];
  return sequence(
    requireDerSequence(response.certId, 'certId'),
    encodeCertStatus(response.status),
    generalizedTime(response.thisUpdate),
    ...nextUpdate,
  );
}

/** good [0] IMPLICIT NULL | revoked [1] IMPLICIT RevokedInfo | unknown [2] IMPLICIT NULL */
function encodeCertStatus(status: OcspCertStatus): Uint8Array {
  if (status === 'good') return contextPrimitive(0, new Uint8Array(0));
  if (status === 'unknown') return contextPrimitive(2, new Uint8Array(0));
  const { time, reasonCode } = status.revoked;
  if (!CRL_REASON_CODES.includes(reasonCode)) throw new RangeError(`bad reason code ${reasonCode}`);
  // As in the CRL, unspecified (0) is expressed by leaving the reason out.
  const reason = reasonCode === 0 ? [] : [contextConstructed(0, enumerated(reasonCode))];
  return contextConstructed(1, concat([generalizedTime(time), ...reason]));
}
