/** §10.6 billing records: list (JSON, or CSV with `Accept: text/csv`) and summary. Records are read-only. */
import { Readable } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import type { BillingRecordFilter } from '../../../services/billing/billing-records-service.ts';
import { contextOf } from '../../request-context.ts';
import { epochMillis, pageOf, PagingQuery, StringEnum, UUID_PATTERN } from '../../../schemas/common.ts';
import { routeOptions, type TypedApp } from '../../route-options.ts';

const Decimal = Type.String({ pattern: '^-?\\d+(\\.\\d+)?$', description: 'Exact decimal', examples: ['0.05'] });

const BillingRecord = Type.Object({
  record_id: Type.String({ pattern: UUID_PATTERN }),
  domain_id: Type.String(),
  resource_type: Type.String({ enum: ['CA', 'CERTIFICATE'] }),
  resource_id: Type.String({ description: 'The CA or certificate id; for a CSR-issued INTERMEDIATE_CA, its ca_id' }),
  charging_mode: Type.Integer({ enum: [0, 1] }),
  usage_type: Type.String({ enum: ['CA_DURATION', 'CERT_ISSUE', 'CA_PREPAID'] }),
  usage_start: Type.Integer(),
  usage_end: Type.Integer(),
  usage_amount: Type.Integer({ description: 'Seconds (CA_DURATION), 1 (CERT_ISSUE) or periods (CA_PREPAID)' }),
  unit_price: Decimal,
  amount: Decimal,
  currency: Type.String({ description: 'ISO 4217' }),
  create_time: Type.Integer(),
});

const TimeRange = {
  start_time: Type.Optional(epochMillis('Records with usage_start at or after (ms)')),
  end_time: Type.Optional(epochMillis('Records with usage_start before (ms)')),
};

const ListQuery = Type.Object({
  ...TimeRange,
  resource_type: Type.Optional(StringEnum(['CA', 'CERTIFICATE'])),
  resource_id: Type.Optional(Type.String({ pattern: UUID_PATTERN })),
  charging_mode: Type.Optional(Type.Integer({ enum: [0, 1] })),
  ...PagingQuery,
});
type ListQuery = Static<typeof ListQuery>;

const SummaryQuery = Type.Object(TimeRange);

const Summary = Type.Object({
  start_time: Type.Union([Type.Integer(), Type.Null()]),
  end_time: Type.Union([Type.Integer(), Type.Null()]),
  currency: Type.String({ description: 'The configured currency, that of total_amount' }),
  total_amount: Decimal,
  totals: Type.Array(
    Type.Object({
      resource_type: Type.String(),
      usage_type: Type.String(),
      record_count: Type.Integer(),
      usage_amount: Type.Integer(),
      amount: Decimal,
      currency: Type.String({ description: "The records' currency; one entry per currency when BILLING_CURRENCY changed" }),
    }),
  ),
});

const billing = { action: 'pca:billing:list', tag: 'billing' } as const;

function filterOf(query: ListQuery): BillingRecordFilter {
  return {
    startTime: query.start_time,
    endTime: query.end_time,
    resourceType: query.resource_type,
    resourceId: query.resource_id,
    chargingMode: query.charging_mode,
  };
}

/** CSV only when the client asks for it and not for JSON first (a plain browser or SDK keeps JSON). */
function wantsCsv(request: FastifyRequest): boolean {
  return /^\s*text\/csv\b/i.test(request.headers.accept ?? '');
}

export async function billingRecordRoutes(app: TypedApp): Promise<void> {
  app.get(
    '/v1/billing-records',
    routeOptions({
      ...billing,
      summary: 'List billing records (Accept: text/csv exports every matching record as CSV)',
      operationId: 'listBillingRecords',
      query: ListQuery,
      responses: {
        200: {
          description: 'Records ordered by usage_start then record_id; as CSV, all matching records without paging',
          headers: { 'Content-Disposition': Type.String({ description: 'CSV only: attachment; filename="billing-records.csv"' }) },
          content: {
            'application/json': { schema: Type.Object({ total: Type.Integer(), records: Type.Array(BillingRecord) }) },
            'text/csv': { schema: Type.String({ description: 'Header row, then one line per record (the JSON field names)' }) },
          },
        },
      },
    }),
    async function listBillingRecords(request, reply) {
      const { query } = request;
      const records = app.services.billing.records;
      if (wantsCsv(request)) {
        const lines = records.exportCsv(contextOf(request), filterOf(query));
        // Pull the first chunk (validation errors surface as a normal error reply), then stream the rest.
        const first = await lines.next();
        const rest = async function* () {
          if (!first.done) yield first.value;
          yield* lines;
        };
        return reply
          .type('text/csv; charset=utf-8')
          .header('content-disposition', 'attachment; filename="billing-records.csv"')
          .send(Readable.from(rest()));
      }
      return records.list(contextOf(request), filterOf(query), pageOf(query));
    },
  );

  app.get(
    '/v1/billing-records/summary',
    routeOptions({
      ...billing,
      summary: 'Billing totals per resource_type and usage_type',
      operationId: 'showBillingSummary',
      query: SummaryQuery,
      ok: Summary,
    }),
    async function showBillingSummary(request) {
      const { query } = request;
      return app.services.billing.records.summary(contextOf(request), { startTime: query.start_time, endTime: query.end_time });
    },
  );
}
