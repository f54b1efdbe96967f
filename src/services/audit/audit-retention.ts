/**
 * Audit events past AUDIT_RETENTION_DAYS are deleted: each issuance writes one, so without a bound the table grows
 * by a row per certificate for good (a mesh renewing short-lived certificates writes millions a day). Unset, events
 * are kept. Deleted domain by domain, so that each statement reads the expired rows alone through the (domain_id,
 * created_at) index: a condition on created_at alone is a scan of the whole table (the last statement of every run
 * reads it all to find nothing left), some seconds at tens of millions of rows; a created_at index would cost every
 * issuance one more entry.
 */
import { DAY_MS } from '../../clock.ts';
import { DELETE_BATCH_ROWS, deleteInBatches } from '../../db/batched-delete.ts';
import type { Db } from '../../db/database.ts';
import { Prisma } from '../../db/generated/client.ts';
import type { Job } from '../../jobs/job-runner.ts';

export const AUDIT_RETENTION_JOB = 'audit-retention';

/** The domains with audit events, each found by one probe of the (domain_id, created_at) index past the last. */
async function auditedDomains(db: Db): Promise<string[]> {
  const rows = await db.$queryRaw<{ domain_id: string }[]>`
    WITH RECURSIVE domains AS (
      (SELECT domain_id FROM audit_events ORDER BY domain_id LIMIT 1)
      UNION ALL
      SELECT (SELECT later.domain_id FROM audit_events later WHERE later.domain_id > domains.domain_id ORDER BY later.domain_id LIMIT 1)
        FROM domains WHERE domains.domain_id IS NOT NULL)
    SELECT domain_id FROM domains WHERE domain_id IS NOT NULL`;
  return rows.map(({ domain_id }) => domain_id);
}

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
      let deleted = 0;
      for (const domainId of await auditedDomains(db)) {
        deleted += await deleteInBatches(db, 'audit_events', Prisma.sql`domain_id = ${domainId} AND created_at < ${cutoff}`, batchRows);
      }
      return { deleted, before: cutoff.toISOString() };
    },
  };
}
