/**
 * Hourly settlement of pay-per-use CA time (§8): one CA_DURATION record per (CA, fully elapsed UTC hour) with
 * billable seconds. Safe to run any time, twice, or on several instances at once:
 * - the unique key `CA_DURATION:{caId}:{hour ISO}` makes a second insert of a settled hour a no-op
 *   (createMany skipDuplicates = ON CONFLICT DO NOTHING);
 * - each CA is settled in its own short transaction under a try-advisory-lock, so concurrent runs split the
 *   CAs between them instead of computing the same hours twice.
 * Each run recomputes a look-back window (default 7 days) and inserts the hours missing from it, so a run that
 * failed or was skipped is made up by the next one.
 */
import { randomUUID } from 'node:crypto';
import type { Config } from '../../config.ts';
import type { Db } from '../../db/database.ts';
import { Prisma } from '../../db/generated/client.ts';
import type { Tx } from '../context.ts';
import { CHARGING_MODE } from './usage-hooks.ts';
import { caDurationKey, floorHour, HOUR_MS, hourlyUsage } from './settlement-rules.ts';

/**
 * An hour is settled only once it ended this long ago, so a CA transaction stamped just before the hour's end
 * (a restore, a deletion) has committed before its hour is read.
 */
export const SETTLEMENT_GRACE_MS = 2 * 60_000;
export const DEFAULT_LOOKBACK_HOURS = 7 * 24;

/** Advisory-lock class of per-CA settlement (objid = hashtext(ca id)). */
const SETTLEMENT_LOCK_CLASS = 0x53544c4d; // 'STLM'

export interface SettlementResult {
  settledUntil: Date;
  casSettled: number;
  /** CAs another run was settling at the same moment. */
  casSkipped: number;
  recordsCreated: number;
}

export interface SettlementDependencies {
  db: Db;
  config: Pick<Config, 'billing'>;
}

export function createSettlementService({ db, config }: SettlementDependencies) {
  const prices = config.billing;
  const unitPrice = new Prisma.Decimal(prices.caPricePerSecond);

  /** Inserts the CA's missing hour records; returns how many it created. */
  async function settleCa(tx: Tx, ca: { caId: string; domainId: string }, windowStart: number, settledUntil: number): Promise<number> {
    const stretches = await tx.caUsagePeriod.findMany({
      where: {
        caId: ca.caId,
        startAt: { lt: new Date(settledUntil) },
        OR: [{ endAt: null }, { endAt: { gt: new Date(windowStart) } }, { restoredAt: { gte: new Date(windowStart) } }],
      },
      select: { kind: true, startAt: true, endAt: true, restoredAt: true },
    });
    const usage = hourlyUsage(stretches, windowStart, settledUntil).map((hour) => ({ ...hour, key: caDurationKey(ca.caId, hour.hour) }));
    if (usage.length === 0) return 0;
    const existing = await tx.billingRecord.findMany({ where: { uniqueKey: { in: usage.map((hour) => hour.key) } }, select: { uniqueKey: true } });
    const settled = new Set(existing.map((record) => record.uniqueKey));
    const missing = usage.filter((hour) => !settled.has(hour.key));
    if (missing.length === 0) return 0;
    const { count } = await tx.billingRecord.createMany({
      data: missing.map((hour) => ({
        id: randomUUID(),
        uniqueKey: hour.key,
        domainId: ca.domainId,
        resourceType: 'CA',
        resourceId: ca.caId,
        chargingMode: CHARGING_MODE.PAY_PER_USE,
        usageType: 'CA_DURATION',
        usageStart: hour.usageStart,
        usageEnd: hour.usageEnd,
        usageAmount: BigInt(hour.seconds),
        unitPrice,
        amount: unitPrice.times(hour.seconds),
        currency: prices.currency,
      })),
      skipDuplicates: true,
    });
    return count;
  }

  return {
    /** Settles every fully elapsed hour up to `now` (minus the grace) within the look-back window. */
    async settle(now: Date, lookbackHours = DEFAULT_LOOKBACK_HOURS): Promise<SettlementResult> {
      const settledUntil = floorHour(now.getTime() - SETTLEMENT_GRACE_MS);
      const windowStart = settledUntil - lookbackHours * HOUR_MS;
      // Stretches live only for pay-per-use CAs (the hooks ignore prepaid ones).
      const cas = await db.caUsagePeriod.findMany({
        where: {
          startAt: { lt: new Date(settledUntil) },
          OR: [{ endAt: null }, { endAt: { gt: new Date(windowStart) } }, { restoredAt: { gte: new Date(windowStart) } }],
        },
        distinct: ['caId'],
        select: { caId: true, domainId: true },
      });
      const result: SettlementResult = { settledUntil: new Date(settledUntil), casSettled: 0, casSkipped: 0, recordsCreated: 0 };
      for (const ca of cas) {
        const created = await db.$transaction(async (tx) => {
          const [lock] = await tx.$queryRaw<{ locked: boolean }[]>`
            SELECT pg_try_advisory_xact_lock(${SETTLEMENT_LOCK_CLASS}::int, hashtext(${ca.caId})) AS locked`;
          return lock?.locked ? settleCa(tx, ca, windowStart, settledUntil) : null;
        });
        if (created === null) result.casSkipped += 1;
        else {
          result.casSettled += 1;
          result.recordsCreated += created;
        }
      }
      return result;
    },
  };
}
export type SettlementService = ReturnType<typeof createSettlementService>;
