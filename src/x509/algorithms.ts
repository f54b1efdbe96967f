/** Key and signature algorithms of the contract (§10.3), with their OIDs and WebCrypto parameters. */

export const KEY_ALGORITHMS = ['RSA2048', 'RSA3072', 'RSA4096', 'EC256', 'EC384', 'EC521'] as const;
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];

export const HASH_ALGORITHMS = ['SHA256', 'SHA384', 'SHA512'] as const;
export type HashAlgorithm = (typeof HASH_ALGORITHMS)[number];

export type KeyFamily = 'RSA' | 'EC';

export function keyFamily(alg: KeyAlgorithm): KeyFamily {
  return alg.startsWith('RSA') ? 'RSA' : 'EC';
}

export const RSA_MODULUS_BITS: Record<string, number> = { RSA2048: 2048, RSA3072: 3072, RSA4096: 4096 };

export const EC_CURVES = {
  EC256: { namedCurve: 'P-256', oid: '1.2.840.10045.3.1.7', bits: 256 },
  EC384: { namedCurve: 'P-384', oid: '1.3.132.0.34', bits: 384 },
  EC521: { namedCurve: 'P-521', oid: '1.3.132.0.35', bits: 521 },
} as const;

export const WEBCRYPTO_HASH: Record<HashAlgorithm, string> = { SHA256: 'SHA-256', SHA384: 'SHA-384', SHA512: 'SHA-512' };
/** node:crypto's (OpenSSL's) digest names. */
export const NODE_HASH: Record<HashAlgorithm, string> = { SHA256: 'sha256', SHA384: 'sha384', SHA512: 'sha512' };

export const SIGNATURE_OIDS: Record<KeyFamily, Record<HashAlgorithm, string>> = {
  RSA: { SHA256: '1.2.840.113549.1.1.11', SHA384: '1.2.840.113549.1.1.12', SHA512: '1.2.840.113549.1.1.13' },
  EC: { SHA256: '1.2.840.10045.4.3.2', SHA384: '1.2.840.10045.4.3.3', SHA512: '1.2.840.10045.4.3.4' },
};

/** WebCrypto generateKey/importKey parameters for a key algorithm and the hash it will sign with. */
export function webCryptoKeyParams(alg: KeyAlgorithm, hash: HashAlgorithm = 'SHA256'): RsaHashedKeyGenParams | EcKeyGenParams {
  if (keyFamily(alg) === 'RSA') {
    return {
      name: 'RSASSA-PKCS1-v1_5',
      modulusLength: RSA_MODULUS_BITS[alg],
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: WEBCRYPTO_HASH[hash],
    };
  }
  return { name: 'ECDSA', namedCurve: EC_CURVES[alg as keyof typeof EC_CURVES].namedCurve };
}

/**
 * Whatever signs X.509 structures: a CA key behind the key store, or a throwaway key in tests.
 * The X.509 code never sees key bytes.
 */
export interface Signer {
  readonly keyAlgorithm: KeyAlgorithm;
  /** Signs `data` with `hash`; returns the signature as X.509 carries it (PKCS#1 v1.5 bytes, or a DER ECDSA-Sig-Value). */
  sign(hash: HashAlgorithm, data: Uint8Array): Promise<Uint8Array>;
}
