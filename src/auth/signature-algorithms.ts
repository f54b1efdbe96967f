/**
 * The request-signature algorithms of Huawei's SDK signers, in one registry: every signed request is verified through
 * this table, so a new scheme is one entry here, never a second verifier.
 *
 * All of them sign the same six-line canonical request (sdk-hmac.ts); they differ in the digest (SHA-256 or SM3,
 * also used for the body hash and its X-Sdk-Content-* header), in the string to sign, and in the final step:
 * - SDK-HMAC-SHA256 / SDK-HMAC-SM3: HMAC of the string to sign keyed by the secret.
 * - V11-HMAC-SHA256 (derived credentials): `Credential=<AK>/<yyyymmdd>/<region>/<service>`; the HMAC key is the
 *   hex text of HKDF-SHA256(ikm = SK, salt = AK, info = that scope, 32 bytes), and the scope is a line of the string
 *   to sign.
 * - SDK-ECDSA-P256-SHA256: an ECDSA P-256 / SHA-256 signature (DER, hex) with a private scalar derived from AK/SK
 *   (one HMAC-SHA256 with the secret per counter, NIST SP 800-108 counter mode, first candidate at most n-2, plus 1);
 *   the verifier holds the secret too, so it derives the same key.
 * - SDK-SM2-SM3 is not served: Node's OpenSSL binding has SM3 but no SM2 signature (a key on the SM2 curve signs as
 *   plain ECDSA), so such a request is refused with a message saying so.
 */
import { createECDH, createHmac, createPublicKey, hkdfSync, timingSafeEqual, verify as verifySignature } from 'node:crypto';

export type Digest = 'sha256' | 'sm3';

/** What a request's Authorization header says, once parsed. */
export interface Credential {
  access: string;
  /** V11's `<yyyymmdd>/<region>/<service>`; undefined for the other algorithms. */
  scope?: string;
}

export interface SignatureAlgorithm {
  readonly name: string;
  readonly digest: Digest;
  /** Header a client may send instead of having the body hashed (its value then is the payload hash). */
  readonly contentHashHeader: string;
  /** The Authorization field naming the key: `Access=AK` or V11's `Credential=AK/scope`. */
  readonly credentialField: 'Access' | 'Credential';
  /** Hex signatures of this algorithm. */
  readonly signaturePattern: RegExp;
  stringToSign(sdkDate: string, credential: Credential, canonicalRequestDigest: string): string;
  /** Whether `signature` (hex) signs `text` for this key; never throws for a malformed signature. */
  verify(text: string, signature: string, credential: Credential, secret: string): boolean;
}

const hmac = (digest: Digest, key: string | Buffer, text: string): Buffer => createHmac(digest, key).update(text).digest();

const sameBytes = (a: Buffer, hex: string): boolean => {
  const b = Buffer.from(hex, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
};

const HMAC_SIGNATURE = /^[0-9a-fA-F]{64}$/;
/** A DER ECDSA signature over a 256-bit curve is at most 72 bytes. */
const DER_SIGNATURE = /^(?:[0-9a-fA-F]{2}){8,72}$/;

function simpleStringToSign(this: SignatureAlgorithm, sdkDate: string, _credential: Credential, digest: string): string {
  return `${this.name}\n${sdkDate}\n${digest}`;
}

function hmacAlgorithm(name: string, digest: Digest, contentHashHeader: string): SignatureAlgorithm {
  return {
    name,
    digest,
    contentHashHeader,
    credentialField: 'Access',
    signaturePattern: HMAC_SIGNATURE,
    stringToSign: simpleStringToSign,
    verify: (text, signature, _credential, secret) => sameBytes(hmac(digest, secret, text), signature),
  };
}

/** V11's HMAC key: the hex text of HKDF-SHA256 over the scope (both SDKs key the HMAC with the hex characters). */
export const derivedSigningKey = (credential: Credential, secret: string): string =>
  Buffer.from(hkdfSync('sha256', secret, credential.access, credential.scope ?? '', 32)).toString('hex');

const P256_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
/** SubjectPublicKeyInfo of an uncompressed P-256 point, up to the point itself. */
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');

/** The private scalar both sides derive from AK/SK (Huawei's Go SDK, derivePrivateInt). */
export function derivedPrivateScalar(algorithm: string, access: string, secret: string): bigint {
  for (let counter = 0; counter <= 0xff; counter++) {
    const data = Buffer.concat([
      Buffer.from([0, 0, 0, 1]),
      Buffer.from(algorithm),
      Buffer.from([0]),
      Buffer.from(access),
      Buffer.from([counter]),
      Buffer.from([0, 0, 1, 0]),
    ]);
    const candidate = BigInt(`0x${createHmac('sha256', secret).update(data).digest('hex')}`);
    if (candidate <= P256_ORDER - 2n) return candidate + 1n;
  }
  // Each candidate exceeds n-2 with probability ~2^-32; 256 in a row does not happen.
  throw new Error('no private scalar derived within 256 counters');
}

const ecdsaP256: SignatureAlgorithm = {
  name: 'SDK-ECDSA-P256-SHA256',
  digest: 'sha256',
  contentHashHeader: 'x-sdk-content-sha256',
  credentialField: 'Access',
  signaturePattern: DER_SIGNATURE,
  stringToSign: simpleStringToSign,
  verify(text, signature, credential, secret) {
    const ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(Buffer.from(derivedPrivateScalar(this.name, credential.access, secret).toString(16).padStart(64, '0'), 'hex'));
    const key = createPublicKey({ key: Buffer.concat([P256_SPKI_PREFIX, ecdh.getPublicKey()]), format: 'der', type: 'spki' });
    try {
      return verifySignature('sha256', Buffer.from(text), key, Buffer.from(signature, 'hex'));
    } catch {
      return false; // not DER
    }
  },
};

const derived: SignatureAlgorithm = {
  name: 'V11-HMAC-SHA256',
  digest: 'sha256',
  contentHashHeader: 'x-sdk-content-sha256',
  credentialField: 'Credential',
  signaturePattern: HMAC_SIGNATURE,
  stringToSign(sdkDate, credential, digest) {
    return `${this.name}\n${sdkDate}\n${credential.scope}\n${digest}`;
  },
  verify: (text, signature, credential, secret) => sameBytes(hmac('sha256', derivedSigningKey(credential, secret), text), signature),
};

export const DEFAULT_ALGORITHM = hmacAlgorithm('SDK-HMAC-SHA256', 'sha256', 'x-sdk-content-sha256');

export const SIGNATURE_ALGORITHMS: readonly SignatureAlgorithm[] = [
  DEFAULT_ALGORITHM,
  hmacAlgorithm('SDK-HMAC-SM3', 'sm3', 'x-sdk-content-sm3'),
  ecdsaP256,
  derived,
];

/** Schemes Huawei's SDKs send that this service cannot verify, with the reason given to the client. */
export const UNSUPPORTED_ALGORITHMS: Readonly<Record<string, string>> = {
  'SDK-SM2-SM3': "SDK-SM2-SM3 signatures are not supported (no SM2 signature in the server's crypto library); use SDK-HMAC-SM3",
};

/** The registered algorithm whose name starts `authorization` (followed by a space), if any. */
export function algorithmOf(authorization: string): SignatureAlgorithm | undefined {
  return SIGNATURE_ALGORITHMS.find((algorithm) => authorization.startsWith(`${algorithm.name} `));
}

/** Whether an Authorization value names a signature scheme (supported or not) rather than a token. */
export const isSignatureScheme = (authorization: string): boolean =>
  algorithmOf(authorization) !== undefined || Object.keys(UNSUPPORTED_ALGORITHMS).some((name) => authorization.startsWith(`${name} `));
