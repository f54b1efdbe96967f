/**
 * Huawei SDK-HMAC-SHA256 request signatures (contract §3.1–3.2), as a pure function of the received request.
 *
 * What Huawei's signers actually put on the wire, and why verification normalises the way it does:
 * - Path: the Go and Node SDKs substitute path parameters unescaped, so a URN's `:` usually arrives raw, while
 *   the signature covers `%3A`. We percent-decode each segment and re-escape it.
 * - Query: the Go SDK sends `url.Values.Encode()` (a space as `+`) but signs the unencoded values (a space as
 *   `%20`). The Node SDK sends `querystring.stringify` (a space as `%20`, a `+` as `%2B`, `!'()*` raw). So a `+`
 *   in the query is a space; names and values are percent-decoded and re-escaped.
 * - Bodies: the Go SDK's JSON ends with `\n`; only the raw received bytes may be hashed.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { errors, type AppError } from '../errors.ts';

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
  access: string;
  signedHeaders: string[];
  signature: string;
}

export const SDK_SIGNING_ALGORITHM = 'SDK-HMAC-SHA256';
export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
const DEFAULT_MAX_SKEW_MS = 15 * 60 * 1000;
/** The contract caps `error_msg` at 1024 characters. */
const MAX_MESSAGE_LENGTH = 1024;

const AUTHORIZATION_PATTERN =
  /^SDK-HMAC-SHA256 +Access=([^\s,]+) *, *SignedHeaders=([^\s,]+) *, *Signature=([0-9a-fA-F]{64})$/;
/** An RFC 9110 token, lower-cased as every signer writes it. */
const HEADER_NAME_PATTERN = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;
const SDK_DATE_PATTERN = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const PERCENT_ESCAPE = /(%[0-9A-Fa-f]{2})/;

const authenticationFailed = (message: string): AppError =>
  errors.authenticationFailed(message.slice(0, MAX_MESSAGE_LENGTH));

export function parseSdkAuthorization(header: string): ParsedAuthorization {
  const match = AUTHORIZATION_PATTERN.exec(header);
  if (!match) {
    throw authenticationFailed(
      'Authorization must be: SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<h1;h2>, Signature=<64 hex digits>',
    );
  }
  const [, access, signedHeaderList, signature] = match;
  const signedHeaders = signedHeaderList.split(';');
  if (!signedHeaders.every((name) => HEADER_NAME_PATTERN.test(name))) {
    throw authenticationFailed('SignedHeaders must be lower-case header names separated by ;');
  }
  return { access, signedHeaders, signature: signature.toLowerCase() };
}

/** `YYYYMMDDTHHMMSSZ` in UTC, the X-Sdk-Date format. */
export function formatSdkDate(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

function parseSdkDate(value: string): Date | undefined {
  const match = SDK_DATE_PATTERN.exec(value);
  if (!match) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number);
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  // The round trip rejects out-of-range fields such as month 13 or hour 24, which Date.UTC would roll over.
  return !Number.isNaN(date.getTime()) && formatSdkDate(date) === value ? date : undefined;
}

function headerValues(req: SignedRequest, name: string): string[] {
  const value = req.headers[name];
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

function singleHeader(req: SignedRequest, name: string): string | undefined {
  const values = headerValues(req, name);
  if (values.length > 1) throw authenticationFailed(`header '${name}' must not repeat`);
  return values[0];
}

function isUnreserved(byte: number): boolean {
  return (
    (byte >= 0x41 && byte <= 0x5a) || // A-Z
    (byte >= 0x61 && byte <= 0x7a) || // a-z
    (byte >= 0x30 && byte <= 0x39) || // 0-9
    byte === 0x2d || byte === 0x5f || byte === 0x2e || byte === 0x7e // - _ . ~
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
      const values = headerValues(req, name);
      if (values.length === 0) throw authenticationFailed(`signed header '${name}' is missing from the request`);
      return values
        .map((value) => value.trim())
        .sort()
        .map((value) => `${name}:${value}\n`)
        .join('');
    })
    .join('');
}

const sha256Hex = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');

function payloadHash(req: SignedRequest): string {
  return singleHeader(req, 'x-sdk-content-sha256') ?? sha256Hex(req.body);
}

/**
 * The six-line canonical request of §3.1 step 5. Header lines follow the order of `signedHeaders`, which is the
 * order the client listed (signers sort them).
 */
export function canonicalRequest(req: SignedRequest, signedHeaders: string[]): string {
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
    payloadHash(req),
  ].join('\n');
}

export function stringToSign(sdkDate: string, canonical: string): string {
  return `${SDK_SIGNING_ALGORITHM}\n${sdkDate}\n${sha256Hex(canonical)}`;
}

const hmacHex = (secret: string, text: string): string => createHmac('sha256', secret).update(text).digest('hex');

/** Signs as a Huawei SDK would: names lower-cased and sorted; the request must already carry X-Sdk-Date. */
export function signRequest(req: SignedRequest, access: string, secret: string, signedHeaders: string[]): string {
  const sdkDate = singleHeader(req, 'x-sdk-date');
  if (sdkDate === undefined) throw new Error('signRequest needs an x-sdk-date header on the request');
  const names = [...new Set(signedHeaders.map((name) => name.toLowerCase()))].sort();
  const signature = hmacHex(secret, stringToSign(sdkDate, canonicalRequest(req, names)));
  return `${SDK_SIGNING_ALGORITHM} Access=${access}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
}

function requireFreshSdkDate(req: SignedRequest, now: Date, maxSkewMs: number): string {
  const sdkDate = singleHeader(req, 'x-sdk-date');
  if (sdkDate === undefined) throw authenticationFailed('X-Sdk-Date header is missing');
  const date = parseSdkDate(sdkDate);
  if (!date) throw authenticationFailed('X-Sdk-Date must be a UTC time in the form YYYYMMDDTHHMMSSZ');
  if (Math.abs(now.getTime() - date.getTime()) > maxSkewMs) {
    throw authenticationFailed(`X-Sdk-Date ${sdkDate} is more than ${maxSkewMs / 60000} minutes from server time`);
  }
  return sdkDate;
}

/**
 * A declared body hash other than UNSIGNED-PAYLOAD must be the body's: otherwise anyone holding a signed request
 * could swap its body and declare the original body's hash.
 */
function requireTruthfulPayloadHash(req: SignedRequest): void {
  const declared = singleHeader(req, 'x-sdk-content-sha256');
  if (declared !== undefined && declared !== UNSIGNED_PAYLOAD && declared.toLowerCase() !== sha256Hex(req.body)) {
    throw authenticationFailed('X-Sdk-Content-Sha256 does not match the request body');
  }
}

/**
 * Verifies an AK/SK-signed request (§3.2). Every verification failure is a 401 AppError (APIG.0303); a rejection
 * from `lookupSecret` itself (say, the database is down) propagates unchanged rather than posing as bad credentials.
 */
export async function verifySdkSignature(
  req: SignedRequest,
  lookupSecret: (access: string) => Promise<string | undefined>,
  now: Date,
  opts: { maxSkewMs?: number; hostOverride?: string } = {},
): Promise<{ access: string }> {
  const authorization = singleHeader(req, 'authorization');
  if (authorization === undefined) throw authenticationFailed('Authorization header is missing');
  const { access, signedHeaders, signature } = parseSdkAuthorization(authorization);
  const sdkDate = requireFreshSdkDate(req, now, opts.maxSkewMs ?? DEFAULT_MAX_SKEW_MS);
  if (!signedHeaders.includes('x-sdk-date')) throw authenticationFailed('x-sdk-date must be among SignedHeaders');
  requireTruthfulPayloadHash(req);
  const received =
    opts.hostOverride === undefined ? req : { ...req, headers: { ...req.headers, host: opts.hostOverride } };
  const canonical = canonicalRequest(received, signedHeaders);

  const secret = await lookupSecret(access);
  if (secret === undefined) throw authenticationFailed(`unknown access key '${access}'`);
  const expected = Buffer.from(hmacHex(secret, stringToSign(sdkDate, canonical)), 'hex');
  if (!timingSafeEqual(expected, Buffer.from(signature, 'hex'))) {
    throw authenticationFailed(`signature mismatch; the server's canonical request was:\n${canonical}`);
  }
  return { access };
}
