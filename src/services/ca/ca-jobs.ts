/**
 * Scheduled CA jobs (auto-renewal of yearly/monthly CAs is billing/prepaid-renewal.ts). Both are safe to run twice or on two instances at once: deletion claims rows with
 * FOR UPDATE SKIP LOCKED and finalizes each with a conditional UPDATE, then destroys the keys of removed CAs
 * (key-destruction.ts: idempotent, conditional); expiry is one conditional UPDATE.
 */
import type { Db } from '../../db/database.ts';
import type { Job } from '../../jobs/job-runner.ts';
import type { KeyStores } from '../../keystore/index.ts';
import { auditRows, recordAudit } from '../audit/audit-log.ts';
import { insertRows } from '../../db/bulk-insert.ts';
import type { BillingHooks } from '../billing/usage-hooks.ts';
import { systemContext } from '../context.ts';
import { claimRemovableCasSql, expireCasSql } from './ca-sql.ts';
import { disableSubordinates } from './ca-descendants.ts';
import { destroyKeysOfRemovedCas, destroyOrphanedCaKeys } from './key-destruction.ts';

export const CA_DELETION_JOB = 'ca-deletion';
export const CA_EXPIRY_JOB = 'ca-expiry';
const BATCH = 100;
const EXPIRY_BATCH = 1000;

export interface CaJobDeps {
  db: Db;
  keyStores: Pick<KeyStores, 'get'>;
  billing: Pick<BillingHooks, 'endUsage'>;
}

/**
 * Removes CAs whose `delete_time` has passed, and yearly/monthly CAs whose retention period has ended (released,
 * billing/prepaid.ts): both answer 404 from then on (derived on read); this makes it durable. Revocation data
 * stays; their tags go, and the CAs below a released CA, at any depth, are disabled. Then destroys the key of every removed CA that still holds one, this run's and any an
 * earlier run (or an immediate removal) could not destroy, and the token keys of CA creations that never committed
 * (key-destruction.ts); a store failure fails the run after the others are done, and the next run retries it.
 */
export function caDeletionJob(deps: CaJobDeps, intervalSeconds = 300): Job {
  return {
    name: CA_DELETION_JOB,
    intervalSeconds,
    async run({ now }) {
      let removed = 0;
      for (;;) {
        const claimed = await deps.db.$transaction(async (tx) => {
          // The claim's WHERE is re-checked on the locked row, so a CA restored or renewed meanwhile is not taken.
          const due = await tx.$queryRaw<{ id: string }[]>(claimRemovableCasSql(now, BATCH));
          for (const { id } of due) {
            const { count } = await tx.certificateAuthority.updateMany({ where: { id, removedAt: null }, data: { removedAt: now } });
            if (count === 0) continue;
            const row = await tx.certificateAuthority.findUniqueOrThrow({ where: { id } });
            // delete_time is set only while DELETED: a CA without a passed one was claimed as released.
            const released = !(row.deleteTime && row.deleteTime <= now);
            await deps.billing.endUsage(tx, row, row.deleteTime ?? now);
            await tx.tag.deleteMany({ where: { resourceType: 'CA', resourceId: id } });
            const ctx = systemContext(CA_DELETION_JOB, row.domainId);
            // A deleted CA's descendants were disabled by the deletion; a released one's are disabled now.
            if (released) await disableSubordinates(tx, ctx, id, `issuer ${id} released: prepaid retention period ended`, now);
            await recordAudit(tx, ctx, {
              action: 'pca:ca:remove',
              resourceType: 'CA',
              resourceId: id,
              ...(released && {
                detail: { reason: 'prepaid retention period ended', prepaid_expire_time: row.prepaidUntil!.toISOString() },
              }),
            });
            removed++;
          }
          return due.length;
        });
        if (claimed < BATCH) break;
      }
      const keys = await destroyKeysOfRemovedCas(deps.db, deps.keyStores);
      const orphans = await destroyOrphanedCaKeys(deps.db, deps.keyStores, now);
      if (keys.failures.length > 0) {
        const [first] = keys.failures;
        throw new Error(
          `removed ${removed} CAs, destroyed ${keys.destroyed} keys; the keys of ${keys.failures.length} removed CAs could not be destroyed ` +
            `(CA ${first.id}: ${(first.error as Error).message}); the next run retries`,
          { cause: first.error },
        );
      }
      if (orphans.failures.length > 0) {
        const [first] = orphans.failures;
        throw new Error(
          `removed ${removed} CAs, destroyed ${keys.destroyed + orphans.destroyed} keys; ${orphans.failures.length} keys of CAs never ` +
            `created could not be destroyed (key ${first.keyRef}: ${(first.error as Error).message}); the next run retries`,
          { cause: first.error },
        );
      }
      // Keys left behind by failed creations are rare: named only when there were some.
      return { removed, keysDestroyed: keys.destroyed, ...(orphans.destroyed > 0 && { orphanKeysDestroyed: orphans.destroyed }) };
    },
  };
}

/**
 * Stores EXPIRED for ACTIVED/DISABLED CAs past `not_after` (reads derive it already; this makes it durable), in
 * transactions of EXPIRY_BATCH CAs with their audit events: a fleet expiring at once must not make one transaction
 * that outlasts its timeout, rolls back and leaves every run to fail the same way.
 */
export function caExpiryJob(deps: Pick<CaJobDeps, 'db'>, intervalSeconds = 300, batch = EXPIRY_BATCH): Job {
  return {
    name: CA_EXPIRY_JOB,
    intervalSeconds,
    async run({ now }) {
      let expired = 0;
      for (;;) {
        const count = await deps.db.$transaction(async (tx) => {
          const rows = await tx.$queryRaw<{ id: string; domain_id: string }[]>(expireCasSql(now, batch));
          const changes = rows.map(({ id, domain_id: domainId }) => ({
            context: systemContext(CA_EXPIRY_JOB, domainId),
            change: { action: 'pca:ca:expire', resourceType: 'CA' as const, resourceId: id },
          }));
          if (changes.length > 0) await insertRows(tx, auditRows(changes));
          return rows.length;
        });
        expired += count;
        if (count < batch) return { expired };
      }
    },
  };
}
