import type { HashAlgorithm, KeyAlgorithm } from '../x509/algorithms.ts';

export const KEY_STORE_KINDS = ['software', 'pkcs11'] as const;
export type KeyStoreKind = (typeof KEY_STORE_KINDS)[number];

export interface GeneratedKey {
  /** Opaque reference, stored in the database (a sealed blob for software keys, a token handle for PKCS#11). */
  keyRef: string;
  /** The public key as DER SubjectPublicKeyInfo. */
  spki: Uint8Array;
}

/** Custody of CA private keys. Keys never leave a key store. */
export interface KeyStore {
  readonly kind: KeyStoreKind;
  generate(alg: KeyAlgorithm): Promise<GeneratedKey>;
  /** Signs with the referenced key; returns the signature as X.509 carries it (PKCS#1 v1.5, or DER ECDSA-Sig-Value). */
  sign(keyRef: string, alg: KeyAlgorithm, hash: HashAlgorithm, data: Uint8Array): Promise<Uint8Array>;
  destroy(keyRef: string): Promise<void>;
  /** Throws a KeyStoreError when the store cannot be used (wrong master key, missing token, wrong PIN). */
  check(): Promise<void>;
  close(): Promise<void>;
}
