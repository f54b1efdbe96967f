/**
 * Audit events past AUDIT_RETENTION_DAYS are deleted: each issuance writes one, so without a bound the table grows
 * by a row per certificate for good (a mesh renewing short-lived certificates writes millions a day). Unset, events
 * are kept. Rows are appended in time order, so the oldest lie first in the table and each bounded delete finds its
 * rows without an index on created_at (one would cost every issuance an index entry).
 */
import { DELETE_BATCH_ROWS, deleteInBatches } from '../../db/batched-delete.ts';
import type { Db } from '../../db/database.ts';
import { Prisma } from '../../db/generated/client.ts';
import type { Job } from '../../jobs/job-runner.ts';

export const AUDIT_RETENTION_JOB = 'audit-retention';

const DAY_MS = 86_400_000;

export function auditRetentionJob(
  { db, retentionDays }: { db: Db; retentionDays: number | undefined },
  intervalSeconds = 3600,
  batchRows = DELETE_BATCH_ROWS,
): Job {
  return {
    name: AUDIT_RETENTION_JOB,
    intervalSeconds,
    async run({ now }) {
      if (retentionDays === undefined) return { deleted: 0, kept: 'AUDIT_RETENTION_DAYS is not set' };
      const cutoff = new Date(now.getTime() - retentionDays * DAY_MS);
      return {
        deleted: await deleteInBatches(db, 'audit_events', Prisma.sql`created_at < ${cutoff}`, batchRows),
        before: cutoff.toISOString(),
      };
    },
  };
}
