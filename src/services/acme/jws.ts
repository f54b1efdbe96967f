/**
 * JWS for ACME (RFC 8555 §6.2, RFC 7515 flattened JSON serialization): parsing, account-key signature verification
 * (ES256/ES384/ES512, RS256, EdDSA) and the HS256 External Account Binding (RFC 8555 §7.3.4). Pure; keys through
 * node:crypto. Every malformed input is an AcmeProblem, never an exception of another kind.
 */
import { createHash, createHmac, createPublicKey, timingSafeEqual, verify as verifySignature, type KeyObject } from 'node:crypto';
import { problem } from './acme-problems.ts';

export interface Jwk {
  kty: string;
  [member: string]: unknown;
}

export interface ProtectedHeader {
  alg: string;
  nonce?: string;
  url: string;
  jwk?: Jwk;
  kid?: string;
}

export interface ParsedJws {
  header: ProtectedHeader;
  /** Empty string for POST-as-GET. */
  payloadText: string;
  /** The signing input's parts, as sent. */
  protected64: string;
  payload64: string;
  signature: Buffer;
}

/** base64url without padding (RFC 7515 §2), the empty string included. */
export const BASE64URL = /^[A-Za-z0-9_-]*$/;
const SIGNING: Record<string, { hash: string | null; kty: string; dsaEncoding?: 'ieee-p1363'; crv?: string }> = {
  ES256: { hash: 'sha256', kty: 'EC', dsaEncoding: 'ieee-p1363', crv: 'P-256' },
  ES384: { hash: 'sha384', kty: 'EC', dsaEncoding: 'ieee-p1363', crv: 'P-384' },
  ES512: { hash: 'sha512', kty: 'EC', dsaEncoding: 'ieee-p1363', crv: 'P-521' },
  RS256: { hash: 'sha256', kty: 'RSA' },
  EdDSA: { hash: null, kty: 'OKP' },
};
export const SUPPORTED_ALGORITHMS = Object.keys(SIGNING);
const MIN_RSA_BITS = 2048;
/**
 * The largest RSA account key (lego makes up to 8192 bits), and 65537 its only exponent: a request anyone may send
 * must not buy milliseconds of verification (a 16384-bit modulus ~1 ms, a 3072-bit exponent ~7 ms, against ~0.03).
 */
const MAX_RSA_BITS = 8192;
const RSA_EXPONENT = 65537n;

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function decode64(value: unknown, what: string): Buffer {
  if (typeof value !== 'string' || !BASE64URL.test(value)) throw problem('malformed', `${what} must be base64url without padding`);
  return Buffer.from(value, 'base64url');
}

function jsonOf(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw problem('malformed', `${what} is not JSON`);
  }
}

/** The flattened JWS of an ACME POST body (§6.2: exactly protected, payload, signature). */
export function parseJws(body: unknown): ParsedJws {
  if (!isObject(body)) throw problem('malformed', 'the request body must be a flattened JWS JSON object');
  const extra = Object.keys(body).find((key) => !['protected', 'payload', 'signature'].includes(key));
  if (extra !== undefined)
    throw problem(
      'malformed',
      `the JWS has an unexpected member '${extra}' (only the flattened serialization with a protected header is accepted)`,
    );
  const header = jsonOf(decode64(body.protected, 'protected'), 'the protected header');
  if (!isObject(header)) throw problem('malformed', 'the protected header must be a JSON object');
  if (typeof header.alg !== 'string') throw problem('malformed', 'the protected header needs alg');
  if (!SIGNING[header.alg])
    throw problem('badSignatureAlgorithm', `alg ${header.alg} is not supported (${SUPPORTED_ALGORITHMS.join(', ')})`);
  if (typeof header.url !== 'string') throw problem('malformed', 'the protected header needs url');
  if (header.nonce !== undefined && typeof header.nonce !== 'string') throw problem('malformed', 'nonce must be a string');
  if ((header.jwk === undefined) === (header.kid === undefined))
    throw problem('malformed', 'the protected header needs exactly one of jwk and kid');
  if (header.jwk !== undefined && (!isObject(header.jwk) || typeof header.jwk.kty !== 'string'))
    throw problem('malformed', 'jwk must be a JSON Web Key');
  if (header.kid !== undefined && typeof header.kid !== 'string') throw problem('malformed', 'kid must be a string');
  const payload = decode64(body.payload, 'payload');
  return {
    header: header as unknown as ProtectedHeader,
    payloadText: payload.toString('utf8'),
    protected64: body.protected as string,
    payload64: body.payload as string,
    signature: decode64(body.signature, 'signature'),
  };
}

/** The payload as a JSON object; POST-as-GET (empty payload) is refused where a body is required. */
export function payloadObject(jws: ParsedJws): Record<string, unknown> {
  const value = jws.payloadText === '' ? undefined : jsonOf(Buffer.from(jws.payloadText), 'the payload');
  if (!isObject(value)) throw problem('malformed', 'the payload must be a JSON object');
  return value;
}

/** RFC 8555 §6.3: a resource that is only read takes POST-as-GET, whose payload is empty. */
export function requirePostAsGet(jws: ParsedJws): void {
  if (jws.payloadText !== '') throw problem('malformed', 'this resource is read by POST-as-GET: the payload must be empty');
}

/** The account public key of a JWK, refusing kinds and sizes ACME accounts may not use. */
export function publicKeyOf(jwk: Jwk): KeyObject {
  if (isObject(jwk) && ('d' in jwk || 'p' in jwk)) throw problem('badPublicKey', 'the JWK holds private key material');
  let key: KeyObject;
  try {
    key = createPublicKey({ key: jwk as never, format: 'jwk' });
  } catch (error) {
    throw problem('badPublicKey', `the JWK is not a usable public key: ${(error as Error).message}`);
  }
  if (key.asymmetricKeyType === 'rsa') {
    const { modulusLength = 0, publicExponent } = key.asymmetricKeyDetails ?? {};
    if (modulusLength < MIN_RSA_BITS || modulusLength > MAX_RSA_BITS)
      throw problem('badPublicKey', `RSA account keys need ${MIN_RSA_BITS} to ${MAX_RSA_BITS} bits, not ${modulusLength}`);
    if (publicExponent !== RSA_EXPONENT) throw problem('badPublicKey', `RSA account keys need the public exponent ${RSA_EXPONENT}`);
  }
  if (!['rsa', 'ec', 'ed25519'].includes(key.asymmetricKeyType ?? ''))
    throw problem('badPublicKey', `key type ${key.asymmetricKeyType} is not supported`);
  return key;
}

/** RFC 7638 thumbprint (SHA-256, base64url) of the required members, in lexicographic order. */
export function thumbprint(jwk: Jwk): string {
  const members: Record<string, string[]> = { EC: ['crv', 'kty', 'x', 'y'], RSA: ['e', 'kty', 'n'], OKP: ['crv', 'kty', 'x'] };
  const names = members[jwk.kty];
  if (!names) throw problem('badPublicKey', `kty ${jwk.kty} is not supported`);
  const canonical = `{${names
    .map((name) => {
      if (typeof jwk[name] !== 'string') throw problem('badPublicKey', `the JWK lacks ${name}`);
      return `${JSON.stringify(name)}:${JSON.stringify(jwk[name])}`;
    })
    .join(',')}}`;
  return createHash('sha256').update(canonical).digest('base64url');
}

/** The public members of a JWK, as stored with an account. */
export function publicJwk(jwk: Jwk): Jwk {
  const key = publicKeyOf(jwk);
  return key.export({ format: 'jwk' }) as Jwk;
}

/** Verifies the JWS signature with `jwk` (the alg must suit the key: §6.2). */
export function verifyJws(jws: ParsedJws, jwk: Jwk): void {
  const spec = SIGNING[jws.header.alg]!;
  const key = publicKeyOf(jwk);
  const kty = jwk.kty;
  if (spec.kty !== kty || (spec.crv && jwk.crv !== spec.crv))
    throw problem('badSignatureAlgorithm', `alg ${jws.header.alg} does not suit this ${kty} key`);
  const data = Buffer.from(`${jws.protected64}.${jws.payload64}`);
  let valid = false;
  try {
    valid = verifySignature(spec.hash, data, spec.dsaEncoding ? { key, dsaEncoding: spec.dsaEncoding } : key, jws.signature);
  } catch {
    valid = false;
  }
  if (!valid) throw problem('malformed', 'the JWS signature does not verify');
}

/** The refusal of an EAB kid that names no key of this CA, or a revoked one. */
export const unusableEabKey = (kid: string) => problem('unauthorized', `external account key ${kid} is unknown or revoked`);

/** Verifies an External Account Binding JWS (RFC 8555 §7.3.4): HS256 by the EAB key over the account's JWK, at `url`. */
export async function verifyEab(
  binding: unknown,
  accountJwk: Jwk,
  url: string,
  hmacKeyOf: (kid: string) => Promise<Buffer | null>,
): Promise<string> {
  if (!isObject(binding)) throw problem('malformed', 'externalAccountBinding must be a flattened JWS');
  const header = jsonOf(decode64(binding.protected, 'externalAccountBinding.protected'), 'externalAccountBinding.protected');
  if (!isObject(header) || typeof header.kid !== 'string') throw problem('malformed', 'externalAccountBinding needs a kid');
  if (!['HS256', 'HS384', 'HS512'].includes(header.alg as string))
    throw problem('badSignatureAlgorithm', 'externalAccountBinding must use HS256, HS384 or HS512');
  if ('nonce' in header) throw problem('malformed', 'externalAccountBinding must not carry a nonce');
  if (header.url !== url) throw problem('unauthorized', 'externalAccountBinding url must be the newAccount URL');
  const payload = jsonOf(decode64(binding.payload, 'externalAccountBinding.payload'), 'externalAccountBinding.payload') as Jwk;
  if (!isObject(payload) || thumbprint(payload) !== thumbprint(accountJwk))
    throw problem('unauthorized', 'externalAccountBinding does not bind the account key of this request');
  const key = await hmacKeyOf(header.kid);
  if (key === null) throw unusableEabKey(header.kid);
  const expected = createHmac(`sha${(header.alg as string).slice(2)}`, key)
    .update(`${binding.protected as string}.${binding.payload as string}`)
    .digest();
  const given = decode64(binding.signature, 'externalAccountBinding.signature');
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    throw problem('unauthorized', 'externalAccountBinding signature does not verify');
  return header.kid;
}
