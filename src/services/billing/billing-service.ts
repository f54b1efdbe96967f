/** The billing area as `services.billing`: the transaction hooks, hourly settlement and the records reader. */
import type { Config } from '../../config.ts';
import type { Db } from '../../db/database.ts';
import type { Job } from '../../jobs/job-runner.ts';
import type { Metrics } from '../../metrics/metrics.ts';
import { createBillingRecordsService } from './billing-records-service.ts';
import { createSettlementService, type SettlementService } from './settlement-service.ts';
import type { BillingHooks } from './usage-hooks.ts';

export function createBillingService(deps: { db: Db; config: Pick<Config, 'billing'>; hooks: BillingHooks }) {
  return {
    hooks: deps.hooks,
    settlement: createSettlementService(deps),
    records: createBillingRecordsService(deps),
  };
}
export type BillingService = ReturnType<typeof createBillingService>;

/**
 * Settles hours; polled every 15 minutes (as serverless.yml schedules it) so an hour is settled soon after it
 * ends. Extra runs are harmless (see settlement-service.ts). A run that finds a CA more than a day behind (the job
 * stopped, or kept failing) settles the whole gap and says so in a warning and in the lag gauge.
 */
export function billingSettlementJob(settlement: SettlementService, metrics: Pick<Metrics, 'billingSettlementLag'>): Job {
  return {
    name: 'billing-settlement',
    intervalSeconds: 900,
    async run({ now, log }) {
      const result = await settlement.settle(now);
      metrics.billingSettlementLag.set(result.maxLagSeconds);
      if (result.casOverADayBehind > 0) {
        log.warn(
          {
            maxLagSeconds: result.maxLagSeconds,
            casOverADayBehind: result.casOverADayBehind,
            settledUntil: result.settledUntil.toISOString(),
          },
          `billing settlement was ${(result.maxLagSeconds / 86_400).toFixed(1)} days behind for ${result.casOverADayBehind} CA(s); the missed hours are now settled`,
        );
      }
      return { ...result, settledUntil: result.settledUntil.toISOString() };
    },
  };
}
