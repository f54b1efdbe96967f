/**
 * PGlite has no autovacuum: the embedded-database-maintenance job gives its planner statistics and reuses the
 * space of deleted rows (src/jobs/embedded-maintenance.ts). Runs on an embedded database of its own, whatever
 * DATABASE_URL says; the job exists only where the app's database is embedded.
 */
import { PGlite } from '@electric-sql/pglite';
import t from 'tap';
import { openDatabase } from '../../src/db/database.ts';
import { EMBEDDED_MAINTENANCE_JOB, embeddedMaintenanceJob } from '../../src/jobs/embedded-maintenance.ts';
import { applyMigrations } from '../../src/db/migrate.ts';
import { createTestApp } from '../helpers/app.ts';

t.test('after the job, a churned table of the embedded database is vacuumed and has statistics', async (t) => {
  const pglite = await PGlite.create();
  t.teardown(() => pglite.close());
  await applyMigrations({ pglite });
  const database = await openDatabase({ pglite });
  t.teardown(() => database.close());
  await pglite.exec(`INSERT INTO seen_signatures (fingerprint, expires_at)
                       SELECT sha256(int4send(g)), now() FROM generate_series(1, 5000) g`);
  await pglite.exec('DELETE FROM seen_signatures WHERE length(fingerprint) = 32 AND get_byte(fingerprint, 0) < 128');
  const tuples = async () =>
    Number(
      (await pglite.query<{ reltuples: number }>(`SELECT reltuples FROM pg_class WHERE relname = 'seen_signatures'`)).rows[0]!.reltuples,
    );
  t.equal(await tuples(), -1, 'never analyzed: the planner guesses');
  const job = embeddedMaintenanceJob(database.prisma);
  t.equal(job.name, EMBEDDED_MAINTENANCE_JOB);
  await job.run({ now: new Date(), log: undefined as never });
  const live = Number((await pglite.query<{ count: number }>('SELECT count(*)::int AS count FROM seen_signatures')).rows[0]!.count);
  t.equal(await tuples(), live, 'analyzed: the row estimate is the table');
  const [stats] = (
    await pglite.query<{ last_vacuum: Date | null }>(`SELECT last_vacuum FROM pg_stat_user_tables WHERE relname = 'seen_signatures'`)
  ).rows;
  t.ok(stats?.last_vacuum, 'vacuumed');
});

t.test('the app runs the job on its embedded database only (Postgres has autovacuum)', async (t) => {
  const harness = await createTestApp();
  t.teardown(() => harness.close());
  const names = harness.app.jobRunner.jobs.map((job) => job.name);
  t.equal(names.includes(EMBEDDED_MAINTENANCE_JOB), harness.database.kind === 'pglite', `on ${harness.database.kind}`);
});
