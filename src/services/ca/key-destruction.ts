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
 *
 * Also the keys of CAs never created: a creation records a token key in pending_ca_keys before making it and deletes
 * the record when its CA commits (ca-lifecycle.ts), so an old record whose key no CA references is a key left on the
 * token by a process killed mid-creation or a clean-up the token refused. Only recorded keys are destroyed: a token
 * shared with other deployments keeps theirs.
 */
import { HOUR_MS } from '../../clock.ts';
import type { Db } from '../../db/database.ts';
import type { KeyStores } from '../../keystore/index.ts';
import type { KeyStoreKind } from '../../keystore/key-store.ts';
import { lockPendingCaKeySql } from './ca-sql.ts';

const BATCH = 100;

/**
 * Age at which a pending key's record means its creation is over: far longer than any creation takes (an RSA-4096
 * generation takes seconds, the CA's transaction at most 15 s), so a creation still running never loses its key.
 */
export const ORPHAN_KEY_AGE_MS = HOUR_MS;

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

/**
 * Destroys the keys recorded in pending_ca_keys before `now - ORPHAN_KEY_AGE_MS` that no CA row references, then
 * their records; a referenced key is kept and only its record goes. Each record stays locked while its key is
 * destroyed, so the creation that recorded it cannot commit a CA with that key meanwhile (it deletes the record in
 * its transaction and fails when the record is gone). Failures are collected (the record stays) and the rest go on.
 * `destroyed` counts records, a key the token never made included (the process died before): destroying is idempotent.
 */
export async function destroyOrphanedCaKeys(
  db: Db,
  keyStores: Pick<KeyStores, 'get'>,
  now: Date,
): Promise<{ destroyed: number; failures: { keyRef: string; error: unknown }[] }> {
  const before = new Date(now.getTime() - ORPHAN_KEY_AGE_MS);
  let destroyed = 0;
  const failures: { keyRef: string; error: unknown }[] = [];
  let after = '';
  for (;;) {
    const due = await db.pendingCaKey.findMany({
      where: { createdAt: { lt: before }, keyRef: { gt: after } },
      select: { keyRef: true },
      orderBy: { keyRef: 'asc' },
      take: BATCH,
    });
    for (const { keyRef } of due) {
      try {
        const wasDestroyed = await db.$transaction(async (tx) => {
          const [pending] = await tx.$queryRaw<{ key_store: string; referenced: boolean }[]>(lockPendingCaKeySql(keyRef, before));
          if (!pending) return false; // committed with its CA, or another run holds it
          if (!pending.referenced) await keyStores.get(pending.key_store as KeyStoreKind).destroy(keyRef);
          await tx.pendingCaKey.delete({ where: { keyRef } });
          return !pending.referenced;
        });
        if (wasDestroyed) destroyed++;
      } catch (error) {
        failures.push({ keyRef, error });
      }
    }
    if (due.length < BATCH) return { destroyed, failures };
    after = due[due.length - 1].keyRef;
  }
}
