/**
 * Settlement after the job stopped (issue 21, item 2), with a hand-moved clock: from each CA's persisted watermark
 * every missed hour is billed exactly once however long the gap (8 and 40 days), in chunks of at most a week per
 * transaction, with a warning and the lag gauge when the gap exceeds a day; reruns add nothing. Also the migration's
 * backfill of the watermark from the records of the earlier 7-day look-back settlement.
 */
import { readFile } from 'node:fs/promises';
import t, { type Test } from 'tap';
import { ManualClock } from '../../src/clock.ts';
import { CHUNK_HOURS } from '../../src/services/billing/settlement-service.ts';
import type { BillableCa } from '../../src/services/billing/usage-hooks.ts';
import { createTestApp } from '../helpers/app.ts';
import { BILLING_ENV, insertCa, utc } from './support.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const METRICS_TOKEN = 'metrics-token-for-the-test-0123456789';
const clock = new ManualClock(utc('2026-03-01T09:00:00'));
const harness = await createTestApp({ clock, env: { ...BILLING_ENV, METRICS_TOKEN } });
t.teardown(() => harness.close());
const db = harness.database.prisma;
const { hooks, settlement } = harness.app.services.billing;

async function hook(
  name: 'startBillableUsage' | 'startPendingDeletion' | 'endPendingDeletionByRestore' | 'endUsage',
  ca: BillableCa,
  at: Date,
) {
  await db.$transaction((tx) => hooks[name](tx, ca, at));
}

async function runJob() {
  const warningsBefore = harness.logs.records().filter((line) => line.level === 40).length;
  const result = (await harness.app.jobRunner.runOnce('billing-settlement')) as Record<string, number>;
  const warnings = harness.logs
    .records()
    .filter((line) => line.level === 40)
    .slice(warningsBefore);
  const scrape = await harness.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  const gauge = Number(/^pca_billing_settlement_lag_seconds (\S+)$/m.exec(scrape.body)?.[1]);
  return { result, warnings, gauge };
}

/** The CA's CA_DURATION records by hour, checking that no hour is billed twice. */
async function hours(t: Test, caId: string) {
  const rows = await db.billingRecord.findMany({ where: { resourceId: caId, usageType: 'CA_DURATION' }, orderBy: { uniqueKey: 'asc' } });
  const keys = rows.map((row) => row.uniqueKey);
  t.equal(new Set(keys).size, keys.length, 'no hour billed twice');
  return rows.map((row) => ({
    hour: Date.parse(row.uniqueKey.slice(-24)),
    seconds: Number(row.usageAmount),
    start: row.usageStart.getTime(),
  }));
}

const start = utc('2026-03-01T10:00:00');
const steady = await insertCa(db, 'gap-domain');
const waited = await insertCa(db, 'gap-domain');
await hook('startBillableUsage', steady, start);
await hook('startBillableUsage', waited, new Date(start.getTime() + 30 * 60_000));

t.test('the job stops for 8 days: the next run bills each of the 192 missed hours once, in 2 chunks, and warns', async (t) => {
  clock.set(start.getTime() + HOUR + 5 * 60_000); // 11:05: hour 10 settled
  const first = await runJob();
  t.equal(first.result.recordsCreated, 2);
  t.equal(first.warnings.length, 0, 'an hour behind is no alert');
  t.equal(first.gauge, 3600);

  clock.advance(8 * DAY);
  const late = await runJob();
  t.equal(late.result.settledUntil as unknown as string, '2026-03-09T11:00:00.000Z');
  t.equal(late.result.recordsCreated, 2 * 192, 'every hour of both CAs, including the oldest');
  t.equal(late.result.chunks, 4, `192 hours per CA in chunks of at most ${CHUNK_HOURS}: 168 + 24`);
  t.equal(late.result.maxLagSeconds, 192 * 3600);
  t.equal(late.gauge, 192 * 3600, 'the gauge shows the lag');
  t.equal(late.warnings.length, 1, 'one warning');
  t.match(late.warnings[0], { job: 'billing-settlement', maxLagSeconds: 691200, casOverADayBehind: 2, msg: /8\.0 days behind for 2 CA/ });
  const billed = await hours(t, steady.id);
  t.equal(billed.length, 193);
  t.ok(
    billed.every((hour, i) => hour.hour === start.getTime() + i * HOUR && hour.seconds === 3600),
    'contiguous full hours from 10:00',
  );

  const again = await runJob();
  t.same(
    [again.result.recordsCreated, again.result.chunks, again.warnings.length, again.gauge],
    [0, 0, 0, 0],
    'a rerun adds nothing, and reports no lag',
  );
  t.equal(
    await db.caSettlement.count({ where: { caId: { in: [steady.id, waited.id] }, settledUntil: utc('2026-03-09T11:00:00') } }),
    2,
    'watermarks at the settled hour',
  );
});

t.test('40 days stopped, with a deletion and a restore inside the gap: every second billed once, in 6 chunks per CA', async (t) => {
  const deletedAt = utc('2026-03-12T16:15:00.500');
  const restoredAt = utc('2026-03-29T18:45:00');
  await hook('startPendingDeletion', waited, deletedAt);
  await hook('endPendingDeletionByRestore', waited, restoredAt);
  clock.advance(40 * DAY); // 2026-04-18T11:05: 960 hours since the watermark
  const [late, concurrent] = await Promise.all([runJob(), settlement.settle(clock.now())]);
  // The restored CA has no record for the 409 hours from 03-12T17:00 to the restore hour 03-29T18:00.
  t.equal(late.result.recordsCreated + concurrent.recordsCreated, 960 + 960 - 409, 'with a concurrent run: each hour once');
  t.equal(late.result.chunks + concurrent.chunks, 2 * 6, 'each CA in 6 transactions of at most 168 hours (960 = 5 × 168 + 120)');
  t.equal(Math.max(late.result.maxLagSeconds, concurrent.maxLagSeconds), 960 * 3600);
  t.equal(late.warnings.length, late.result.casOverADayBehind > 0 ? 1 : 0, 'the job warns when it found a CA behind');

  for (const ca of [steady, waited]) {
    const billed = await hours(t, ca.id);
    const firstStart = ca === steady ? start.getTime() : start.getTime() + 30 * 60_000;
    t.equal(
      billed.reduce((sum, hour) => sum + hour.seconds, 0),
      (utc('2026-04-18T11:00:00').getTime() - firstStart) / 1000,
      `${ca === steady ? 'steady' : 'restored'} CA: every second up to the settled hour, once`,
    );
  }
  const restored = (await hours(t, waited.id)).find((hour) => hour.hour === utc('2026-03-29T18:00:00').getTime());
  t.same(
    restored && [restored.seconds, restored.start],
    [17 * 86400 + 2.5 * 3600 + 15 * 60, utc('2026-03-12T16:15:00').getTime()],
    'the wait, begun 17 days and 2 chunks earlier, is billed in the restore hour',
  );
  const rerun = await runJob();
  t.same([rerun.result.recordsCreated, rerun.result.chunks], [0, 0]);
});

t.test('migration backfill: resume where the 7-day settlement stopped, or earlier for a CA a run missed', async (t) => {
  // Records as the earlier settlement left them at 2026-05-10T12:00 (settled up to 12:00), one CA missed by a failed run.
  const at = (iso: string) => utc(`2026-05-${iso}`);
  const complete = await insertCa(db, 'backfill');
  const missed = await insertCa(db, 'backfill');
  const pending = await insertCa(db, 'backfill');
  const unsettled = await insertCa(db, 'backfill');
  await hook('startBillableUsage', complete, at('10T08:20:00'));
  await hook('startBillableUsage', missed, at('10T08:00:00'));
  await hook('startBillableUsage', pending, at('09T08:00:00'));
  await hook('startPendingDeletion', pending, at('09T09:30:00'));
  clock.set(at('10T12:05:00'));
  await settlement.settle(clock.now());
  await db.billingRecord.deleteMany({ where: { resourceId: missed.id, usageStart: { gte: at('10T10:00:00') } } });
  await hook('startBillableUsage', unsettled, at('10T11:30:00'));
  await db.billingRecord.deleteMany({ where: { resourceId: unsettled.id } });

  // Replay the migration on this database, as if it ran now over those records.
  const sql = await readFile(
    new URL('../../prisma/migrations/20261202145439_billing_settlement_watermark/migration.sql', import.meta.url),
    'utf8',
  );
  await db.$executeRawUnsafe('DROP TABLE ca_settlements');
  for (const statement of sql.split(/;\s*\n/).filter((text) => /\S/.test(text.replace(/--.*$/gm, ''))))
    await db.$executeRawUnsafe(statement);
  const watermarks = new Map((await db.caSettlement.findMany()).map((row) => [row.caId, row.settledUntil.toISOString()]));
  t.equal(watermarks.get(complete.id), '2026-05-10T12:00:00.000Z');
  t.equal(watermarks.get(missed.id), '2026-05-10T10:00:00.000Z', 'after its own newest record');
  t.equal(watermarks.get(pending.id), '2026-05-10T12:00:00.000Z', 'pending deletion: nothing to miss, no false lag');
  t.equal(watermarks.get(unsettled.id), undefined, 'never settled: from its first stretch');
  t.equal(watermarks.get(steady.id), '2026-05-10T12:00:00.000Z');

  clock.set(at('10T13:05:00'));
  const { result, warnings } = await runJob();
  t.equal(warnings.length, 0, 'no CA a day behind');
  t.equal(result.maxLagSeconds, 3 * 3600, 'the furthest behind: the missed CA, 3 hours');
  const billed = await db.billingRecord.groupBy({
    by: ['resourceId'],
    where: { resourceId: { in: [complete.id, missed.id, pending.id, unsettled.id] } },
    _sum: { usageAmount: true },
    _count: true,
  });
  const byCa = new Map(billed.map((row) => [row.resourceId, [row._count, Number(row._sum.usageAmount)]]));
  t.same(byCa.get(complete.id), [5, 4 * 3600 + 40 * 60]);
  t.same(byCa.get(missed.id), [5, 5 * 3600], 'its missed hours billed');
  t.same(byCa.get(pending.id), [2, 3600 + 30 * 60]);
  t.same(byCa.get(unsettled.id), [2, 30 * 60 + 3600]);
});
