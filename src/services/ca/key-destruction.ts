/**
 * Destroying the key of a removed CA (issue #13 item 12), once its removal is final: never while a deletion is
 * pending, since restore must still find a usable key.
 *
 * Order: the removal commits first (the CA is gone from the API, whole), then the store destroys the key, then
 * `key_ref` is cleared. The store call cannot join the database transaction, so a crash or a store failure between
 * the two leaves a removed CA whose `key_ref` is still set: that is the durable to-do the `ca-deletion` job works
 * through on every run. Destroying is idempotent (a key already gone is no error), so a retry after a crash that
 * came after the token call is harmless. For software keys, clearing `key_ref` is the destruction itself: the sealed
 * key lives in that column and nowhere else.
 */
import type { Db } from '../../db/database.ts';
import type { KeyStores } from '../../keystore/index.ts';
import type { KeyStoreKind } from '../../keystore/key-store.ts';

const BATCH = 100;

export interface HeldKey {
  id: string;
  keyStore: string | null;
  keyRef: string | null;
}

/**
 * Destroys the key of one removed CA and forgets its reference; throws when the store fails (`key_ref` stays).
 * False when a concurrent run cleared it first.
 */
export async function destroyRemovedCaKey(db: Db, keyStores: Pick<KeyStores, 'get'>, ca: HeldKey): Promise<boolean> {
  if (!ca.keyRef) return false;
  if (ca.keyStore) await keyStores.get(ca.keyStore as KeyStoreKind).destroy(ca.keyRef);
  const { count } = await db.certificateAuthority.updateMany({
    where: { id: ca.id, keyRef: ca.keyRef, removedAt: { not: null } },
    data: { keyRef: null },
  });
  return count > 0;
}

/** Every removed CA still holding a key reference, in id order; failures are collected and the rest go on. */
export async function destroyKeysOfRemovedCas(
  db: Db,
  keyStores: Pick<KeyStores, 'get'>,
): Promise<{ destroyed: number; failures: { id: string; error: unknown }[] }> {
  let destroyed = 0;
  const failures: { id: string; error: unknown }[] = [];
  let after: string | undefined;
  for (;;) {
    const held = await db.certificateAuthority.findMany({
      where: { removedAt: { not: null }, keyRef: { not: null }, ...(after && { id: { gt: after } }) },
      select: { id: true, keyStore: true, keyRef: true },
      orderBy: { id: 'asc' },
      take: BATCH,
    });
    for (const ca of held) {
      try {
        if (await destroyRemovedCaKey(db, keyStores, ca)) destroyed++;
      } catch (error) {
        failures.push({ id: ca.id, error });
      }
    }
    if (held.length < BATCH) return { destroyed, failures };
    after = held[held.length - 1].id;
  }
}
