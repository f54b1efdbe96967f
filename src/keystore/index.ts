import { errors } from '../errors.ts';
import type { KeyAlgorithm, Signer } from '../x509/algorithms.ts';
import type { KeyStore, KeyStoreKind } from './key-store.ts';
import type { Pkcs11KeyStoreOptions } from './pkcs11-key-store.ts';
import { createSealer } from './sealing.ts';
import { createSoftwareKeyStore } from './software-key-store.ts';

export { KeyStoreError } from './key-store-errors.ts';
import { keyStoreSigner } from './key-store-signer.ts';

export { keyStoreSigner } from './key-store-signer.ts';
export { rewrapKeyRef } from './software-key-store.ts';

export interface KeyStoresConfig {
  /** 32 bytes sealing software keys. */
  masterKey: Uint8Array;
  /** Master keys that open software keys sealed under them (a rotation under way). */
  otherMasterKeys?: readonly Uint8Array[];
  pkcs11?: Pkcs11KeyStoreOptions;
}

export interface KeyStores {
  software: KeyStore;
  pkcs11?: KeyStore;
  /** The store of that kind; 503 when it is not configured. */
  get(kind: KeyStoreKind): KeyStore;
  /** The Signer of a CA's key, over the store that holds it; null when the columns name no key. */
  signerOf(key: HeldKeyColumns): Signer | null;
}

/** A CA's key columns, as its row (or a raw query of it) holds them. */
export interface HeldKeyColumns {
  keyStore: string | null;
  keyRef: string | null;
  keyAlgorithm: string | null;
  /** The public key the CA records: its key's first signature is verified under it (key-store-signer.ts). */
  publicKeySpki: Uint8Array | null;
}

/** `signerOf` over a `get`: the one place where a CA's key columns become a Signer. */
export const signerOver =
  (get: KeyStores['get']) =>
  ({ keyStore, keyRef, keyAlgorithm, publicKeySpki }: HeldKeyColumns): Signer | null =>
    keyStore && keyRef && keyAlgorithm
      ? keyStoreSigner(get(keyStore as KeyStoreKind), keyRef, keyAlgorithm as KeyAlgorithm, publicKeySpki)
      : null;

/**
 * pkcs11js is a native module: it is loaded on the PKCS#11 store's first use, so a deployment without a token (a
 * Lambda bundle built on another OS or architecture, say) never opens it. A failed load stays failed, answering 503
 * until a restart: Node keeps a module whose evaluation threw and gives every later import() the same error.
 */
export function lazyPkcs11KeyStore(
  options: Pkcs11KeyStoreOptions,
  loadModule: () => Promise<typeof import('./pkcs11-key-store.ts')> = () => import('./pkcs11-key-store.ts'),
): KeyStore {
  let store: Promise<KeyStore> | undefined;
  const load = () =>
    (store ??= loadModule().then(
      (module) => module.createPkcs11KeyStore(options),
      (error: unknown) => {
        const reason = error instanceof Error ? error.message : String(error);
        throw errors.keyStoreUnavailable(`the PKCS#11 module (pkcs11js) cannot be loaded, until a restart: ${reason}`, error);
      },
    ));
  return {
    kind: 'pkcs11',
    generate: async (alg, record) => (await load()).generate(alg, record),
    sign: async (keyRef, alg, hash, data) => (await load()).sign(keyRef, alg, hash, data),
    destroy: async (keyRef) => (await load()).destroy(keyRef),
    check: async (sampleKeyRef) => (await load()).check(sampleKeyRef),
    close: async () => {
      // A store that never loaded has nothing to close.
      await (await store?.catch(() => undefined))?.close();
    },
  };
}

/** The stores a deployment has. Nothing touches the token until first use or check(). */
export function createKeyStores(config: KeyStoresConfig): KeyStores {
  const software = createSoftwareKeyStore({ sealer: createSealer(config.masterKey, config.otherMasterKeys) });
  const pkcs11 = config.pkcs11 ? lazyPkcs11KeyStore(config.pkcs11) : undefined;
  const get = (kind: KeyStoreKind): KeyStore => {
    const store = kind === 'software' ? software : pkcs11;
    if (!store) throw errors.unavailable(`the ${kind} key store is not configured`);
    return store;
  };
  return { software, pkcs11, get, signerOf: signerOver(get) };
}
