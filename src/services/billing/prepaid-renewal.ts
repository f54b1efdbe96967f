/**
 * Auto-renewal of yearly/monthly CAs (issue #21 item 7), as Huawei's Billing Center does it for a resource whose
 * order had `is_auto_renew` 1: shortly before the paid period ends (PREPAID_RENEWAL_LEAD_MS, 7 days) it is renewed
 * for the ordered duration (`period_type` × `period_num`), starting where the old period ends and ending in step
 * with the order's date (ordered on 31 January: 28 February, then 31 March), and billed with one CA_PREPAID record
 * per renewed period.
 *
 * A CA the job reaches late (jobs off, or an outage longer than the lead) is still renewed while it is in its grace
 * or retention (frozen) period, and the renewed period starts at the original expiry, as Huawei renews such a
 * resource (docs/contract-notes.md): periods are added until the paid period again ends more than the lead from
 * now, so it leaves grace/frozen at once. A CA past retention is released (404, removed by `ca-deletion`): nothing
 * to renew. Not renewed: a CA pending deletion (its owner asked for it to go; once restored the next run catches
 * up) and a CA whose certificate has expired (it can never issue again).
 *
 * Exactly once per period, however many runs overlap: each run claims due CAs with FOR UPDATE SKIP LOCKED, and a
 * renewal commits its record and the new `prepaid_until` in one transaction; the record's unique key names the
 * period's start and the update requires `prepaid_until` to still be that start, so a second renewal of the same
 * period cannot commit.
 */
import type { Db } from '../../db/database.ts';
import type { Job } from '../../jobs/job-runner.ts';
import { recordAudit } from '../audit/audit-log.ts';
import { systemContext } from '../context.ts';
import { PREPAID_RENEWAL_LEAD_MS } from './prepaid.ts';
import type { BillingHooks } from './usage-hooks.ts';
import { claimDueRenewalsSql } from './billing-sql.ts';

export const CA_PREPAID_RENEWAL_JOB = 'ca-prepaid-renewal';
const BATCH = 100;

interface DueRenewal {
  id: string;
  domain_id: string;
  prepaid_until: Date;
  ordered_at: Date;
  period_type: number;
  period_num: number;
}

export function caPrepaidRenewalJob(deps: { db: Db; billing: Pick<BillingHooks, 'recordPrepaidRenewal'> }, intervalSeconds = 3600): Job {
  return {
    name: CA_PREPAID_RENEWAL_JOB,
    intervalSeconds,
    async run({ now }) {
      const horizon = new Date(now.getTime() + PREPAID_RENEWAL_LEAD_MS);
      let renewed = 0;
      let periods = 0;
      for (;;) {
        const claimed = await deps.db.$transaction(async (tx) => {
          const due = await tx.$queryRaw<DueRenewal[]>(claimDueRenewalsSql(now, horizon, BATCH));
          for (const ca of due) {
            const from = ca.prepaid_until;
            let until = from;
            while (until <= horizon) {
              ({ periodEnd: until } = await deps.billing.recordPrepaidRenewal(tx, {
                caId: ca.id,
                domainId: ca.domain_id,
                periodType: ca.period_type,
                periodNum: ca.period_num,
                from: until,
                orderedAt: ca.ordered_at,
              }));
              periods++;
            }
            await recordAudit(tx, systemContext(CA_PREPAID_RENEWAL_JOB, ca.domain_id), {
              action: 'pca:ca:renew',
              resourceType: 'CA',
              resourceId: ca.id,
              detail: { prepaid_expire_time: { from: from.toISOString(), to: until.toISOString() } },
            });
            renewed++;
          }
          return due.length;
        });
        if (claimed < BATCH) break;
      }
      return { renewed, periods };
    },
  };
}
