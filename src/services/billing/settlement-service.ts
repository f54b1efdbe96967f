/**
 * Hourly settlement of pay-per-use CA time (§8): one CA_DURATION record per (CA, fully elapsed UTC hour) with
 * billable seconds. Each CA carries a watermark (`ca_settlements.settled_until`: every earlier hour is settled), so
 * a run settles from there however long ago that is: a job stopped for weeks bills every missed hour once it runs
 * again. The gap is settled in chunks of at most CHUNK_HOURS, each in its own transaction that also advances the
 * watermark, so a long gap never makes one huge transaction and a run that dies keeps what it committed.
 * Safe to run any time, twice, or on several instances at once:
 * - the unique key `CA_DURATION:{caId}:{hour ISO}` makes a second insert of a settled hour a no-op
 *   (createMany skipDuplicates = ON CONFLICT DO NOTHING);
 * - each chunk holds a try-advisory-lock on its CA and re-reads the watermark under it, so concurrent runs split
 *   the CAs between them instead of computing the same hours twice.
 */
import { randomUUID } from 'node:crypto';
import { HOUR_MS } from '../../clock.ts';
import { priceTimes } from '../../config/price-catalog.ts';
import type { Config } from '../../config.ts';
import type { Db } from '../../db/database.ts';
import { tryAdvisoryLock } from '../../db/locks.ts';
import type { Tx } from '../context.ts';
import { CHARGING_MODE } from './billing-codes.ts';
import { caUsageBehindSql } from './billing-sql.ts';
import { caDurationKey, floorHour, hourlyUsage } from './settlement-rules.ts';

const DAY_SECONDS = 86_400;

/**
 * An hour is settled only once it ended this long ago, so a CA transaction stamped just before the hour's end
 * (a restore, a deletion) has committed before its hour is read.
 */
export const SETTLEMENT_GRACE_MS = 2 * 60_000;
/** Most hours one transaction settles for one CA. */
export const CHUNK_HOURS = 7 * 24;

export interface SettlementResult {
  settledUntil: Date;
  casSettled: number;
  /** CAs another run was settling at the same moment. */
  casSkipped: number;
  recordsCreated: number;
  /** Transactions that settled a chunk (at most CHUNK_HOURS of one CA). */
  chunks: number;
  /** How far the furthest-behind CA's watermark lay behind `settledUntil` when the run began (0: none behind). */
  maxLagSeconds: number;
  /** CAs whose watermark lay more than a day behind. */
  casOverADayBehind: number;
}

export interface SettlementDependencies {
  db: Db;
  config: Pick<Config, 'billing'>;
}

export function createSettlementService({ db, config }: SettlementDependencies) {
  const prices = config.billing;
  const unitPrice = prices.caPricePerSecond;

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
    const existing = await tx.billingRecord.findMany({
      where: { uniqueKey: { in: usage.map((hour) => hour.key) } },
      select: { uniqueKey: true },
    });
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
        amount: priceTimes(unitPrice, hour.seconds),
        currency: prices.currency,
      })),
      skipDuplicates: true,
    });
    return count;
  }

  /** The CAs with hours before `settledUntil` still to settle: from their watermark, or from their first stretch. */
  async function behind(settledUntil: Date) {
    return db.$queryRaw<{ ca_id: string; domain_id: string; from: Date }[]>(caUsageBehindSql(settledUntil));
  }

  /**
   * Settles the CA's next chunk under its advisory lock and advances its watermark; `null` when another run holds
   * the lock, `done` once the watermark has reached `settledUntil` (`settled: false`: another run got it there).
   */
  async function settleChunk(ca: { caId: string; domainId: string; firstHour: number }, settledUntil: number) {
    return db.$transaction(async (tx) => {
      if (!(await tryAdvisoryLock(tx, 'settlement', ca.caId))) return null;
      const watermark = await tx.caSettlement.findUnique({ where: { caId: ca.caId } });
      const from = watermark?.settledUntil.getTime() ?? ca.firstHour;
      if (from >= settledUntil) return { settled: false, created: 0, done: true };
      const to = Math.min(from + CHUNK_HOURS * HOUR_MS, settledUntil);
      const created = await settleCa(tx, ca, from, to);
      await tx.caSettlement.upsert({
        where: { caId: ca.caId },
        create: { caId: ca.caId, settledUntil: new Date(to) },
        update: { settledUntil: new Date(to) },
      });
      return { settled: true, created, done: to === settledUntil };
    });
  }

  return {
    /** Settles every fully elapsed hour up to `now` (minus the grace) that each CA's watermark has not reached. */
    async settle(now: Date): Promise<SettlementResult> {
      const settledUntil = floorHour(now.getTime() - SETTLEMENT_GRACE_MS);
      const cas = await behind(new Date(settledUntil));
      const result: SettlementResult = {
        settledUntil: new Date(settledUntil),
        casSettled: 0,
        casSkipped: 0,
        recordsCreated: 0,
        chunks: 0,
        maxLagSeconds: 0,
        casOverADayBehind: 0,
      };
      for (const row of cas) {
        const ca = { caId: row.ca_id, domainId: row.domain_id, firstHour: floorHour(row.from.getTime()) };
        const lagSeconds = (settledUntil - ca.firstHour) / 1000;
        result.maxLagSeconds = Math.max(result.maxLagSeconds, lagSeconds);
        if (lagSeconds > DAY_SECONDS) result.casOverADayBehind += 1;
        let advanced = false;
        for (;;) {
          const chunk = await settleChunk(ca, settledUntil);
          if (chunk === null) {
            result.casSkipped += 1;
            break;
          }
          if (chunk.settled) {
            advanced = true;
            result.chunks += 1;
            result.recordsCreated += chunk.created;
          }
          if (chunk.done) {
            if (advanced) result.casSettled += 1;
            break;
          }
        }
      }
      return result;
    },
  };
}
export type SettlementService = ReturnType<typeof createSettlementService>;
