import { verify } from 'node:crypto';
import { NODE_HASH, type KeyAlgorithm, type Signer } from '../x509/algorithms.ts';
import type { KeyStore } from './key-store.ts';
import { KeyStoreError } from './key-store-errors.ts';

/** Key references whose first signature verified under the public key their CA records; bounded, as the key cache. */
const provenKeys = new Map<string, Buffer>();
const MAX_PROVEN_KEYS = 10_000;

/**
 * The Signer the X.509 code needs, for one key held by a key store. Given the public key its CA records, the first
 * signature is verified under it before it is used (once per key and process): nothing else ties a key reference to
 * its CA, so a `key_ref` copied onto another CA row (by someone who can write the database but holds no master key
 * or PIN) would otherwise sign that CA's certificates, CRLs and OCSP answers with a key that is not its own.
 */
export function keyStoreSigner(store: KeyStore, keyRef: string, keyAlgorithm: KeyAlgorithm, publicKeySpki?: Uint8Array | null): Signer {
  const expected = publicKeySpki ? Buffer.from(publicKeySpki.buffer, publicKeySpki.byteOffset, publicKeySpki.length) : undefined;
  let proven = expected === undefined || provenKeys.get(keyRef)?.equals(expected) === true;
  return {
    keyAlgorithm,
    async sign(hash, data) {
      const signature = await store.sign(keyRef, keyAlgorithm, hash, data);
      if (!proven) {
        if (!verify(NODE_HASH[hash], data, { key: expected!, format: 'der', type: 'spki' }, signature)) {
          throw new KeyStoreError(
            `the ${store.kind} key held for this CA is not the key of its public_key_spki: nothing signed with it is used`,
          );
        }
        if (provenKeys.size >= MAX_PROVEN_KEYS) provenKeys.clear();
        provenKeys.set(keyRef, Buffer.from(expected!));
        proven = true;
      }
      return signature;
    },
  };
}
