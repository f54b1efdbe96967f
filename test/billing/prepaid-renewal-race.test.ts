/**
 * Auto-renewal run twice at once on a real Postgres (where transactions truly overlap), from two separate connection
 * pools as two instances would: however the runs interleave, each due CA is renewed exactly once, with exactly one
 * renewal record and one audit event, and its paid period moves by exactly one period.
 */
import t from 'tap';
import { ManualClock } from '../../src/clock.ts';
import { openDatabase } from '../../src/db/database.ts';
import { caPrepaidRenewalJob } from '../../src/services/billing/prepaid-renewal.ts';
import { prepaidPeriodEnd } from '../../src/services/billing/usage-hooks.ts';
import { createTestAppOnRealPostgres } from '../helpers/app.ts';
import { realPostgresOrSkipFile } from '../helpers/database.ts';
import { CA, PREPAID_PRODUCT, client } from '../ca/support.ts';

const DAY = 86_400_000;
const CAS = 30;
const clock = new ManualClock(Date.parse('2026-03-15T12:00:00Z'));
const harness = await createTestAppOnRealPostgres(await realPostgresOrSkipFile(t), { clock });
const second = await openDatabase({ url: harness.database.url! });
t.teardown(async () => {
  await second.close();
  await harness.close();
});
const prisma = harness.database.prisma;
const hooks = harness.app.services.billing.hooks;

const ordered = await client(harness).call('POST', `${CA}/order`, {
  cloud_service_type: 'hws.service.type.ccm',
  charging_mode: 0,
  period_type: 2,
  period_num: 1,
  is_auto_renew: 1,
  subscription_num: CAS,
  product_infos: [PREPAID_PRODUCT],
});
const ids = ordered.body.ca_ids as string[];
const orderedAt = clock.now();
const expiry = prepaidPeriodEnd(clock.now(), 2, 1);

t.test(`two instances renew ${CAS} due CAs at once: each exactly once`, async (t) => {
  t.equal(ids.length, CAS);
  const now = new Date(expiry.getTime() - 7 * DAY + 1000);
  const results = await Promise.all(
    [prisma, second.prisma].map(
      (db) =>
        caPrepaidRenewalJob({ db, billing: hooks }).run({ now, log: harness.app.log }) as Promise<{ renewed: number; periods: number }>,
    ),
  );
  t.equal(results[0].renewed + results[1].renewed, CAS, `${results[0].renewed} + ${results[1].renewed} renewals`);
  t.equal(results[0].periods + results[1].periods, CAS);
  const renewedUntil = prepaidPeriodEnd(expiry, 2, 1);
  const rows = await prisma.certificateAuthority.findMany({ where: { id: { in: ids } } });
  t.ok(
    rows.every((row) => row.prepaidUntil?.getTime() === renewedUntil.getTime()),
    'every paid period moved by one month',
  );
  const records = await prisma.billingRecord.groupBy({
    by: ['resourceId'],
    where: { resourceId: { in: ids }, usageType: 'CA_PREPAID', usageStart: expiry },
    _count: true,
  });
  t.same(
    records.map((group) => group._count),
    Array(CAS).fill(1),
    'one renewal record per CA',
  );
  t.equal(await prisma.auditEvent.count({ where: { resourceId: { in: ids }, action: 'pca:ca:renew' } }), CAS, 'one audit event per CA');
  const again = await Promise.all(
    [prisma, second.prisma].map((db) => caPrepaidRenewalJob({ db, billing: hooks }).run({ now, log: harness.app.log })),
  );
  t.same(
    again,
    [
      { renewed: 0, periods: 0 },
      { renewed: 0, periods: 0 },
    ],
    'two more runs at once find nothing due',
  );
});

t.test('the same period renewed by two transactions at once, past the claim: one commits, the other is refused', async (t) => {
  const [id] = ids;
  const from = (await prisma.certificateAuthority.findUniqueOrThrow({ where: { id } })).prepaidUntil!;
  const renew = (db: typeof prisma) =>
    db.$transaction((tx) =>
      hooks.recordPrepaidRenewal(tx, { caId: id, domainId: harness.config.defaultDomainId, periodType: 2, periodNum: 1, from, orderedAt }),
    );
  const outcomes = await Promise.allSettled([renew(prisma), renew(second.prisma)]);
  t.equal(
    outcomes.filter((outcome) => outcome.status === 'fulfilled').length,
    1,
    `one renewal commits (${outcomes.map((outcome) => outcome.status).join(', ')})`,
  );
  t.equal(await prisma.billingRecord.count({ where: { resourceId: id, usageStart: from } }), 1, 'one record for the period');
  t.equal(
    (await prisma.certificateAuthority.findUniqueOrThrow({ where: { id } })).prepaidUntil?.getTime(),
    prepaidPeriodEnd(from, 2, 1).getTime(),
    'moved by one period',
  );
});
