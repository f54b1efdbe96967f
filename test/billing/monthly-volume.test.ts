/**
 * Tiered certificate prices follow a domain's monthly volume kept in a counter row (domain_monthly_issues), not a count
 * of the month's records at each issuance (which had made a busy tenant's issuances 20x slower). A month without a
 * row starts from its CERT_ISSUE records; earlier months and other domains do not count; concurrent issuances take
 * exactly the places left at each price; a new month starts again; a process recounts a month at its first issuance
 * in it, so issuances made meanwhile with flat prices count.
 */
import { randomUUID } from 'node:crypto';
import { Prisma } from '../../src/db/generated/client.ts';
import t from 'tap';
import { buildApp } from '../../src/app.ts';
import { ManualClock } from '../../src/clock.ts';
import { loadPriceCatalog } from '../../src/config/price-catalog.ts';
import { createKeyStores } from '../../src/keystore/index.ts';
import { createBillingHooks, RECOUNT_INTERVAL_MS, startOfUtcMonth } from '../../src/services/billing/usage-hooks.ts';
import { seedCa } from '../certificates/support.ts';
import { createTestApp, OTHER_DOMAIN, TEST_DOMAIN } from '../helpers/app.ts';
import { BILLING_ENV, utc } from './support.ts';

const clock = new ManualClock(Date.now());
const harness = await createTestApp({ clock, env: BILLING_ENV }); // the 1st..600th of a month 0.05, later ones 0.03
t.teardown(() => harness.close());
const db = harness.database.prisma;
const ca = await seedCa(harness, { commonName: 'volume-ca' });
const month = startOfUtcMonth(clock.now());
const nextMonth = new Date(Date.UTC(month.getUTCFullYear(), month.getUTCMonth() + 1, 1));

/** CERT_ISSUE records written before the counter existed. */
async function pastRecords(domainId: string, count: number, at: Date) {
  await db.billingRecord.createMany({
    data: Array.from({ length: count }, () => {
      const id = randomUUID();
      return {
        id,
        uniqueKey: `CERT_ISSUE:${id}`,
        domainId,
        resourceType: 'CERTIFICATE',
        resourceId: id,
        chargingMode: 1,
        usageType: 'CERT_ISSUE',
        usageStart: at,
        usageEnd: at,
        usageAmount: 1n,
        unitPrice: new Prisma.Decimal('0.05'),
        amount: new Prisma.Decimal('0.05'),
        currency: 'CNY',
      };
    }),
  });
}

const issue = (app = harness.app) =>
  app.inject({
    method: 'POST',
    url: '/v1/private-certificates',
    headers: harness.auth(),
    payload: {
      issuer_id: ca.id,
      key_algorithm: 'EC256',
      distinguished_name: { common_name: 'volume' },
      validity: { type: 'DAY', value: 1 },
    },
  });

async function pricesOf(responses: { statusCode: number; json(): { certificate_id: string } }[]) {
  const ids = responses.map((response) => response.json().certificate_id);
  const records = await db.billingRecord.findMany({ where: { resourceId: { in: ids }, usageType: 'CERT_ISSUE' } });
  return records.map((record) => record.unitPrice.toFixed()).sort();
}

const counted = async (at: Date) =>
  (await db.domainMonthlyIssues.findUnique({ where: { domainId_month: { domainId: TEST_DOMAIN, month: at } } }))?.issued;

t.test('the first issuance of a month without a row counts its records: the 599th and 600th at 0.05, then 0.03', async (t) => {
  await pastRecords(TEST_DOMAIN, 598, new Date(month.getTime() + 1000));
  await pastRecords(TEST_DOMAIN, 50, new Date(month.getTime() - 1000)); // last month
  await pastRecords(OTHER_DOMAIN, 10, new Date(month.getTime() + 1000));
  t.equal(await counted(month), undefined, 'no row yet');
  const responses = await Promise.all([issue(), issue(), issue()]);
  t.same(
    responses.map((response) => response.statusCode),
    [200, 200, 200],
  );
  t.same(await pricesOf(responses), ['0.03', '0.05', '0.05']);
  t.equal(await counted(month), 601);
});

t.test('twenty at once: all at 0.03, counted exactly', async (t) => {
  const responses = await Promise.all(Array.from({ length: 20 }, () => issue()));
  t.same(await pricesOf(responses), Array(20).fill('0.03'));
  t.equal(await counted(month), 621);
});

t.test('a new month starts from its own records (none): 0.05 again', async (t) => {
  clock.set(nextMonth.getTime() + 3_600_000);
  const responses = await Promise.all(Array.from({ length: 5 }, () => issue()));
  t.same(await pricesOf(responses), Array(5).fill('0.05'));
  t.equal(await counted(nextMonth), 5);
  t.equal(await counted(month), 621, "last month's row is left as it was");
});

t.test('issuances made while prices were flat count once tiered prices are back (a restart with the new prices)', async (t) => {
  const flat = await buildApp({
    config: { ...harness.config, billing: loadPriceCatalog({ ...BILLING_ENV, BILLING_CERTIFICATE_PRICES: '0.05' }) },
    database: harness.database,
    keyStores: createKeyStores({ masterKey: harness.config.masterKey }),
    clock,
    logDestination: false,
  });
  t.teardown(() => flat.close());
  const before = await counted(nextMonth);
  const flatIssued = await Promise.all(Array.from({ length: 600 }, () => issue(flat)));
  t.same(await pricesOf(flatIssued), Array(600).fill('0.05'), 'flat');
  t.equal(await counted(nextMonth), before, 'flat prices touch no counter');

  const tieredAgain = await buildApp({
    config: harness.config,
    database: harness.database,
    keyStores: createKeyStores({ masterKey: harness.config.masterKey }),
    clock,
    logDestination: false,
  });
  t.teardown(() => tieredAgain.close());
  const [after] = await Promise.all([issue(tieredAgain)]);
  t.same(await pricesOf([after!]), ['0.03'], 'the 606th of the month: 0.03');
  t.equal(await counted(nextMonth), 606, 'recounted from the records');
});

t.test('issuances that did not count (an older release during a rolling upgrade) are recounted within RECOUNT_INTERVAL_MS', async (t) => {
  const issuedBefore = await counted(nextMonth);
  // CERT_ISSUE records of a process that keeps no counter, after this process last recounted.
  await pastRecords(TEST_DOMAIN, 10, clock.now());
  clock.advance(RECOUNT_INTERVAL_MS);
  const [response] = await Promise.all([issue()]);
  t.equal(response!.statusCode, 200);
  t.equal(await counted(nextMonth), issuedBefore! + 11, 'the counter holds the records it had missed');
});

t.test("a month is the UTC month whatever the database session's time zone: New York's March keeps its last days", async (t) => {
  const domainId = 'feedfacefeedfacefeedfacefeedface';
  // In New York, 1 March 00:00 UTC plus a month is 28 March 23:00 UTC: records after it fell out of March's count.
  await pastRecords(domainId, 598, utc('2026-03-30T12:00:00'));
  const hooks = createBillingHooks(loadPriceCatalog(BILLING_ENV));
  const at = utc('2026-03-31T12:00:00');
  const [, records] = await harness.database.transaction(async (tx) => {
    await tx({ name: 'session-in-new-york', text: "SELECT set_config('timezone', 'America/New_York', true)" }, []);
    const issues = Array.from({ length: 3 }, () => ({ domainId, resourceId: randomUUID(), issuerCaId: ca.id, at }));
    return hooks.chargeCertificateIssues(tx, issues, new Map());
  });
  t.same(
    (records as { unitPrice: Prisma.Decimal }[]).map((record) => record.unitPrice.toFixed()).sort(),
    ['0.03', '0.05', '0.05'],
    'the 599th and 600th of March at 0.05, then 0.03: the 598 of 30 March counted',
  );
});
