/**
 * destroy() forgets any cached copy of the key for good: a sign still holding a reference read before the CA's removal
 * (it arrives after destroy) unseals the key for itself but does not put it back in the cache. Unseals are counted
 * through the sealer: each one is a key the cache did not hold.
 */
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { createSealer, type Sealer } from '../../src/keystore/sealing.ts';
import { createSoftwareKeyStore, rewrapKeyRef } from '../../src/keystore/software-key-store.ts';

function countingSealer(inner: Sealer): Sealer & { unseals: number } {
  const counted = {
    unseals: 0,
    fingerprint: inner.fingerprint,
    seal: (plaintext: Uint8Array, aad: string) => inner.seal(plaintext, aad),
    unseal: (sealed: string, aad: string) => {
      counted.unseals++;
      return inner.unseal(sealed, aad);
    },
    rewrap: (sealed: string, aad: string, next: Sealer) => inner.rewrap(sealed, aad, next),
  };
  return counted;
}

const data = randomBytes(64);

t.test('a sign arriving after destroy does not cache the key again', async (t) => {
  const sealer = countingSealer(createSealer(randomBytes(32)));
  const store = createSoftwareKeyStore({ sealer });
  const { keyRef } = await store.generate('EC256');
  await store.sign(keyRef, 'EC256', 'SHA256', data);
  await store.sign(keyRef, 'EC256', 'SHA256', data);
  t.equal(sealer.unseals, 1, 'cached after the first sign');
  await store.destroy(keyRef);
  await store.sign(keyRef, 'EC256', 'SHA256', data); // its row was read before the removal
  await store.sign(keyRef, 'EC256', 'SHA256', data);
  t.equal(sealer.unseals, 3, 'each later sign unseals afresh: no copy was cached');
});

t.test("destroying one reference also forgets a copy cached under the key's reference from before a rotation", async (t) => {
  const oldKey = randomBytes(32);
  const newKey = randomBytes(32);
  // A store opening either master key, as instances do during an online rotation.
  const sealer = countingSealer(createSealer(newKey, [oldKey]));
  const store = createSoftwareKeyStore({ sealer });
  const { keyRef: before } = await createSoftwareKeyStore({ sealer: createSealer(oldKey) }).generate('EC256');
  const after = rewrapKeyRef(before, createSealer(oldKey), createSealer(newKey));
  await store.sign(before, 'EC256', 'SHA256', data);
  await store.sign(after, 'EC256', 'SHA256', data);
  t.equal(sealer.unseals, 2, 'both references cached');
  await store.destroy(after);
  await store.sign(before, 'EC256', 'SHA256', data);
  await store.sign(before, 'EC256', 'SHA256', data);
  t.equal(sealer.unseals, 4, 'the older reference is not served from the cache either');
});
