/**
 * Billing (§8, §10.6, scenario 5) over a real database with a hand-moved clock: the transaction hooks, hourly
 * settlement (repeated and concurrent), restore and removal, prepaid orders, and the records API with its filters,
 * paging, CSV export and summary. Expected amounts are worked out by hand from the prices in support.ts.
 * The first test replays scenario 5's timeline at the level of the hooks (CA rows inserted, hooks called); the
 * scenario itself, over HTTP against a started server, is test/scenarios/billing.test.ts.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { ManualClock } from '../../src/clock.ts';
import { prepaidDaysLeft } from '../../src/services/billing/prepaid.ts';
import { certificateUnitPrice, loadPriceCatalog } from '../../src/config/price-catalog.ts';
import { prepaidPeriodEnd, type BillableCa } from '../../src/services/billing/usage-hooks.ts';
import { toCsvLine, type BillingRecordView } from '../../src/services/billing/billing-record-mapper.ts';
import { createTestApp, OTHER_DOMAIN, TEST_DOMAIN } from '../helpers/app.ts';
import { BILLING_ENV, insertCa, utc } from './support.ts';

const clock = new ManualClock(utc('2026-01-05T09:00:00'));
const harness = await createTestApp({ clock, env: BILLING_ENV });
t.teardown(() => harness.close());
const db = harness.database.prisma;
const { hooks, settlement, records } = harness.app.services.billing;

/** One hook call in its own transaction, as the CA service makes it. */
async function hook(
  name: 'startBillableUsage' | 'startPendingDeletion' | 'endPendingDeletionByRestore' | 'endUsage',
  ca: BillableCa,
  at: string,
) {
  await db.$transaction((tx) => hooks[name](tx, ca, utc(at)));
}

async function durationRecords(caId: string) {
  const rows = await db.billingRecord.findMany({ where: { resourceId: caId, usageType: 'CA_DURATION' }, orderBy: { usageStart: 'asc' } });
  return rows.map((row) => ({
    key: row.uniqueKey,
    start: row.usageStart.toISOString(),
    end: row.usageEnd.toISOString(),
    seconds: Number(row.usageAmount),
    unitPrice: row.unitPrice.toFixed(),
    amount: row.amount.toFixed(),
    currency: row.currency,
  }));
}

t.test('price catalog: exact decimals, per-second price, tiers; bad values refused', async (t) => {
  const catalog = loadPriceCatalog(BILLING_ENV);
  t.equal(catalog.caPricePerSecond, '0.001');
  t.same(catalog.certificateTiers, [
    { upTo: 600, unitPrice: '0.05' },
    { upTo: null, unitPrice: '0.03' },
  ]);
  t.equal(certificateUnitPrice(catalog.certificateTiers, 600), '0.05');
  t.equal(certificateUnitPrice(catalog.certificateTiers, 601), '0.03');
  t.equal(loadPriceCatalog({}).currency, 'CNY');
  t.throws(() => loadPriceCatalog({ BILLING_CA_PRICE_PER_HOUR: '3.61' }), /exact at 8 decimals/);
  t.throws(() => loadPriceCatalog({ BILLING_CA_PRICE_PER_HOUR: '1e3' }), /BILLING_CA_PRICE_PER_HOUR/);
  t.throws(() => loadPriceCatalog({ BILLING_CERTIFICATE_PRICES: '0.05,0.03' }), /upTo/);
  t.throws(() => loadPriceCatalog({ BILLING_CERTIFICATE_PRICES: '0.05:600,0.04:500,0.03' }), /ascend/);
  t.throws(() => loadPriceCatalog({ BILLING_CURRENCY: 'yuan' }), /ISO 4217/);
});

t.test("hooks and settlement on scenario 5's timeline: root 10:00, disabled 12:30, deleted 13:15:30; 1,000 issuances", async (t) => {
  const root = await insertCa(db, TEST_DOMAIN);
  const sub = await insertCa(db, TEST_DOMAIN, { type: 'SUBORDINATE', issuerId: root.id, freeQuota: 100 });
  await hook('startBillableUsage', root, '2026-01-05T10:00:00');
  await hook('startBillableUsage', sub, '2026-01-05T10:20:00');
  // 1,000 issuances in concurrent transactions, as the certificate service writes them.
  const certificateIds = Array.from({ length: 1000 }, () => randomUUID());
  for (let batch = 0; batch < 1000; batch += 50) {
    await Promise.all(
      certificateIds.slice(batch, batch + 50).map((id, index) =>
        db.$transaction((tx) =>
          hooks.recordCertificateIssue(tx, {
            domainId: TEST_DOMAIN,
            resourceId: id,
            issuerCaId: sub.id,
            at: new Date(utc('2026-01-05T10:30:00').getTime() + (batch + index) * 1000),
          }),
        ),
      ),
    );
  }
  // Disabling needs no hook: a disabled CA keeps costing. The deletion starts the unbilled wait.
  await hook('startPendingDeletion', root, '2026-01-05T13:15:30');

  // The subordinate is gone at 15:00, so later tests moving the clock on add nothing to this domain.
  await hook('endUsage', sub, '2026-01-05T15:00:00');
  clock.set(utc('2026-01-05T15:05:00'));
  const first = await settlement.settle(clock.now());
  t.equal(first.settledUntil.toISOString(), '2026-01-05T15:00:00.000Z');
  t.equal(first.recordsCreated, 9, 'root: 4 hours, subordinate: 5 hours');
  const again = await settlement.settle(clock.now());
  t.equal(again.recordsCreated, 0, 'a second run adds nothing');
  const concurrent = await Promise.all([settlement.settle(clock.now()), settlement.settle(clock.now())]);
  t.equal(concurrent[0].recordsCreated + concurrent[1].recordsCreated, 0, 'two concurrent runs add nothing');

  const hour = (h: string, seconds: number, amount: string, start = `2026-01-05T${h}:00:00.000Z`, end?: string) => ({
    h,
    seconds,
    amount,
    start,
    end,
  });
  const expectHours = (caId: string, expected: ReturnType<typeof hour>[]) =>
    expected.map((e) => ({
      key: `CA_DURATION:${caId}:2026-01-05T${e.h}:00:00.000Z`,
      start: e.start,
      end: e.end ?? new Date(utc(`2026-01-05T${e.h}:00:00`).getTime() + 3_600_000).toISOString(),
      seconds: e.seconds,
      unitPrice: '0.001',
      amount: e.amount,
      currency: 'CNY',
    }));
  t.same(
    await durationRecords(root.id),
    expectHours(root.id, [
      hour('10', 3600, '3.6'),
      hour('11', 3600, '3.6'),
      hour('12', 3600, '3.6'),
      hour('13', 930, '0.93', undefined, '2026-01-05T13:15:30.000Z'),
    ]),
    'root: billed while disabled, not while pending deletion',
  );
  t.same(
    await durationRecords(sub.id),
    expectHours(sub.id, [
      hour('10', 2400, '2.4', '2026-01-05T10:20:00.000Z'),
      hour('11', 3600, '3.6'),
      hour('12', 3600, '3.6'),
      hour('13', 3600, '3.6'),
      hour('14', 3600, '3.6'),
    ]),
    'subordinate: from activation',
  );

  const issues = await db.billingRecord.findMany({ where: { domainId: TEST_DOMAIN, usageType: 'CERT_ISSUE' } });
  t.equal(issues.length, 1000, 'one record per certificate');
  t.same(new Set(issues.map((record) => record.resourceId)), new Set(certificateIds));
  const byPrice = new Map<string, number>();
  for (const record of issues) byPrice.set(record.unitPrice.toFixed(), (byPrice.get(record.unitPrice.toFixed()) ?? 0) + 1);
  t.same(Object.fromEntries(byPrice), { '0': 100, '0.05': 500, '0.03': 400 }, '100 free, then tiers by monthly volume');
  t.ok(issues.every((record) => record.amount.equals(record.unitPrice) && Number(record.usageAmount) === 1 && record.chargingMode === 1));
  t.equal((await db.certificateAuthority.findUniqueOrThrow({ where: { id: sub.id } })).freeQuota, 0, 'free quota used up');

  const summary = await records.summary(
    { domainId: TEST_DOMAIN, actor: 'test', requestId: 'r' },
    { startTime: utc('2026-01-05T00:00:00').getTime(), endTime: utc('2026-01-06T00:00:00').getTime() },
  );
  t.same(summary, {
    start_time: utc('2026-01-05T00:00:00').getTime(),
    end_time: utc('2026-01-06T00:00:00').getTime(),
    currency: 'CNY',
    total_amount: '65.53',
    totals: [
      { resource_type: 'CA', usage_type: 'CA_DURATION', record_count: 9, usage_amount: 11730 + 16800, amount: '28.53', currency: 'CNY' },
      { resource_type: 'CERTIFICATE', usage_type: 'CERT_ISSUE', record_count: 1000, usage_amount: 1000, amount: '37', currency: 'CNY' },
    ],
  });
});

t.test('settlement waits out the grace after an hour ends, and skips hours without billable seconds', async (t) => {
  const ca = await insertCa(db, 'grace-domain');
  await hook('startBillableUsage', ca, '2026-01-05T11:59:59.999');
  clock.set(utc('2026-01-05T13:01:00'));
  await settlement.settle(clock.now());
  t.same(
    (await durationRecords(ca.id)).map((r) => [r.start, r.seconds, r.amount]),
    [['2026-01-05T11:59:59.000Z', 1, '0.001']],
    'hour 12 not settled 1 min after its end; one second costs a tenth of a cent, not rounded to cents',
  );
  clock.set(utc('2026-01-05T13:02:00'));
  await settlement.settle(clock.now());
  t.equal((await durationRecords(ca.id)).length, 2, 'hour 12 settled 2 min after its end');
});

t.test('restore: the wait is billed in the restore hour, whose usage_start reaches back to the deletion', async (t) => {
  const ca = await insertCa(db, 'restore-domain');
  await hook('startBillableUsage', ca, '2026-01-06T10:00:00.700');
  await hook('startPendingDeletion', ca, '2026-01-06T11:40:00');
  await hook('endPendingDeletionByRestore', ca, '2026-01-06T13:10:00');
  clock.set(utc('2026-01-06T15:05:00'));
  await settlement.settle(clock.now());
  t.same(
    (await durationRecords(ca.id)).map((r) => [r.key.slice(-24), r.start, r.end, r.seconds, r.amount]),
    [
      ['2026-01-06T10:00:00.000Z', '2026-01-06T10:00:00.000Z', '2026-01-06T11:00:00.000Z', 3600, '3.6'],
      ['2026-01-06T11:00:00.000Z', '2026-01-06T11:00:00.000Z', '2026-01-06T11:40:00.000Z', 2400, '2.4'],
      ['2026-01-06T13:00:00.000Z', '2026-01-06T11:40:00.000Z', '2026-01-06T14:00:00.000Z', 5400 + 3000, '8.4'],
      ['2026-01-06T14:00:00.000Z', '2026-01-06T14:00:00.000Z', '2026-01-06T15:00:00.000Z', 3600, '3.6'],
    ],
    'no record for hour 12; hour 13 = 90 min of wait + 50 min after the restore',
  );
});

t.test('removal after pending deletion: the wait is never billed; prepaid and PENDING CAs get no duration', async (t) => {
  const removed = await insertCa(db, 'removed-domain');
  await hook('startBillableUsage', removed, '2026-01-07T10:00:00');
  await hook('startPendingDeletion', removed, '2026-01-07T10:30:00');
  await hook('endUsage', removed, '2026-01-07T12:10:00');
  const prepaid = await insertCa(db, 'removed-domain', { chargingMode: 0 });
  await hook('startBillableUsage', prepaid, '2026-01-07T10:00:00');
  const pending = await insertCa(db, 'removed-domain', { status: 'PENDING' });
  await hook('startPendingDeletion', pending, '2026-01-07T10:00:00');
  await hook('endPendingDeletionByRestore', pending, '2026-01-07T11:00:00');
  clock.set(utc('2026-01-07T16:00:00'));
  await settlement.settle(clock.now());
  t.same(
    (await durationRecords(removed.id)).map((r) => r.seconds),
    [1800],
  );
  t.equal(await db.caUsagePeriod.count({ where: { caId: { in: [prepaid.id, pending.id] } } }), 0);
  t.equal(await db.billingRecord.count({ where: { domainId: 'removed-domain' } }), 1);
});

t.test('prepaid order: one CA_PREPAID record covering the purchased period; prepaid_until and days left', async (t) => {
  const ca = await insertCa(db, OTHER_DOMAIN, { chargingMode: 0, status: 'PENDING' });
  const at = utc('2026-01-31T08:00:00');
  const { periodEnd } = await db.$transaction((tx) =>
    hooks.recordPrepaidOrder(tx, { caId: ca.id, domainId: OTHER_DOMAIN, periodType: 3, periodNum: 2, at }),
  );
  t.equal(periodEnd.toISOString(), '2028-01-31T08:00:00.000Z');
  const record = await db.billingRecord.findUniqueOrThrow({ where: { uniqueKey: `CA_PREPAID:${ca.id}` } });
  t.match(
    { ...record, unitPrice: record.unitPrice.toFixed(), amount: record.amount.toFixed() },
    {
      resourceType: 'CA',
      chargingMode: 0,
      usageType: 'CA_PREPAID',
      usageStart: at,
      usageEnd: periodEnd,
      usageAmount: 2n,
      unitPrice: '20000',
      amount: '40000',
      currency: 'CNY',
    },
  );
  const stored = await db.certificateAuthority.findUniqueOrThrow({ where: { id: ca.id } });
  t.same(stored.prepaidUntil, periodEnd);
  t.equal(prepaidDaysLeft(stored, utc('2028-01-30T09:00:00')), 1, 'part of a day counts as a day');
  t.equal(prepaidDaysLeft(stored, utc('2028-02-01T00:00:00')), 0);
  t.equal(prepaidDaysLeft({ chargingMode: 1, prepaidUntil: null }, at), null);
  t.equal(prepaidPeriodEnd(at, 2, 1).toISOString(), '2026-02-28T08:00:00.000Z', 'a month from 31 Jan ends on the last of February');
  t.equal(prepaidPeriodEnd(utc('2028-02-29T00:00:00'), 3, 1).toISOString(), '2029-02-28T00:00:00.000Z');
  const leapOrder = utc('2028-02-29T00:00:00');
  t.equal(
    prepaidPeriodEnd(utc('2031-02-28T00:00:00'), 3, 1, leapOrder).toISOString(),
    '2032-02-29T00:00:00.000Z',
    'a renewal ends in step with its order: a leap-day order is back on 29 February in a leap year',
  );
  t.equal(
    prepaidPeriodEnd(utc('2026-04-30T08:00:00'), 2, 2, at).toISOString(),
    '2026-06-30T08:00:00.000Z',
    'and a month-end order on month ends',
  );
  await t.rejects(
    db.$transaction((tx) => hooks.recordPrepaidOrder(tx, { caId: ca.id, domainId: OTHER_DOMAIN, periodType: 2, periodNum: 1, at })),
    { code: 'P2002' },
    'a second record for the same CA is refused by the database',
  );
});

t.test('GET /v1/billing-records: filters, order, paging, CSV, summary, access', async (t) => {
  const auth = harness.auth();
  const get = (url: string, headers: Record<string, string> = {}) =>
    harness.app.inject({ method: 'GET', url, headers: { ...auth, ...headers } });
  const all = (await get('/v1/billing-records?limit=1000')).json() as { total: number; records: Record<string, unknown>[] };
  t.equal(all.total, 1009);
  t.equal(all.records.length, 1000);
  const sorted = [...all.records].sort(
    (a, b) => Number(a.usage_start) - Number(b.usage_start) || String(a.record_id).localeCompare(String(b.record_id)),
  );
  t.same(
    all.records.map((r) => r.record_id),
    sorted.map((r) => r.record_id),
    'ordered by usage_start then record_id',
  );
  t.same(Object.keys(all.records[0]!).sort(), [
    'amount',
    'charging_mode',
    'create_time',
    'currency',
    'domain_id',
    'record_id',
    'resource_id',
    'resource_type',
    'unit_price',
    'usage_amount',
    'usage_end',
    'usage_start',
    'usage_type',
  ]);
  t.ok(
    all.records.every((r) => typeof r.amount === 'string' && typeof r.unit_price === 'string'),
    'amounts are strings',
  );

  const cas = (await get('/v1/billing-records?resource_type=CA&limit=100')).json() as typeof all;
  t.equal(cas.total, 9);
  t.same(cas.records[0], {
    ...cas.records[0],
    usage_type: 'CA_DURATION',
    usage_start: utc('2026-01-05T10:00:00').getTime(),
    usage_amount: 3600,
    unit_price: '0.001',
    amount: '3.6',
    charging_mode: 1,
    domain_id: TEST_DOMAIN,
  });
  const page = (await get('/v1/billing-records?resource_type=CA&limit=3&offset=3')).json() as typeof all;
  t.same(
    page.records.map((r) => r.record_id),
    cas.records.slice(3, 6).map((r) => r.record_id),
  );
  t.equal(page.total, 9);
  const countOnly = (await get('/v1/billing-records?limit=0')).json() as typeof all;
  t.same(countOnly, { total: 1009, records: [] });

  const rootId = cas.records[0]!.resource_id as string;
  const oneCa = (await get(`/v1/billing-records?resource_id=${rootId}`)).json() as typeof all;
  t.equal(oneCa.total, 4);
  const window = (
    await get(
      `/v1/billing-records?resource_type=CA&start_time=${utc('2026-01-05T11:00:00').getTime()}&end_time=${utc('2026-01-05T13:00:00').getTime()}`,
    )
  ).json() as typeof all;
  t.equal(window.total, 4, 'start_time <= usage_start < end_time: hours 11 and 12 of two CAs');
  t.equal(((await get('/v1/billing-records?charging_mode=0')).json() as typeof all).total, 0, 'the prepaid record is in another domain');
  t.equal(((await get('/v1/billing-records?charging_mode=0', harness.auth(OTHER_DOMAIN))).json() as typeof all).total, 1);

  const csv = await get('/v1/billing-records?resource_type=CERTIFICATE', { accept: 'text/csv' });
  t.equal(csv.statusCode, 200);
  t.match(csv.headers['content-type'], /^text\/csv/);
  t.equal(csv.headers['content-disposition'], 'attachment; filename="billing-records.csv"');
  const lines = csv.body.split('\r\n').filter(Boolean);
  t.equal(
    lines[0],
    'record_id,domain_id,resource_type,resource_id,charging_mode,usage_type,usage_start,usage_end,usage_amount,unit_price,amount,currency,create_time',
  );
  t.equal(lines.length, 1001, 'header + every certificate record, no paging');
  const cents = lines.slice(1).reduce((sum, line) => sum + Math.round(Number(line.split(',')[10]) * 100), 0);
  t.equal(cents, 3700, 'the CSV amounts add up to 37.00');
  const firstJson = ((await get('/v1/billing-records?resource_type=CERTIFICATE&limit=1')).json() as typeof all).records[0]!;
  t.equal(lines[1], Object.values(firstJson).join(','), 'a CSV line carries the JSON fields in order');

  const summary = await get(
    `/v1/billing-records/summary?start_time=${utc('2026-01-05T00:00:00').getTime()}&end_time=${utc('2026-01-06T00:00:00').getTime()}`,
  );
  t.equal(summary.statusCode, 200);
  t.equal((summary.json() as { total_amount: string }).total_amount, '65.53');
  t.same((await get('/v1/billing-records/summary', harness.auth('empty-domain'))).json(), {
    start_time: null,
    end_time: null,
    currency: 'CNY',
    total_amount: '0',
    totals: [],
  });

  t.equal((await get('/v1/billing-records?resource_type=NOPE')).json().error_code, 'PCA.00020001');
  t.equal((await get('/v1/billing-records?limit=1001')).statusCode, 400);
  t.equal((await get('/v1/billing-records?start_time=5&end_time=4')).statusCode, 400);
  const forbidden = await harness.app.inject({
    method: 'GET',
    url: '/v1/billing-records',
    headers: { authorization: `Bearer ${harness.tokenWith(['pca:ca:list'])}` },
  });
  t.equal(forbidden.statusCode, 403);
  t.equal((await harness.app.inject({ method: 'GET', url: '/v1/billing-records' })).statusCode, 401);
  const post = await harness.app.inject({ method: 'POST', url: '/v1/billing-records', headers: auth, payload: {} });
  t.equal(post.statusCode, 404, 'records cannot be changed through the API');
});

t.test('CSV: RFC 4180 quoting, and a text cell starting like a formula is shown, not evaluated', async (t) => {
  const view: BillingRecordView = {
    record_id: 'r1',
    domain_id: '=HYPERLINK("//evil.invalid","x")',
    resource_type: 'CERTIFICATE',
    resource_id: '@SUM(A1)',
    charging_mode: 1,
    usage_type: 'CERT_ISSUE',
    usage_start: 1,
    usage_end: 1,
    usage_amount: 1,
    unit_price: '0.05',
    amount: '0.05',
    currency: '+CNY',
    create_time: 2,
  };
  t.equal(toCsvLine(view), `r1,"'=HYPERLINK(""//evil.invalid"",""x"")",CERTIFICATE,'@SUM(A1),1,CERT_ISSUE,1,1,1,0.05,0.05,'+CNY,2\r\n`);
  t.match(toCsvLine({ ...view, domain_id: 'a,b', resource_id: '-1' }), /^r1,"a,b",CERTIFICATE,'-1,1,/, 'quoted; a leading - too');
});

t.test('summary: records written before BILLING_CURRENCY changed are totalled apart, never added to the others', async (t) => {
  const domainId = 'currency-change-domain';
  const record = (currency: string, amount: string) =>
    db.billingRecord.create({
      data: {
        id: randomUUID(),
        uniqueKey: `test:${randomUUID()}`,
        domainId,
        resourceType: 'CERTIFICATE',
        resourceId: randomUUID(),
        chargingMode: 1,
        usageType: 'CERT_ISSUE',
        usageStart: utc('2026-01-07T00:00:00'),
        usageEnd: utc('2026-01-07T00:00:00'),
        usageAmount: 1n,
        unitPrice: amount,
        amount,
        currency,
      },
    });
  await record('EUR', '0.07');
  await record('EUR', '0.07');
  await record('CNY', '0.05');
  const summary = await records.summary({ domainId, actor: 'test', requestId: 'r' }, {});
  t.same(summary.totals, [
    { resource_type: 'CERTIFICATE', usage_type: 'CERT_ISSUE', record_count: 1, usage_amount: 1, amount: '0.05', currency: 'CNY' },
    { resource_type: 'CERTIFICATE', usage_type: 'CERT_ISSUE', record_count: 2, usage_amount: 2, amount: '0.14', currency: 'EUR' },
  ]);
  t.same([summary.currency, summary.total_amount], ['CNY', '0.05'], 'the configured currency, its own records only');
});
