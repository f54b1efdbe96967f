// Fast unit tests (no server, no database) of hourly settlement: which seconds of which UTC hour are billed.
import t from 'tap';
import { HOUR_MS } from '../../src/clock.ts';
import { caDurationKey, floorHour, hourlyUsage, type UsageStretch } from '../../src/services/billing/settlement-rules.ts';

const T0 = Date.UTC(2026, 0, 1, 10); // 10:00:00 UTC
const at = (minutes: number, seconds = 0, ms = 0) => new Date(T0 + minutes * 60_000 + seconds * 1000 + ms);
const billable = (from: Date, to: Date | null): UsageStretch => ({ kind: 'BILLABLE', startAt: from, endAt: to, restoredAt: null });
const plain = (rows: ReturnType<typeof hourlyUsage>) =>
  rows.map((row) => ({
    hour: row.hour.toISOString(),
    seconds: row.seconds,
    from: row.usageStart.toISOString(),
    to: row.usageEnd.toISOString(),
  }));

t.test('floorHour cuts to the start of the UTC hour', async (t) => {
  t.equal(HOUR_MS, 3_600_000);
  t.equal(floorHour(T0), T0);
  t.equal(floorHour(T0 + HOUR_MS - 1), T0);
  t.equal(floorHour(T0 + HOUR_MS), T0 + HOUR_MS);
  t.equal(floorHour(T0 - 1), T0 - HOUR_MS);
});

t.test('a stretch inside one hour bills its whole seconds in that hour', async (t) => {
  const rows = hourlyUsage([billable(at(5, 0, 999), at(20, 30, 400))], T0, T0 + HOUR_MS);
  t.same(plain(rows), [{ hour: at(0).toISOString(), seconds: 15 * 60 + 30, from: at(5).toISOString(), to: at(20, 30).toISOString() }]);
});

t.test('a stretch across hours is split at the hour boundaries and adds up to itself', async (t) => {
  const rows = hourlyUsage([billable(at(30), at(150))], T0, T0 + 4 * HOUR_MS);
  t.same(plain(rows), [
    { hour: at(0).toISOString(), seconds: 1800, from: at(30).toISOString(), to: at(60).toISOString() },
    { hour: at(60).toISOString(), seconds: 3600, from: at(60).toISOString(), to: at(120).toISOString() },
    { hour: at(120).toISOString(), seconds: 1800, from: at(120).toISOString(), to: at(150).toISOString() },
  ]);
  t.equal(
    rows.reduce((sum, row) => sum + row.seconds, 0),
    120 * 60,
  );
});

t.test('only the window is billed: before windowStart and from settledUntil on are left out', async (t) => {
  const rows = hourlyUsage([billable(at(-90), at(300))], T0, T0 + 2 * HOUR_MS);
  t.same(plain(rows), [
    { hour: at(0).toISOString(), seconds: 3600, from: at(0).toISOString(), to: at(60).toISOString() },
    { hour: at(60).toISOString(), seconds: 3600, from: at(60).toISOString(), to: at(120).toISOString() },
  ]);
});

t.test('an open stretch is billed up to settledUntil', async (t) => {
  const rows = hourlyUsage([billable(at(45), null)], T0, T0 + HOUR_MS);
  t.same(plain(rows), [{ hour: at(0).toISOString(), seconds: 900, from: at(45).toISOString(), to: at(60).toISOString() }]);
});

t.test('two stretches in one hour add their seconds and span from the first start to the last end', async (t) => {
  const rows = hourlyUsage([billable(at(40), at(50)), billable(at(10), at(20))], T0, T0 + HOUR_MS);
  t.same(plain(rows), [{ hour: at(0).toISOString(), seconds: 1200, from: at(10).toISOString(), to: at(50).toISOString() }]);
});

t.test('hours come out ascending whatever the order of the stretches', async (t) => {
  const rows = hourlyUsage([billable(at(130), at(140)), billable(at(10), at(20)), billable(at(70), at(80))], T0, T0 + 3 * HOUR_MS);
  t.same(
    rows.map((row) => row.hour.getTime()),
    [T0, T0 + HOUR_MS, T0 + 2 * HOUR_MS],
  );
});

t.test('an empty or sub-second stretch bills nothing', async (t) => {
  t.same(hourlyUsage([billable(at(10), at(10))], T0, T0 + HOUR_MS), []);
  t.same(hourlyUsage([billable(at(10, 0, 100), at(10, 0, 900))], T0, T0 + HOUR_MS), []);
  t.same(hourlyUsage([], T0, T0 + HOUR_MS), []);
});

t.test('a PENDING_DELETION wait counts only when a restore ended it, entirely in the restore hour', async (t) => {
  const waited: UsageStretch = { kind: 'PENDING_DELETION', startAt: at(30), endAt: at(130, 15), restoredAt: at(130, 15) };
  t.same(plain(hourlyUsage([waited], T0, T0 + 3 * HOUR_MS)), [
    { hour: at(120).toISOString(), seconds: 100 * 60 + 15, from: at(30).toISOString(), to: at(130, 15).toISOString() },
  ]);
  const notRestored: UsageStretch = { kind: 'PENDING_DELETION', startAt: at(30), endAt: at(130), restoredAt: null };
  t.same(hourlyUsage([notRestored], T0, T0 + 3 * HOUR_MS), []);
});

t.test('a restored wait is billed only when its restore hour is settled in this window', async (t) => {
  const waited: UsageStretch = { kind: 'PENDING_DELETION', startAt: at(30), endAt: at(130), restoredAt: at(130) };
  t.same(hourlyUsage([waited], T0, T0 + 2 * HOUR_MS), [], 'restore hour not settled yet');
  t.same(hourlyUsage([waited], T0 + 3 * HOUR_MS, T0 + 4 * HOUR_MS), [], 'restore hour settled by an earlier window');
  t.equal(hourlyUsage([waited], T0 + 2 * HOUR_MS, T0 + 3 * HOUR_MS).length, 1, 'restore hour is the first of the window');
  const restoredAtEnd: UsageStretch = { kind: 'PENDING_DELETION', startAt: at(30), endAt: at(180), restoredAt: at(180) };
  t.same(hourlyUsage([restoredAtEnd], T0, T0 + 3 * HOUR_MS), [], 'restore at settledUntil belongs to the next window');
});

t.test('a restored wait ending where it started bills nothing', async (t) => {
  const waited: UsageStretch = { kind: 'PENDING_DELETION', startAt: at(30), endAt: at(30), restoredAt: at(30) };
  t.same(hourlyUsage([waited], T0, T0 + HOUR_MS), []);
});

t.test('a restored wait adds to the billable seconds of its restore hour', async (t) => {
  const rows = hourlyUsage(
    [{ kind: 'PENDING_DELETION', startAt: at(10), endAt: at(70), restoredAt: at(70) }, billable(at(70), null)],
    T0 + HOUR_MS,
    T0 + 2 * HOUR_MS,
  );
  t.same(plain(rows), [{ hour: at(60).toISOString(), seconds: 60 * 60 + 50 * 60, from: at(10).toISOString(), to: at(120).toISOString() }]);
});

t.test('caDurationKey names the CA and the hour', async (t) => {
  t.equal(caDurationKey('ca-1', new Date(T0)), 'CA_DURATION:ca-1:2026-01-01T10:00:00.000Z');
});
