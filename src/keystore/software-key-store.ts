/**
 * Software key custody: keys are generated in process and leave it only sealed (see sealing.ts).
 * keyRef = `sw1:<key id>:<sealed PKCS#8>`; the key id is the aad the sealed key is bound to.
 */
import { createPrivateKey, randomBytes, sign as nodeSign, type KeyObject } from 'node:crypto';
import { NODE_HASH, RSA_MODULUS_BITS, webCryptoKeyParams, type HashAlgorithm, type KeyAlgorithm } from '../x509/algorithms.ts';
import { errors } from '../errors.ts';
import { LruMap } from '../lru-map.ts';
import type { GeneratedKey, KeyStore } from './key-store.ts';
import { KeyStoreError } from './key-store-errors.ts';
import type { Sealer } from './sealing.ts';

const KEY_REF_PREFIX = 'sw1';
const KEY_REF = /^sw1:([A-Za-z0-9_-]+):(.+)$/;
/** Data above this size is signed on the main thread (hashing 1 MiB takes about 2 ms). */
const SIGN_IN_PLACE_BYTES = 1 << 20;
/**
 * Keys whose signature is made in place: a P-256 signature costs ~23 µs of CPU here, and handing it to the libuv pool
 * costs about as much again (the job, the pool thread's wake-up) plus, on a busy machine, the time the woken thread
 * preempts the event loop (12 % of the loop's time at 128 requests in flight). Signing every P-256 signature in place
 * gave +9 % at 128 in flight and +19 % at 16, with 13-19 % less server CPU per certificate (bench/issue/RESULTS.md).
 * The other keys take 250 µs (RSA-2048) to 1.9 ms (P-521): the pool, so that they run beside the event loop.
 */
const SIGNED_IN_PLACE = new Set<KeyAlgorithm>(['EC256']);

/** Enough for every CA a process signs with; the least recently used key is unsealed again when needed. */
const MAX_CACHED_KEYS = 1000;
/**
 * Key ids destroyed in this process, remembered so that a sign still holding a reference read before the removal
 * does not cache the key again. Only such a sign races a destroy, moments later: the oldest ids can go.
 */
const MAX_DESTROYED_KEYS = 10_000;

const OPENSSL_CURVE_TO_ALGORITHM: Record<string, KeyAlgorithm> = {
  prime256v1: 'EC256',
  secp384r1: 'EC384',
  secp521r1: 'EC521',
};

interface UnsealedKey {
  keyId: string;
  key: KeyObject;
  algorithm: KeyAlgorithm | undefined;
}

export function createSoftwareKeyStore({ sealer }: { sealer: Sealer }): KeyStore {
  const cache = new LruMap<string, UnsealedKey>(MAX_CACHED_KEYS);
  const destroyed = new LruMap<string, true>(MAX_DESTROYED_KEYS);
  function unsealedKey(keyRef: string): UnsealedKey {
    const cached = cache.get(keyRef);
    // A copy cached under another reference of a destroyed key (one from before a master-key rotation) is dropped.
    if (cached && !destroyed.get(cached.keyId)) return cached;
    if (cached) cache.delete(keyRef);
    const { keyId, sealed } = parseKeyRef(keyRef);
    const pkcs8 = sealer.unseal(sealed, keyId);
    try {
      const der = Buffer.from(pkcs8.buffer, pkcs8.byteOffset, pkcs8.length);
      const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
      const entry = { keyId, key, algorithm: keyAlgorithmOf(key) };
      if (!destroyed.get(keyId)) cache.set(keyRef, entry);
      return entry;
    } finally {
      pkcs8.fill(0);
    }
  }

  return {
    kind: 'software',

    async generate(alg: KeyAlgorithm): Promise<GeneratedKey> {
      const subtle = globalThis.crypto.subtle;
      const pair = (await subtle.generateKey(webCryptoKeyParams(alg), true, ['sign', 'verify'])) as CryptoKeyPair;
      const pkcs8 = new Uint8Array(await subtle.exportKey('pkcs8', pair.privateKey));
      try {
        const keyId = randomBytes(16).toString('base64url');
        const keyRef = `${KEY_REF_PREFIX}:${keyId}:${sealer.seal(pkcs8, keyId)}`;
        return { keyRef, spki: new Uint8Array(await subtle.exportKey('spki', pair.publicKey)) };
      } finally {
        pkcs8.fill(0);
      }
    },

    async sign(keyRef: string, alg: KeyAlgorithm, hash: HashAlgorithm, data: Uint8Array): Promise<Uint8Array> {
      const { key, algorithm } = unsealedKey(keyRef);
      if (algorithm !== alg) {
        throw new KeyStoreError(`key ${parseKeyRef(keyRef).keyId} is ${algorithm ?? 'of an unsupported type'}, not ${alg}`);
      }
      // PKCS#1 v1.5 for RSA, DER ECDSA-Sig-Value for EC: Node's defaults for a bare KeyObject (an options object
      // costs 15-25 µs per signature: Node tells key kinds apart by catching exceptions). Runs on the libuv pool,
      // except for a cheap key's signature and for large data (a big CRL's TBS): the pool's job copies its input,
      // which would hold that data twice.
      if (SIGNED_IN_PLACE.has(alg) || data.length > SIGN_IN_PLACE_BYTES) return new Uint8Array(nodeSign(NODE_HASH[hash], data, key));
      return new Promise((resolve, reject) =>
        nodeSign(NODE_HASH[hash], data, key, (error, signature) => (error ? reject(error) : resolve(new Uint8Array(signature)))),
      );
    },

    async destroy(keyRef: string): Promise<void> {
      cache.delete(keyRef);
      // A malformed reference opens nothing: nothing to remember.
      const keyId = KEY_REF.exec(keyRef)?.[1];
      if (keyId) destroyed.set(keyId, true);
    },

    async check(sampleKeyRef?: string): Promise<void> {
      const probe = randomBytes(32);
      const unsealed = sealer.unseal(sealer.seal(probe, 'check'), 'check');
      if (!probe.equals(unsealed)) throw errors.unavailable('the software key store cannot round-trip a sealed probe');
      if (sampleKeyRef) unsealedKey(sampleKeyRef);
    },

    async close(): Promise<void> {
      cache.clear();
    },
  };
}

/** Re-seals a software keyRef under a new master key (master-key rotation); the key id stays. */
export function rewrapKeyRef(keyRef: string, oldSealer: Sealer, newSealer: Sealer): string {
  const { keyId, sealed } = parseKeyRef(keyRef);
  return `${KEY_REF_PREFIX}:${keyId}:${oldSealer.rewrap(sealed, keyId, newSealer)}`;
}

function parseKeyRef(keyRef: string): { keyId: string; sealed: string } {
  const match = KEY_REF.exec(keyRef);
  if (!match) throw new KeyStoreError('not a software key reference');
  return { keyId: match[1], sealed: match[2] };
}

function keyAlgorithmOf(key: KeyObject): KeyAlgorithm | undefined {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa') {
    return Object.entries(RSA_MODULUS_BITS).find(([, bits]) => bits === details.modulusLength)?.[0] as KeyAlgorithm;
  }
  if (key.asymmetricKeyType === 'ec') return OPENSSL_CURVE_TO_ALGORITHM[details.namedCurve ?? ''];
  return undefined;
}
