/**
 * Scheduled CA jobs. Both are safe to run twice or on two instances at once: deletion claims rows with
 * FOR UPDATE SKIP LOCKED and finalizes each with a conditional UPDATE; expiry is one conditional UPDATE.
 */
import type { Db } from '../../db/database.ts';
import type { Job } from '../../jobs/job-runner.ts';
import type { KeyStores } from '../../keystore/index.ts';
import type { KeyStoreKind } from '../../keystore/key-store.ts';
import { recordAudit } from '../audit/audit-log.ts';
import type { BillingHooks } from '../billing/usage-hooks.ts';
import { systemContext } from '../context.ts';

export const CA_DELETION_JOB = 'ca-deletion';
export const CA_EXPIRY_JOB = 'ca-expiry';
const BATCH = 100;

export interface CaJobDeps {
  db: Db;
  keyStores: KeyStores;
  billing: Pick<BillingHooks, 'endUsage'>;
}

/** Removes CAs whose `delete_time` has passed: 404 from then on; revocation data stays; their tags go. */
export function caDeletionJob(deps: CaJobDeps, intervalSeconds = 300): Job {
  return {
    name: CA_DELETION_JOB,
    intervalSeconds,
    async run({ now }) {
      let removed = 0;
      for (;;) {
        const keys = await deps.db.$transaction(async (tx) => {
          const due = await tx.$queryRaw<{ id: string }[]>`
            SELECT id::text AS id FROM certificate_authorities
            WHERE status = 'DELETED' AND removed_at IS NULL AND delete_time <= ${now}
            ORDER BY delete_time LIMIT ${BATCH} FOR UPDATE SKIP LOCKED`;
          const destroyed: { store: string; keyRef: string }[] = [];
          for (const { id } of due) {
            const { count } = await tx.certificateAuthority.updateMany({ where: { id, status: 'DELETED', removedAt: null }, data: { removedAt: now } });
            if (count === 0) continue;
            const row = await tx.certificateAuthority.findUniqueOrThrow({ where: { id } });
            await deps.billing.endUsage(tx, row, row.deleteTime ?? now);
            await tx.tag.deleteMany({ where: { resourceType: 'CA', resourceId: id } });
            await recordAudit(tx, systemContext(CA_DELETION_JOB, row.domainId), { action: 'pca:ca:remove', resourceType: 'CA', resourceId: id });
            if (row.keyStore && row.keyRef) destroyed.push({ store: row.keyStore, keyRef: row.keyRef });
          }
          return { claimed: due.length, destroyed };
        });
        for (const key of keys.destroyed) {
          await deps.keyStores.get(key.store as KeyStoreKind).destroy(key.keyRef).catch(() => undefined);
        }
        removed += keys.destroyed.length;
        if (keys.claimed < BATCH) break;
      }
      return { removed };
    },
  };
}

/** Stores EXPIRED for ACTIVED/DISABLED CAs past `not_after` (reads derive it already; this makes it durable). */
export function caExpiryJob(deps: Pick<CaJobDeps, 'db'>, intervalSeconds = 600): Job {
  return {
    name: CA_EXPIRY_JOB,
    intervalSeconds,
    async run({ now }) {
      return deps.db.$transaction(async (tx) => {
        const expired = await tx.$queryRaw<{ id: string; domain_id: string }[]>`
          UPDATE certificate_authorities SET status = 'EXPIRED', updated_at = ${now}
          WHERE status IN ('ACTIVED', 'DISABLED') AND not_after <= ${now} AND removed_at IS NULL
          RETURNING id::text AS id, domain_id`;
        for (const { id, domain_id: domainId } of expired) {
          await recordAudit(tx, systemContext(CA_EXPIRY_JOB, domainId), { action: 'pca:ca:expire', resourceType: 'CA', resourceId: id });
        }
        return { expired: expired.length };
      });
    },
  };
}
