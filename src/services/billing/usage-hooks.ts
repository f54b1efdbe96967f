/**
 * Billing hooks the CA, order and certificate services call INSIDE their own state-changing transaction, so a
 * change never commits without its billing trace (and a rolled-back change leaves none).
 *
 * How to get them: `createBillingHooks(config.billing)` returns a `BillingHooks` object. The composition root
 * (src/services/index.ts) builds one as `const billingHooks = createBillingHooks(config.billing);` and exposes it
 * as `services.billing.hooks`; pass `billingHooks` to your service factory as a dependency (`billing: BillingHooks`)
 * and call e.g. `await deps.billing.startBillableUsage(tx, ca, at)`. `at` is always the service clock's now() of
 * the transaction (the same instant the status change is stamped with). `ca` needs only `{ id, domainId,
 * chargingMode }`: a Prisma CertificateAuthority row fits.
 *
 * CA life (pay-per-use time, §8; every call is a no-op for a prepaid CA, charging_mode 0):
 *   startBillableUsage(tx, ca, at)          a root is created, a subordinate is activated or imported
 *   startPendingDeletion(tx, ca, at)        the CA enters DELETED (scheduled deletion): billing pauses
 *   endPendingDeletionByRestore(tx, ca, at) the CA is restored: the wait becomes billable, billing resumes
 *   endUsage(tx, ca, at)                    the CA is finally removed: nothing further is billed
 * Disable, enable and expiry need no call: those states keep costing.
 *
 * Issuance (§8, written in the issuing transaction; an idempotent replay must not call it):
 *   recordCertificateIssue(tx, { domainId, resourceId, issuerCaId, at })
 *     resourceId = the certificate id, or the ca_id of a CSR-issued INTERMEDIATE_CA. Uses one of the issuing
 *     CA's free_quota when above 0 (price 0). Call it as the LAST statement before commit: with volume tiers
 *     configured it holds the domain's monthly counter row (domain_monthly_issues) until commit.
 *   chargeCertificateIssues(tx, issues, freeQuotas)
 *     the same for a group-committed batch, returning the CERT_ISSUE records for the caller's `insertRows` (one
 *     statement with the certificates); `freeQuotas` maps each issuing CA to its free_quota as read under the
 *     transaction's FOR SHARE lock on that CA (no one else can change it then). The first issues of each CA use
 *     its free quota, in order. Insert the records before commit, as the last statement.
 *   paidIssueRecords(issues)
 *     without volume tiers only (the property is absent with them): the records of issues that use no free quota,
 *     priced with no database access, for a batch written in one statement with its certificates.
 *
 * Orders (§4.2.2):
 *   recordPrepaidOrder(tx, { caId, domainId, periodType, periodNum, at })
 *     one CA_PREPAID record per ordered CA; also sets that CA's prepaid_until to the end of the purchased period
 *     (call it after inserting the CA row), and returns that end.
 *   recordPrepaidRenewal(tx, { caId, domainId, periodType, periodNum, from })
 *     the same for an automatic renewal (billing/prepaid-renewal.ts): one CA_PREPAID record for the period that
 *     starts at `from` (the CA's prepaid_until), keyed by that start so a period is never billed twice; moves
 *     prepaid_until from `from` to the period's end, and throws if it no longer is `from`.
 */
import { randomUUID } from 'node:crypto';
import { addCalendarMonthsUtc } from '../../clock.ts';
import type { BulkRows } from '../../db/bulk-insert.ts';
import { Prisma } from '../../db/generated/client.ts';
import { runnerOf, type Executor, type Tx } from '../../db/tx.ts';
import { certificateUnitPrice, priceTimes, type PriceCatalog } from '../../config/price-catalog.ts';
import { CHARGING_MODE, PERIOD_TYPE } from './billing-codes.ts';
import { ADD_MONTHLY_ISSUES, LOCK_MONTHLY_ISSUES, RECOUNT_MONTHLY_ISSUES, USE_FREE_ISSUES, USE_ONE_FREE_ISSUE } from './billing-sql.ts';

export interface BillableCa {
  id: string;
  domainId: string;
  chargingMode: number;
}

export interface CertificateIssue {
  domainId: string;
  /** The certificate id, or the ca_id of a CSR-issued INTERMEDIATE_CA. */
  resourceId: string;
  issuerCaId: string;
  at: Date;
}

export interface PrepaidOrderLine {
  caId: string;
  domainId: string;
  /** 2 month, 3 year */
  periodType: number;
  periodNum: number;
  at: Date;
}

export interface PrepaidRenewalLine extends Omit<PrepaidOrderLine, 'at'> {
  /** The end of the period being renewed: the renewed period starts there, whenever the renewal runs. */
  from: Date;
  /** When the CA was ordered: every period's end is counted from it (see prepaidPeriodEnd). */
  orderedAt: Date;
}

export interface IssueCharge {
  recordId: string;
  /** True when the issuing CA's free quota paid for it. */
  free: boolean;
  unitPrice: string;
  amount: string;
}

export interface BillingHooks {
  startBillableUsage(tx: Tx, ca: BillableCa, at: Date): Promise<void>;
  startPendingDeletion(tx: Tx, ca: BillableCa, at: Date): Promise<void>;
  endPendingDeletionByRestore(tx: Tx, ca: BillableCa, at: Date): Promise<void>;
  endUsage(tx: Tx, ca: BillableCa, at: Date): Promise<void>;
  recordCertificateIssue(tx: Tx, issue: CertificateIssue): Promise<IssueCharge>;
  chargeCertificateIssues(tx: Executor, issues: CertificateIssue[], freeQuotas: ReadonlyMap<string, number>): Promise<BulkRows>;
  paidIssueRecords?: (issues: CertificateIssue[]) => BulkRows;
  recordPrepaidOrder(tx: Tx, line: PrepaidOrderLine): Promise<{ periodEnd: Date }>;
  recordPrepaidRenewal(tx: Tx, line: PrepaidRenewalLine): Promise<{ periodEnd: Date }>;
}

export const USAGE_KIND = { BILLABLE: 'BILLABLE', PENDING_DELETION: 'PENDING_DELETION' } as const;

function isPayPerUse(ca: BillableCa): boolean {
  return ca.chargingMode === CHARGING_MODE.PAY_PER_USE;
}

async function openPeriod(tx: Tx, ca: BillableCa, kind: string, at: Date): Promise<void> {
  await tx.caUsagePeriod.create({ data: { id: randomUUID(), caId: ca.id, domainId: ca.domainId, kind, startAt: at } });
}

/** Closes the CA's open period(s) of `kind` (any kind when omitted); returns how many were open. */
async function closePeriods(tx: Tx, ca: BillableCa, at: Date, kind?: string, restoredAt?: Date): Promise<number> {
  const { count } = await tx.caUsagePeriod.updateMany({
    where: { caId: ca.id, endAt: null, ...(kind ? { kind } : {}) },
    data: { endAt: at, ...(restoredAt ? { restoredAt } : {}) },
  });
  return count;
}

/** How often a process recounts a domain's monthly issues from the records (countMonthlyIssues). */
export const RECOUNT_INTERVAL_MS = 15 * 60_000;

export function startOfUtcMonth(at: Date): Date {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1));
}

/**
 * The end of `periodNum` calendar months or years from `start` (UTC; 31 Jan + 1 month = 28/29 Feb), in step with
 * the order of `orderedAt`: a CA ordered on 31 January renews to 28 February, then 31 March and 30 April, where
 * counting from each period's end would keep it on the 28th for good.
 */
export function prepaidPeriodEnd(start: Date, periodType: number, periodNum: number, orderedAt = start): Date {
  const monthsSinceOrder = (start.getUTCFullYear() - orderedAt.getUTCFullYear()) * 12 + start.getUTCMonth() - orderedAt.getUTCMonth();
  return addCalendarMonthsUtc(orderedAt, monthsSinceOrder + (periodType === PERIOD_TYPE.YEAR ? 12 * periodNum : periodNum));
}

export function createBillingHooks(prices: PriceCatalog): BillingHooks {
  const tiered = prices.certificateTiers.length > 1;

  /** When (issuance time, ms) this process last recounted each domain's row, for the current month only. */
  let recounted = { month: 0, at: new Map<string, number>() };

  /**
   * Counts `count` more issuances of the domain in the UTC month starting `month` (free ones too: they count towards
   * the volume) and returns how many came before them this month. The counter's row stays locked until commit.
   * The row is recounted from the month's records the first time this process prices in a domain's month, and again
   * once RECOUNT_INTERVAL_MS has passed: issuances that did not count (a process with flat prices, an earlier release
   * during a rolling upgrade) then move the positions within that interval, not at the next restart or month.
   */
  async function countMonthlyIssues(tx: Executor, domainId: string, month: Date, count: number, at: Date): Promise<number> {
    const run = runnerOf(tx);
    if (recounted.month !== month.getTime()) recounted = { month: month.getTime(), at: new Map() };
    const last = recounted.at.get(domainId);
    if (last !== undefined && at.getTime() - last < RECOUNT_INTERVAL_MS) {
      const [counted] = await run<{ before: number }>(ADD_MONTHLY_ISSUES, [domainId, month, count]);
      if (counted) return counted.before;
    }
    await run(LOCK_MONTHLY_ISSUES, [domainId, month]);
    const [row] = await run<{ before: number }>(RECOUNT_MONTHLY_ISSUES, [domainId, month, count, addCalendarMonthsUtc(month, 1)]);
    recounted.at.set(domainId, at.getTime());
    return row!.before;
  }

  /** The price of a paid issue that follows `issuedBefore` issues of its domain this month. */
  function paidUnitPrice(issuedBefore: number): string {
    return tiered ? certificateUnitPrice(prices.certificateTiers, issuedBefore + 1) : prices.certificateTiers[0]!.unitPrice;
  }

  function issueRecord(issue: CertificateIssue, charge: IssueCharge) {
    return {
      id: charge.recordId,
      uniqueKey: `CERT_ISSUE:${issue.resourceId}`,
      domainId: issue.domainId,
      resourceType: 'CERTIFICATE',
      resourceId: issue.resourceId,
      chargingMode: CHARGING_MODE.PAY_PER_USE,
      usageType: 'CERT_ISSUE',
      usageStart: issue.at,
      usageEnd: issue.at,
      usageAmount: 1n,
      unitPrice: new Prisma.Decimal(charge.unitPrice),
      amount: new Prisma.Decimal(charge.amount),
      currency: prices.currency,
    };
  }

  /** One CA_PREPAID record for `periodNum` months or years from `start`, at today's price; returns the period's end. */
  async function recordPrepaidPeriod(
    tx: Tx,
    line: Omit<PrepaidOrderLine, 'at'>,
    start: Date,
    orderedAt: Date,
    uniqueKey: string,
  ): Promise<Date> {
    const periodEnd = prepaidPeriodEnd(start, line.periodType, line.periodNum, orderedAt);
    const unitPrice = line.periodType === PERIOD_TYPE.YEAR ? prices.caPricePerYear : prices.caPricePerMonth;
    await tx.billingRecord.create({
      data: {
        id: randomUUID(),
        uniqueKey,
        domainId: line.domainId,
        resourceType: 'CA',
        resourceId: line.caId,
        chargingMode: CHARGING_MODE.PREPAID,
        usageType: 'CA_PREPAID',
        usageStart: start,
        usageEnd: periodEnd,
        usageAmount: BigInt(line.periodNum),
        unitPrice,
        amount: priceTimes(unitPrice, line.periodNum),
        currency: prices.currency,
      },
    });
    return periodEnd;
  }

  return {
    async startBillableUsage(tx, ca, at) {
      if (!isPayPerUse(ca)) return;
      const open = await tx.caUsagePeriod.count({ where: { caId: ca.id, endAt: null } });
      if (open === 0) await openPeriod(tx, ca, USAGE_KIND.BILLABLE, at);
    },

    async startPendingDeletion(tx, ca, at) {
      if (!isPayPerUse(ca)) return;
      // Only a CA that was costing waits at a cost: a PENDING CA deleted and restored stays unbilled.
      if ((await closePeriods(tx, ca, at, USAGE_KIND.BILLABLE)) > 0) await openPeriod(tx, ca, USAGE_KIND.PENDING_DELETION, at);
    },

    async endPendingDeletionByRestore(tx, ca, at) {
      if (!isPayPerUse(ca)) return;
      if ((await closePeriods(tx, ca, at, USAGE_KIND.PENDING_DELETION, at)) > 0) await openPeriod(tx, ca, USAGE_KIND.BILLABLE, at);
    },

    async endUsage(tx, ca, at) {
      if (!isPayPerUse(ca)) return;
      await closePeriods(tx, ca, at);
    },

    async recordCertificateIssue(tx, issue) {
      const usedFree = await runnerOf(tx)(USE_ONE_FREE_ISSUE, [issue.issuerCaId]);
      const free = usedFree.length > 0;
      const before = tiered ? await countMonthlyIssues(tx, issue.domainId, startOfUtcMonth(issue.at), 1, issue.at) : 0;
      const unitPrice = free ? '0' : paidUnitPrice(before);
      const charge = { recordId: randomUUID(), free, unitPrice, amount: unitPrice };
      await tx.billingRecord.create({ data: issueRecord(issue, charge) });
      return charge;
    },

    paidIssueRecords: tiered
      ? undefined
      : (issues) => {
          const unitPrice = paidUnitPrice(0);
          return [
            'billing_records',
            issues.map((issue) => issueRecord(issue, { recordId: randomUUID(), free: false, unitPrice, amount: unitPrice })),
          ];
        },

    async chargeCertificateIssues(tx, issues, freeQuotas) {
      const freeLeft = new Map<string, number>();
      for (const issue of issues) {
        const left = freeLeft.get(issue.issuerCaId) ?? Math.max(0, freeQuotas.get(issue.issuerCaId) ?? 0);
        freeLeft.set(issue.issuerCaId, left);
      }
      for (const [caId, left] of freeLeft) {
        const used = Math.min(left, issues.filter((issue) => issue.issuerCaId === caId).length);
        if (used > 0) await runnerOf(tx)(USE_FREE_ISSUES, [caId, used]);
      }
      // Each domain's month counted once for the batch, in a fixed order (no two batches wait on each other's rows);
      // the batch's issues then follow each other in it, free ones included.
      const monthKey = (issue: CertificateIssue) => `${issue.domainId}\u0000${startOfUtcMonth(issue.at).toISOString()}`;
      const months = new Map<string, { domainId: string; month: Date; at: Date; count: number; issuedBefore: number }>();
      for (const issue of issues) {
        const key = monthKey(issue);
        const entry = months.get(key) ?? {
          domainId: issue.domainId,
          month: startOfUtcMonth(issue.at),
          at: issue.at,
          count: 0,
          issuedBefore: 0,
        };
        entry.count += 1;
        months.set(key, entry);
      }
      if (tiered) {
        for (const [, entry] of [...months].sort(([a], [b]) => (a < b ? -1 : 1))) {
          entry.issuedBefore = await countMonthlyIssues(tx, entry.domainId, entry.month, entry.count, entry.at);
        }
      }
      const charges: IssueCharge[] = [];
      for (const issue of issues) {
        const left = freeLeft.get(issue.issuerCaId)!;
        const free = left > 0;
        if (free) freeLeft.set(issue.issuerCaId, left - 1);
        const month = months.get(monthKey(issue))!;
        const unitPrice = free ? '0' : paidUnitPrice(month.issuedBefore);
        month.issuedBefore += 1;
        charges.push({ recordId: randomUUID(), free, unitPrice, amount: unitPrice });
      }
      return ['billing_records', issues.map((issue, index) => issueRecord(issue, charges[index]!))];
    },

    async recordPrepaidOrder(tx, line) {
      const periodEnd = await recordPrepaidPeriod(tx, line, line.at, line.at, `CA_PREPAID:${line.caId}`);
      await tx.certificateAuthority.updateMany({ where: { id: line.caId }, data: { prepaidUntil: periodEnd } });
      return { periodEnd };
    },

    async recordPrepaidRenewal(tx, line) {
      const periodEnd = await recordPrepaidPeriod(
        tx,
        line,
        line.from,
        line.orderedAt,
        `CA_PREPAID:${line.caId}:${line.from.toISOString()}`,
      );
      const { count } = await tx.certificateAuthority.updateMany({
        where: { id: line.caId, prepaidUntil: line.from },
        data: { prepaidUntil: periodEnd },
      });
      if (count !== 1)
        throw new Error(`CA ${line.caId}: its paid period no longer ends at ${line.from.toISOString()}; renewal rolled back`);
      return { periodEnd };
    },
  };
}
