/**
 * Auto-renewal of yearly/monthly CAs (issue 21, item 7) with a hand-moved clock: the `ca-prepaid-renewal` job renews
 * a CA ordered with is_auto_renew 1 seven days before its paid period ends, for the ordered duration, with one
 * CA_PREPAID record of the exact amount; never a CA ordered without it; run every day for half a year it keeps the
 * CA out of its grace period; a CA it reaches late (grace or frozen) is renewed from its original expiry; a CA past
 * retention is not renewed but removed by `ca-deletion`, and one pending deletion is left alone.
 * Amounts: the default catalog, 2000 per month and 20000 per year (src/config/price-catalog.ts).
 */
import t from 'tap';
import { ManualClock } from '../../src/clock.ts';
import { CA_PREPAID_RENEWAL_JOB } from '../../src/services/billing/prepaid-renewal.ts';
import { prepaidPeriodEnd } from '../../src/services/billing/usage-hooks.ts';
import { createTestApp } from '../helpers/app.ts';
import { CA, DN, assertError, client, type Json } from './support.ts';

const DAY = 86_400_000;
const clock = new ManualClock(Date.parse('2026-01-31T08:00:00Z'));
const harness = await createTestApp({ clock });
t.teardown(() => harness.close());
const api = client(harness);
const { call } = api;
const prisma = harness.database.prisma;
const runJob = (name = CA_PREPAID_RENEWAL_JOB) => harness.app.jobRunner.runOnce(name) as Promise<Json>;

/** Orders one CA now with `order` and configures it as a root named `name`. */
const prepaidRoot = (name: string, order: { period_type: 2 | 3; period_num: number; is_auto_renew: 0 | 1 }) =>
  api.prepaidRoot(order, { distinguished_name: { ...DN, common_name: name } });

async function prepaidRecords(caId: string) {
  const rows = await prisma.billingRecord.findMany({ where: { resourceId: caId }, orderBy: { usageStart: 'asc' } });
  return rows.map((row) => ({
    usageType: row.usageType,
    chargingMode: row.chargingMode,
    start: row.usageStart.toISOString(),
    end: row.usageEnd.toISOString(),
    amount: Number(row.usageAmount),
    unitPrice: row.unitPrice.toFixed(),
    total: row.amount.toFixed(),
  }));
}

const issue = (issuer: string) =>
  call('POST', '/v1/private-certificates', {
    issuer_id: issuer,
    key_algorithm: 'EC256',
    signature_algorithm: 'SHA256',
    distinguished_name: { common_name: 'leaf' },
    validity: { type: 'DAY', value: 1 },
  });
const iso = (ms: number) => new Date(ms).toISOString();

t.test('the job is registered with the runner', async (t) => {
  t.ok(harness.app.jobRunner.jobs.some((job) => job.name === CA_PREPAID_RENEWAL_JOB));
});

t.test('renewed 7 days before expiry for the ordered duration, billed once at the exact amount; never when the flag is off', async (t) => {
  clock.set(Date.parse('2026-01-31T08:00:00Z'));
  const renewing = await prepaidRoot('renewing', { period_type: 2, period_num: 2, is_auto_renew: 1 });
  const manual = await prepaidRoot('manual', { period_type: 2, period_num: 2, is_auto_renew: 0 });
  t.equal(iso(renewing.expiry), '2026-03-31T08:00:00.000Z', 'two months from 31 January');
  t.equal((await api.show(renewing.id)).prepaid_auto_renew, 1, 'the CA object says it renews automatically');
  t.equal((await api.show(manual.id)).prepaid_auto_renew, 0);
  const listed = (await call('GET', `${CA}?limit=100`)).body.certificate_authorities as Json[];
  t.equal(listed.find((ca) => ca.ca_id === renewing.id)?.prepaid_auto_renew, 1, 'and so does the list');

  clock.set(renewing.expiry - 7 * DAY - 1000);
  t.same(await runJob(), { renewed: 0, periods: 0 }, '1 s before the 7-day lead: nothing due');
  clock.set(renewing.expiry - 7 * DAY);
  t.same(await runJob(), { renewed: 1, periods: 1 }, 'at the lead: renewed, the CA without auto-renew is not');
  const renewedUntil = prepaidPeriodEnd(new Date(renewing.expiry), 2, 2).getTime();
  t.equal(iso(renewedUntil), '2026-05-31T08:00:00.000Z');
  t.match(await api.show(renewing.id), { prepaid_expire_time: renewedUntil, prepaid_days_left: 68, freeze_flag: 0 });
  t.same(
    await prepaidRecords(renewing.id),
    [
      {
        usageType: 'CA_PREPAID',
        chargingMode: 0,
        start: '2026-01-31T08:00:00.000Z',
        end: '2026-03-31T08:00:00.000Z',
        amount: 2,
        unitPrice: '2000',
        total: '4000',
      },
      {
        usageType: 'CA_PREPAID',
        chargingMode: 0,
        start: '2026-03-31T08:00:00.000Z',
        end: '2026-05-31T08:00:00.000Z',
        amount: 2,
        unitPrice: '2000',
        total: '4000',
      },
    ],
    'the order and one renewal record for the next two months, 2 × 2000',
  );
  t.match(await prisma.auditEvent.findMany({ where: { resourceId: renewing.id, action: 'pca:ca:renew' } }), [
    { actor: `system:${CA_PREPAID_RENEWAL_JOB}`, detail: { prepaid_expire_time: { from: iso(renewing.expiry), to: iso(renewedUntil) } } },
  ]);
  t.same(await runJob(), { renewed: 0, periods: 0 }, 'run again: nothing more');
  t.equal((await prepaidRecords(renewing.id)).length, 2);

  t.equal(manual.expiry, renewing.expiry);
  t.equal((await api.show(manual.id)).prepaid_expire_time, manual.expiry, 'auto-renew off: the period is not extended');
  t.same((await prepaidRecords(manual.id)).length, 1, 'and nothing more is billed');
  clock.set(manual.expiry + 15 * DAY);
  t.match(await api.show(manual.id), { freeze_flag: 1 }, 'it is frozen when its grace ends');
  t.match(await api.show(renewing.id), { freeze_flag: 0, prepaid_days_left: 46 }, 'the renewed one is not');
  t.equal((await issue(renewing.id)).status, 200);
});

t.test(
  'run daily for half a year, a monthly CA never reaches its grace period; its records cover the time without gap or overlap',
  async (t) => {
    clock.set(Date.parse('2026-07-10T08:00:00Z'));
    const monthly = await prepaidRoot('monthly', { period_type: 2, period_num: 1, is_auto_renew: 1 });
    const yearly = await prepaidRoot('yearly', { period_type: 3, period_num: 1, is_auto_renew: 1 });
    const end = clock.now().getTime() + 183 * DAY;
    let inPeriod = true;
    while (clock.now().getTime() < end) {
      clock.advance(DAY);
      await runJob();
      const shown = await api.show(monthly.id);
      if (!(shown.prepaid_expire_time > clock.now().getTime() + 6 * DAY && shown.freeze_flag === 0)) inPeriod = false;
    }
    t.ok(inPeriod, 'every day: more than 6 days of paid period left, never frozen');
    const records = await prepaidRecords(monthly.id);
    t.same(
      records.map((record) => record.start.slice(0, 10)),
      ['2026-07-10', '2026-08-10', '2026-09-10', '2026-10-10', '2026-11-10', '2026-12-10', '2027-01-10'],
    );
    t.ok(
      records.every((record, index) => index === 0 || record.start === records[index - 1].end),
      'each period starts where the last one ended',
    );
    t.ok(
      records.every((record) => record.total === '2000' && record.amount === 1),
      'each month costs 2000',
    );
    t.equal((await api.show(monthly.id)).prepaid_expire_time, Date.parse(records.at(-1)!.end));
    t.same(
      (await prepaidRecords(yearly.id)).map((record) => record.total),
      ['20000'],
      'the yearly CA is not due yet',
    );
    t.equal((await issue(monthly.id)).status, 200);
  },
);

t.test(
  'reached late (jobs off): a frozen CA is renewed from its original expiry until paid beyond the lead, and issues again',
  async (t) => {
    clock.set(Date.parse('2027-02-01T00:00:00Z'));
    const late = await prepaidRoot('late', { period_type: 2, period_num: 1, is_auto_renew: 1 });
    t.equal(iso(late.expiry), '2027-03-01T00:00:00.000Z');
    clock.set(late.expiry + 25 * DAY);
    t.match(await api.show(late.id), { freeze_flag: 1 }, 'frozen: the job did not run for weeks');
    assertError(t, await issue(late.id), 403, 'PCA.00030202');
    t.match(await runJob(), { renewed: 1, periods: 2 });
    t.same(
      (await prepaidRecords(late.id)).map((record) => [record.start.slice(0, 10), record.end.slice(0, 10), record.total]),
      [
        ['2027-02-01', '2027-03-01', '2000'],
        ['2027-03-01', '2027-04-01', '2000'],
        ['2027-04-01', '2027-05-01', '2000'],
      ],
      'March (the grace and frozen days included, as Huawei bills them) and April, since March alone ends within 7 days',
    );
    t.match(await api.show(late.id), { freeze_flag: 0, prepaid_expire_time: Date.parse('2027-05-01T00:00:00Z') });
    t.equal((await issue(late.id)).status, 200, 'issues again');
  },
);

t.test('pending deletion: not renewed; past retention: not renewed, and removed by ca-deletion with every other gone CA', async (t) => {
  clock.set(Date.parse('2027-06-01T00:00:00Z'));
  const pending = await prepaidRoot('pending-deletion', { period_type: 2, period_num: 1, is_auto_renew: 1 });
  await call('POST', `${CA}/${pending.id}/disable`);
  t.equal((await call('DELETE', `${CA}/${pending.id}?pending_days=30`)).status, 204);
  clock.set(pending.expiry - 3 * DAY);
  await runJob();
  t.equal((await prepaidRecords(pending.id)).length, 1, 'pending deletion (until 07-01): not renewed');

  const released = await prepaidRoot('released', { period_type: 2, period_num: 1, is_auto_renew: 1 });
  clock.set(released.expiry + 30 * DAY);
  assertError(t, await call('GET', `${CA}/${released.id}`), 404, 'PCA.10010002');
  await runJob();
  t.equal((await prepaidRecords(released.id)).length, 1, 'released (jobs off until after its retention): not renewed');
  const gone: string[] = [];
  for (const { id } of await prisma.certificateAuthority.findMany({ where: { removedAt: null }, select: { id: true } })) {
    if ((await call('GET', `${CA}/${id}`)).status === 404) gone.push(id);
  }
  t.ok(gone.includes(released.id) && gone.includes(pending.id));
  t.same(
    await runJob('ca-deletion'),
    { removed: gone.length, keysDestroyed: gone.length },
    'every CA that reads as gone is removed, its key destroyed',
  );
  const removed = await prisma.certificateAuthority.findMany({ where: { id: { in: gone } } });
  t.ok(removed.every((row) => row.removedAt && row.keyRef === null));
  t.match(await prisma.auditEvent.findMany({ where: { resourceId: released.id, action: 'pca:ca:remove' } }), [
    { detail: { reason: 'prepaid retention period ended', prepaid_expire_time: iso(released.expiry) } },
  ]);
});

t.test('ordered on a month end: each renewal ends on the last day of its month, not on the shortest month’s day', async (t) => {
  clock.set(Date.parse('2029-01-31T08:00:00Z'));
  const monthEnd = await prepaidRoot('month-end', { period_type: 2, period_num: 1, is_auto_renew: 1 });
  t.equal(iso(monthEnd.expiry), '2029-02-28T08:00:00.000Z', 'the order: 31 January to 28 February');
  while (clock.now().getTime() < Date.parse('2029-05-31T08:00:00Z')) {
    clock.advance(DAY);
    await runJob();
  }
  const records = await prepaidRecords(monthEnd.id);
  t.same(
    records.map((record) => [record.start.slice(0, 10), record.end.slice(0, 10)]),
    [
      ['2029-01-31', '2029-02-28'],
      ['2029-02-28', '2029-03-31'],
      ['2029-03-31', '2029-04-30'],
      ['2029-04-30', '2029-05-31'],
      ['2029-05-31', '2029-06-30'],
    ],
    'renewed 7 days before each end, every period a calendar month in step with the order',
  );
  t.equal((await api.show(monthEnd.id)).prepaid_expire_time, Date.parse('2029-06-30T08:00:00Z'));
});
