/**
 * Settlement on two instances at once (§8 invariants): two separate node processes settle the same Postgres
 * database concurrently; every (CA, hour) ends up with exactly one record and the seconds add up.
 * Always runs against a real Postgres server (DATABASE_URL's, else a throwaway cluster).
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import t from 'tap';
import { postgresTestDatabase, realPostgresOrSkipFile } from '../helpers/database.ts';
import { insertCa, utc } from './support.ts';

const run = promisify(execFile);
const postgres = await realPostgresOrSkipFile(t);
const database = await postgresTestDatabase(postgres.url);
t.teardown(async () => {
  await database.close();
  await postgres.stop();
});
const db = database.prisma;
const worker = new URL('./fixtures/settle-worker.ts', import.meta.url).pathname;

const CAS = 40;
const HOURS = 72;

t.test('two processes settling at once create each (CA, hour) record exactly once', async (t) => {
  const cas = [];
  for (let i = 0; i < CAS; i += 1) {
    const ca = await insertCa(db, 'two-instances');
    // CA i starts i minutes into the first hour, so every CA has 72 hours with seconds and a known total.
    await db.caUsagePeriod.create({
      data: {
        id: randomUUID(),
        caId: ca.id,
        domainId: ca.domainId,
        kind: 'BILLABLE',
        startAt: new Date(utc('2026-01-05T00:00:00').getTime() + i * 60_000),
      },
    });
    cas.push(ca);
  }
  const now = '2026-01-08T00:05:00.000Z';
  const startAt = Date.now() + 3000;
  const results = await Promise.all(
    [0, 1].map(
      async () =>
        JSON.parse((await run(process.execPath, ['--import', 'tsx', worker, database.url!, String(startAt), now])).stdout) as {
          recordsCreated: number;
          casSettled: number;
          casSkipped: number;
        },
    ),
  );
  t.equal(results[0]!.recordsCreated + results[1]!.recordsCreated, CAS * HOURS, 'the two runs together created every record once');
  t.equal(results[0]!.casSettled + results[1]!.casSettled, CAS, 'each CA settled by one run (the other found it locked or done)');
  t.equal(await db.billingRecord.count(), CAS * HOURS);
  const duplicates = await db.$queryRaw<{ n: bigint }[]>`
    SELECT count(*) AS n FROM (SELECT resource_id, usage_end FROM billing_records GROUP BY 1, 2 HAVING count(*) > 1) d`;
  t.equal(Number(duplicates[0]!.n), 0, 'no two records for one CA and hour');
  const seconds = await db.billingRecord.groupBy({ by: ['resourceId'], _sum: { usageAmount: true, amount: true } });
  const expected = new Map(cas.map((ca, i) => [ca.id, HOURS * 3600 - i * 60]));
  t.ok(
    seconds.every((row) => Number(row._sum.usageAmount) === expected.get(row.resourceId)),
    'each CA billed for exactly its seconds',
  );
  const total = await db.billingRecord.aggregate({ _sum: { amount: true } });
  // Σ (259200 − 60 i) s × 0.001 for i < 40 = 40 × 259.2 − 0.06 × 780 = 10368 − 46.8
  t.equal(total._sum.amount?.toFixed(), '10321.2');

  const again = JSON.parse((await run(process.execPath, ['--import', 'tsx', worker, database.url!, '0', now])).stdout) as {
    recordsCreated: number;
  };
  t.equal(again.recordsCreated, 0, 'a later run finds nothing to add');
});
