/** Reading billing records (§10.6): list with filters and paging, a CSV export of the same filter, a summary. */
import type { Config } from '../../config.ts';
import { sumAmounts } from '../../config/price-catalog.ts';
import type { Db } from '../../db/database.ts';
import { Prisma } from '../../db/generated/client.ts';
import { errors } from '../../errors.ts';
import type { RequestContext } from '../context.ts';
import { CSV_COLUMNS, csvLine, decimalString, toBillingRecordView, toCsvLine, type BillingRecordView } from './billing-record-mapper.ts';

export interface BillingRecordFilter {
  /** ms: start_time ≤ usage_start < end_time */
  startTime?: number;
  endTime?: number;
  resourceType?: 'CA' | 'CERTIFICATE';
  resourceId?: string;
  chargingMode?: number;
}

export interface UsageTotal {
  resource_type: string;
  usage_type: string;
  record_count: number;
  usage_amount: number;
  amount: string;
  /** The records' own currency: a deployment that changed BILLING_CURRENCY has older records in the old one. */
  currency: string;
}

export interface BillingSummary {
  start_time: number | null;
  end_time: number | null;
  currency: string;
  total_amount: string;
  totals: UsageTotal[];
}

const CSV_PAGE_SIZE = 1000;
const ORDER: Prisma.BillingRecordOrderByWithRelationInput[] = [{ usageStart: 'asc' }, { id: 'asc' }];

function whereOf(context: RequestContext, filter: BillingRecordFilter): Prisma.BillingRecordWhereInput {
  if (filter.startTime !== undefined && filter.endTime !== undefined && filter.startTime > filter.endTime) {
    throw errors.invalidParameter('start_time must not be after end_time');
  }
  return {
    domainId: context.domainId,
    ...(filter.startTime !== undefined || filter.endTime !== undefined
      ? {
          usageStart: {
            ...(filter.startTime !== undefined ? { gte: new Date(filter.startTime) } : {}),
            ...(filter.endTime !== undefined ? { lt: new Date(filter.endTime) } : {}),
          },
        }
      : {}),
    ...(filter.resourceType ? { resourceType: filter.resourceType } : {}),
    ...(filter.resourceId ? { resourceId: filter.resourceId } : {}),
    ...(filter.chargingMode !== undefined ? { chargingMode: filter.chargingMode } : {}),
  };
}

export function createBillingRecordsService({ db, config }: { db: Db; config: Pick<Config, 'billing'> }) {
  return {
    async list(context: RequestContext, filter: BillingRecordFilter, page: { limit: number; offset: number }) {
      const where = whereOf(context, filter);
      const [total, records] = await Promise.all([
        db.billingRecord.count({ where }),
        page.limit === 0 ? [] : db.billingRecord.findMany({ where, orderBy: ORDER, skip: page.offset, take: page.limit }),
      ]);
      return { total, records: records.map(toBillingRecordView) };
    },

    /**
     * Every matching record as CSV (header row first), read in keyset pages so an export of millions of records
     * streams instead of sitting in memory.
     */
    async *exportCsv(context: RequestContext, filter: BillingRecordFilter): AsyncGenerator<string> {
      const where = whereOf(context, filter);
      yield csvLine(CSV_COLUMNS);
      let after: { usageStart: Date; id: string } | undefined;
      for (;;) {
        const records = await db.billingRecord.findMany({
          where: after
            ? { AND: [where, { OR: [{ usageStart: { gt: after.usageStart } }, { usageStart: after.usageStart, id: { gt: after.id } }] }] }
            : where,
          orderBy: ORDER,
          take: CSV_PAGE_SIZE,
        });
        if (records.length > 0) yield records.map((record) => toCsvLine(toBillingRecordView(record))).join('');
        if (records.length < CSV_PAGE_SIZE) return;
        const last = records[records.length - 1]!;
        after = { usageStart: last.usageStart, id: last.id };
      }
    },

    async summary(context: RequestContext, filter: Pick<BillingRecordFilter, 'startTime' | 'endTime'>): Promise<BillingSummary> {
      const groups = await db.billingRecord.groupBy({
        by: ['resourceType', 'usageType', 'currency'],
        where: whereOf(context, filter),
        _count: { _all: true },
        _sum: { usageAmount: true, amount: true },
        orderBy: [{ resourceType: 'asc' }, { usageType: 'asc' }, { currency: 'asc' }],
      });
      const totals = groups.map((group) => ({
        resource_type: group.resourceType,
        usage_type: group.usageType,
        record_count: group._count._all,
        usage_amount: Number(group._sum.usageAmount ?? 0n),
        amount: decimalString(group._sum.amount ?? new Prisma.Decimal(0)),
        currency: group.currency,
      }));
      // Amounts in different currencies do not add up: the total is the configured currency's.
      const totalAmount = sumAmounts(totals.filter((total) => total.currency === config.billing.currency).map((total) => total.amount));
      return {
        start_time: filter.startTime ?? null,
        end_time: filter.endTime ?? null,
        currency: config.billing.currency,
        total_amount: totalAmount,
        totals,
      };
    },
  };
}
export type BillingRecordsService = ReturnType<typeof createBillingRecordsService>;
export type { BillingRecordView };
