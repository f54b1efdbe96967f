import type { KeyStoreKind } from '../config.ts';
import type { HashAlgorithm, KeyAlgorithm } from '../x509/algorithms.ts';

// The kinds are configuration's (KEY_STORE names one); the stores implement them.
export type { KeyStoreKind };

export interface GeneratedKey {
  /** Opaque reference, stored in the database (a sealed blob for software keys, a token handle for PKCS#11). */
  keyRef: string;
  /** The public key as DER SubjectPublicKeyInfo. */
  spki: Uint8Array;
}

/** Custody of CA private keys. Keys never leave a key store. */
export interface KeyStore {
  readonly kind: KeyStoreKind;
  /**
   * Makes a key pair. A store that holds its keys (PKCS#11) first awaits `record(keyRef)` with the new key's
   * reference, before anything exists in the store, so that the caller can note durably what a crash could leave
   * behind there; a store whose key lives in its reference alone (software) leaves nothing behind and never calls it.
   */
  generate(alg: KeyAlgorithm, record?: (keyRef: string) => Promise<void>): Promise<GeneratedKey>;
  /** Signs with the referenced key; returns the signature as X.509 carries it (PKCS#1 v1.5, or DER ECDSA-Sig-Value). */
  sign(keyRef: string, alg: KeyAlgorithm, hash: HashAlgorithm, data: Uint8Array): Promise<Uint8Array>;
  /**
   * Destroys the referenced key where the store holds it (PKCS#11: the token objects) and forgets any cached copy.
   * Idempotent: a key already gone is no error. A software key lives in its keyRef alone: the caller destroys it by
   * forgetting the reference.
   */
  destroy(keyRef: string): Promise<void>;
  /**
   * Throws when the store cannot be used (missing token, wrong PIN: 503). Given a key reference stored by this
   * deployment, also proves that key is usable: a wrong master key or a key missing from the token shows here.
   */
  check(sampleKeyRef?: string): Promise<void>;
  close(): Promise<void>;
}
