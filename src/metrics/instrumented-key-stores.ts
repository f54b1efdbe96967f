/** Key stores that count their operations and failures: every caller gets these through buildApp's deps. */
import { signerOver, type KeyStores } from '../keystore/index.ts';
import type { KeyStore } from '../keystore/key-store.ts';
import type { Metrics } from './metrics.ts';

const COUNTED = ['generate', 'sign', 'destroy', 'check'] as const;

function instrument(store: KeyStore, metrics: Metrics): KeyStore {
  const wrapped: KeyStore = Object.create(store) as KeyStore;
  for (const operation of COUNTED) {
    const original = store[operation].bind(store) as (...args: unknown[]) => Promise<unknown>;
    const labels = { store: store.kind, operation };
    (wrapped as unknown as Record<string, unknown>)[operation] = async (...args: unknown[]) => {
      metrics.keyStoreOperations.inc(labels);
      try {
        return await original(...args);
      } catch (error) {
        metrics.keyStoreErrors.inc(labels);
        throw error;
      }
    };
  }
  return wrapped;
}

export function instrumentKeyStores(keyStores: KeyStores, metrics: Metrics): KeyStores {
  const software = instrument(keyStores.software, metrics);
  const pkcs11 = keyStores.pkcs11 && instrument(keyStores.pkcs11, metrics);
  const get: KeyStores['get'] = (kind) => (keyStores.get(kind) === keyStores.software ? software : pkcs11!);
  return { software, pkcs11, get, signerOf: signerOver(get) };
}
