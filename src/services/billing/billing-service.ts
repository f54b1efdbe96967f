/** The billing area as `services.billing`: the transaction hooks, hourly settlement and the records reader. */
import type { Config } from '../../config.ts';
import type { Db } from '../../db/database.ts';
import type { Job } from '../../jobs/job-runner.ts';
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
 * ends. Extra runs are harmless (see settlement-service.ts).
 */
export function billingSettlementJob(settlement: SettlementService): Job {
  return {
    name: 'billing-settlement',
    intervalSeconds: 900,
    async run({ now }) {
      const result = await settlement.settle(now);
      return { ...result, settledUntil: result.settledUntil.toISOString() };
    },
  };
}
