import type { KeyAlgorithm, Signer } from '../x509/algorithms.ts';
import type { KeyStore } from './key-store.ts';

/** The Signer the X.509 code needs, for one key held by a key store. */
export function keyStoreSigner(store: KeyStore, keyRef: string, keyAlgorithm: KeyAlgorithm): Signer {
  return {
    keyAlgorithm,
    sign: (hash, data) => store.sign(keyRef, keyAlgorithm, hash, data),
  };
}
