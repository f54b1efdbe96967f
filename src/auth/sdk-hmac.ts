/**
 * Huawei SDK request signatures (contract §3.1–3.2), as a pure function of the received request. The canonical
 * request is common to every algorithm; what differs per algorithm is in signature-algorithms.ts.
 *
 * What Huawei's signers actually put on the wire, and why verification normalises the way it does:
 * - Path: the Go and Node SDKs substitute path parameters unescaped, so a URN's `:` usually arrives raw, while
 *   the signature covers `%3A`. We percent-decode each segment and re-escape it.
 * - Query: the Go SDK sends `url.Values.Encode()` (a space as `+`) but signs the unencoded values (a space as
 *   `%20`). The Node SDK sends `querystring.stringify` (a space as `%20`, a `+` as `%2B`, `!'()*` raw). So a `+`
 *   in the query is a space; names and values are percent-decoded and re-escaped.
 * - Bodies: the Go SDK's JSON ends with `\n`; only the raw received bytes may be hashed.
 */
import { createHash, createHmac } from 'node:crypto';
import { errors, type AppError } from '../errors.ts';
import {
  algorithmOf,
  DEFAULT_ALGORITHM,
  UNSUPPORTED_ALGORITHMS,
  type Credential,
  type Digest,
  type SignatureAlgorithm,
} from './signature-algorithms.ts';

export interface SignedRequest {
  method: string;
  /** Raw request target as received: path plus optional ?query, still percent-encoded. */
  url: string;
  /** Header names lower-cased; values as received (string or string[] for repeats). */
  headers: Record<string, string | string[] | undefined>;
  /** The raw body bytes exactly as received (empty Uint8Array if none). */
  body: Uint8Array;
}

export interface ParsedAuthorization {
  algorithm: SignatureAlgorithm;
  credential: Credential;
  signedHeaders: string[];
  signature: string;
}

export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
const DEFAULT_MAX_SKEW_MS = 15 * 60 * 1000;
/** The contract caps `error_msg` at 1024 characters. */
const MAX_MESSAGE_LENGTH = 1024;

/** After the algorithm name; the signature's form is the algorithm's. */
const AUTHORIZATION_FIELDS = /^ +(Access|Credential)=([^\s,]+) *, *SignedHeaders=([^\s,]+) *, *Signature=([^\s,]+)$/;
/** V11's scope: date, region, service. */
const SCOPE_PATTERN = /^(\d{8})\/([a-z0-9-]+)\/([A-Za-z0-9_-]+)$/;
/** An RFC 9110 token, lower-cased as every signer writes it. */
const HEADER_NAME_PATTERN = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;
const SDK_DATE_PATTERN = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const PERCENT_ESCAPE = /(%[0-9A-Fa-f]{2})/;

const authenticationFailed = (message: string): AppError => errors.authenticationFailed(message.slice(0, MAX_MESSAGE_LENGTH));

/** The 401 of a key that does not exist or is deleted. */
export const unknownAccessKey = (access: string): AppError => authenticationFailed(`unknown access key '${access}'`);

function parseCredential(algorithm: SignatureAlgorithm, field: string, value: string): Credential {
  if (field !== algorithm.credentialField) throw authenticationFailed(`${algorithm.name} names its key with ${algorithm.credentialField}=`);
  if (algorithm.credentialField === 'Access') return { access: value };
  const slash = value.indexOf('/');
  const scope = value.slice(slash + 1);
  if (slash <= 0 || !SCOPE_PATTERN.test(scope))
    throw authenticationFailed(`${algorithm.name} needs Credential=<AK>/<yyyymmdd>/<region>/<service>`);
  return { access: value.slice(0, slash), scope };
}

export function parseSdkAuthorization(header: string): ParsedAuthorization {
  const unsupported = Object.entries(UNSUPPORTED_ALGORITHMS).find(([name]) => header.startsWith(`${name} `));
  if (unsupported) throw authenticationFailed(unsupported[1]);
  const algorithm = algorithmOf(header);
  const match = algorithm && AUTHORIZATION_FIELDS.exec(header.slice(algorithm.name.length));
  if (!algorithm || !match || !algorithm.signaturePattern.test(match[4])) {
    throw authenticationFailed(
      'Authorization must be: SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<h1;h2>, Signature=<64 hex digits> ' +
        '(or SDK-HMAC-SM3, SDK-ECDSA-P256-SHA256, V11-HMAC-SHA256 Credential=<AK>/<scope>)',
    );
  }
  const [, field, credential, signedHeaderList, signature] = match;
  const signedHeaders = signedHeaderList.split(';');
  if (!signedHeaders.every((name) => HEADER_NAME_PATTERN.test(name))) {
    throw authenticationFailed('SignedHeaders must be lower-case header names separated by ;');
  }
  return { algorithm, credential: parseCredential(algorithm, field, credential), signedHeaders, signature: signature.toLowerCase() };
}

/** `YYYYMMDDTHHMMSSZ` in UTC, the X-Sdk-Date format. */
export function formatSdkDate(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
}

function parseSdkDate(value: string): Date | undefined {
  const match = SDK_DATE_PATTERN.exec(value);
  if (!match) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number);
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  // The round trip rejects out-of-range fields such as month 13 or hour 24, which Date.UTC would roll over.
  return !Number.isNaN(date.getTime()) && formatSdkDate(date) === value ? date : undefined;
}

/**
 * The headers as a signer saw them, from the raw name/value list (Node's `rawHeaders`): a repeated header keeps each
 * value, where Node's `headers` joins most repeats with ", " and keeps only the first Host or Content-Type.
 */
export function headersAsSent(rawHeaders: readonly string[]): SignedRequest['headers'] {
  const headers: Record<string, string | string[]> = Object.create(null);
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i].toLowerCase();
    const seen = headers[name];
    const value = rawHeaders[i + 1];
    headers[name] = seen === undefined ? value : Array.isArray(seen) ? [...seen, value] : [seen, value];
  }
  return headers;
}

function headerValues(headers: SignedRequest['headers'], name: string): string[] {
  const value = headers[name];
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

function singleHeader(headers: SignedRequest['headers'], name: string): string | undefined {
  const values = headerValues(headers, name);
  if (values.length > 1) throw authenticationFailed(`header '${name}' must not repeat`);
  return values[0];
}

function isUnreserved(byte: number): boolean {
  return (
    (byte >= 0x41 && byte <= 0x5a) || // A-Z
    (byte >= 0x61 && byte <= 0x7a) || // a-z
    (byte >= 0x30 && byte <= 0x39) || // 0-9
    byte === 0x2d ||
    byte === 0x5f ||
    byte === 0x2e ||
    byte === 0x7e // - _ . ~
  );
}

/** §3.1 step 4: unreserved bytes stay, every other byte becomes upper-case %XX. */
function escapeBytes(bytes: Uint8Array): string {
  let out = '';
  for (const byte of bytes) {
    out += isUnreserved(byte) ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * Decodes to bytes rather than a string so that escapes of invalid UTF-8 survive unchanged. A `%` not followed by
 * two hex digits is a literal `%`, which is how the Node SDK signs a raw `%` in a path.
 */
function percentDecode(text: string): Buffer {
  return Buffer.concat(
    text
      .split(PERCENT_ESCAPE)
      // split() with a capturing group puts the escapes at the odd indices.
      .map((part, index) => (index % 2 === 1 ? Buffer.from(part.slice(1), 'hex') : Buffer.from(part, 'utf8'))),
  );
}

function canonicalUri(path: string): string {
  const uri = path
    .split('/')
    .map((segment) => escapeBytes(percentDecode(segment)))
    .join('/');
  return uri.endsWith('/') ? uri : `${uri}/`;
}

const decodeQueryComponent = (text: string): Buffer => percentDecode(text.replace(/\+/g, ' '));

/** Names sorted, each name's values sorted, both on the decoded bytes as the Go SDK's sort.Strings does. */
function canonicalQueryString(query: string): string {
  return query
    .split('&')
    .filter((pair) => pair !== '')
    .map((pair) => {
      const equals = pair.indexOf('=');
      return equals < 0
        ? { name: decodeQueryComponent(pair), value: Buffer.alloc(0) }
        : { name: decodeQueryComponent(pair.slice(0, equals)), value: decodeQueryComponent(pair.slice(equals + 1)) };
    })
    .sort((a, b) => Buffer.compare(a.name, b.name) || Buffer.compare(a.value, b.value))
    .map(({ name, value }) => `${escapeBytes(name)}=${escapeBytes(value)}`)
    .join('&');
}

function canonicalHeaders(req: SignedRequest, signedHeaders: string[]): string {
  return signedHeaders
    .map((name) => {
      const values = headerValues(req.headers, name);
      if (values.length === 0) throw authenticationFailed(`signed header '${name}' is missing from the request`);
      return values
        .map((value) => value.trim())
        .sort()
        .map((value) => `${name}:${value}\n`)
        .join('');
    })
    .join('');
}

const digestHex = (digest: Digest, data: string | Uint8Array): string => createHash(digest).update(data).digest('hex');

function payloadHash(req: SignedRequest, algorithm: SignatureAlgorithm): string {
  return singleHeader(req.headers, algorithm.contentHashHeader) ?? digestHex(algorithm.digest, req.body);
}

/**
 * The six-line canonical request of §3.1 step 5. Header lines follow the order of `signedHeaders`, which is the
 * order the client listed (signers sort them).
 */
export function canonicalRequest(req: SignedRequest, signedHeaders: string[], algorithm = DEFAULT_ALGORITHM): string {
  if (!req.url.startsWith('/')) throw authenticationFailed('the request target must be a path');
  const queryStart = req.url.indexOf('?');
  const path = queryStart < 0 ? req.url : req.url.slice(0, queryStart);
  const query = queryStart < 0 ? '' : req.url.slice(queryStart + 1);
  return [
    req.method,
    canonicalUri(path),
    canonicalQueryString(query),
    canonicalHeaders(req, signedHeaders),
    signedHeaders.join(';'),
    payloadHash(req, algorithm),
  ].join('\n');
}

/** The string to sign of the default algorithm (§3.1 step 6). */
export function stringToSign(sdkDate: string, canonical: string): string {
  return DEFAULT_ALGORITHM.stringToSign(sdkDate, { access: '' }, digestHex('sha256', canonical));
}

/** Signs as a Huawei SDK would (SDK-HMAC-SHA256): names lower-cased and sorted; the request must carry X-Sdk-Date. */
export function signRequest(req: SignedRequest, access: string, secret: string, signedHeaders: string[]): string {
  const sdkDate = singleHeader(req.headers, 'x-sdk-date');
  if (sdkDate === undefined) throw new Error('signRequest needs an x-sdk-date header on the request');
  const names = [...new Set(signedHeaders.map((name) => name.toLowerCase()))].sort();
  const signature = createHmac('sha256', secret)
    .update(stringToSign(sdkDate, canonicalRequest(req, names)))
    .digest('hex');
  return `${DEFAULT_ALGORITHM.name} Access=${access}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
}

/** Signed header lines carrying a credential: their values stay out of the refusal, which is logged. */
const CREDENTIAL_HEADER_LINE = /^(x-security-token|x-auth-token):(.*)$/gm;
const withCredentialsRedacted = (canonical: string): string =>
  canonical.replace(CREDENTIAL_HEADER_LINE, (_line, name: string, value: string) => `${name}:<redacted, ${value.length} characters>`);

function requireFreshSdkDate(headers: SignedRequest['headers'], now: Date, maxSkewMs: number): { sdkDate: string; date: Date } {
  const sdkDate = singleHeader(headers, 'x-sdk-date');
  if (sdkDate === undefined) throw authenticationFailed('X-Sdk-Date header is missing');
  const date = parseSdkDate(sdkDate);
  if (!date) throw authenticationFailed('X-Sdk-Date must be a UTC time in the form YYYYMMDDTHHMMSSZ');
  if (Math.abs(now.getTime() - date.getTime()) > maxSkewMs) {
    throw authenticationFailed(`X-Sdk-Date ${sdkDate} is more than ${maxSkewMs / 60000} minutes from server time`);
  }
  return { sdkDate, date };
}

/**
 * A declared body hash other than UNSIGNED-PAYLOAD must be the body's: otherwise anyone holding a signed request
 * could swap its body and declare the original body's hash.
 */
function requireTruthfulPayloadHash(req: SignedRequest, algorithm: SignatureAlgorithm): void {
  const declared = singleHeader(req.headers, algorithm.contentHashHeader);
  if (declared !== undefined && declared !== UNSIGNED_PAYLOAD && declared.toLowerCase() !== digestHex(algorithm.digest, req.body)) {
    throw authenticationFailed(`${algorithm.contentHashHeader} does not match the request body`);
  }
}

/** V11's scope must be the request's day and this service's region. */
function requireScope(credential: Credential, sdkDate: string, region: string | undefined): void {
  if (credential.scope === undefined) return;
  const [day, scopeRegion] = credential.scope.split('/');
  if (day !== sdkDate.slice(0, 8)) throw authenticationFailed('the Credential scope date is not the X-Sdk-Date day');
  if (region !== undefined && scopeRegion !== region)
    throw authenticationFailed(`the Credential scope is for region '${scopeRegion}', this service is '${region}'`);
}

export interface VerifyOptions {
  maxSkewMs?: number;
  /** The service's region, which a V11 credential scope must name. */
  region?: string;
}

/**
 * What identifies one signed request for the replay cache: a digest of the access key and the string to sign
 * (algorithm, X-Sdk-Date, every signed byte), not of the signature. An ECDSA signature is not unique to what it
 * signs: the same request signed again (random k), or the captured signature with s replaced by n - s, verifies too.
 */
export interface SignatureUse {
  fingerprint: Buffer;
  /** X-Sdk-Date plus the accepted skew: no server accepts this signature after then. */
  validUntil: Date;
}

export interface VerifiedSignature {
  access: string;
  algorithm: string;
  use: SignatureUse;
}

/** What a signed request's head says, judged before its body is read: the key it names and when it was signed. */
export interface SignedHead extends ParsedAuthorization {
  sdkDate: string;
  /** Until when a server accepts this signature: X-Sdk-Date plus the accepted skew. */
  validUntil: Date;
}

/**
 * The checks of §3.2 that need no body (Authorization's form, X-Sdk-Date's form, freshness and signing, V11's scope),
 * so that a request failing them is refused before its body is received. Every failure is a 401 AppError (APIG.0303).
 */
export function checkSignedHead(headers: SignedRequest['headers'], now: Date, opts: VerifyOptions = {}): SignedHead {
  const authorization = singleHeader(headers, 'authorization');
  if (authorization === undefined) throw authenticationFailed('Authorization header is missing');
  const parsed = parseSdkAuthorization(authorization);
  const maxSkewMs = opts.maxSkewMs ?? DEFAULT_MAX_SKEW_MS;
  const { sdkDate, date } = requireFreshSdkDate(headers, now, maxSkewMs);
  if (!parsed.signedHeaders.includes('x-sdk-date')) throw authenticationFailed('x-sdk-date must be among SignedHeaders');
  requireScope(parsed.credential, sdkDate, opts.region);
  return { ...parsed, sdkDate, validUntil: new Date(date.getTime() + maxSkewMs) };
}

/**
 * The rest of §3.2, once the body is in: the declared body hash, the canonical request and the signature, against
 * the secret of the key `head` names. Every failure is a 401 AppError (APIG.0303).
 */
export function verifySignedBody(req: SignedRequest, head: SignedHead, secret: string, hostOverride?: string): VerifiedSignature {
  const { algorithm, credential, signedHeaders, signature, sdkDate } = head;
  requireTruthfulPayloadHash(req, algorithm);
  const received = hostOverride === undefined ? req : { ...req, headers: { ...req.headers, host: hostOverride } };
  const canonical = canonicalRequest(received, signedHeaders, algorithm);
  const text = algorithm.stringToSign(sdkDate, credential, digestHex(algorithm.digest, canonical));
  if (!algorithm.verify(text, signature, credential, secret)) {
    throw authenticationFailed(`signature mismatch; the server's canonical request was:\n${withCredentialsRedacted(canonical)}`);
  }
  const fingerprint = createHash('sha256').update(`${credential.access}\n${text}`).digest();
  return { access: credential.access, algorithm: algorithm.name, use: { fingerprint, validUntil: head.validUntil } };
}
