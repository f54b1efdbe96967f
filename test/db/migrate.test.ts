// Offline migrations: the committed migration matches the schema and applies unchanged to Postgres 15;
// applyMigrations is idempotent, safe when run concurrently, and records runs like the Prisma CLI;
// on PGlite, through the db:migrate script on a data folder.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import t from 'tap';
import { openRuntime } from '../../src/runtime.ts';
import { testConfig } from '../helpers/app.ts';
import { openDatabase } from '../../src/db/database.ts';
import { applyMigrations, createMigration, diffMigrationsToSchema, readMigrationList } from '../../src/db/migrate.ts';
import { createEmptyDatabase, dropDatabase, startTestPostgres } from '../helpers/database.ts';

const run = promisify(execFile);
const migrationNames = (await readMigrationList('prisma/migrations')).migrationDirectories.map((dir) => dir.path);
const EXPECTED_TABLES = [
  '_prisma_migrations',
  'access_keys',
  'acme_accounts',
  'acme_authorizations',
  'acme_challenges',
  'acme_eab_keys',
  'acme_nonces',
  'acme_orders',
  'audit_events',
  'billing_records',
  'ca_orders',
  'ca_settlements',
  'ca_usage_periods',
  'certificate_authorities',
  'certificates',
  'crl_publications',
  'crl_segments',
  'crls',
  'domain_certificate_usage',
  'domain_monthly_issues',
  'domains',
  'idempotency_keys',
  'pending_ca_keys',
  'revocations',
  'seen_signatures',
  'tags',
];
const TABLES_SQL = `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`;
/** The columns `prisma migrate deploy` gives its history table. */
const CLI_HISTORY_COLUMNS = [
  'applied_steps_count',
  'checksum',
  'finished_at',
  'id',
  'logs',
  'migration_name',
  'rolled_back_at',
  'started_at',
];

async function tempDir(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pca-migrate-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

t.ok(migrationNames.length > 0 && migrationNames[0].endsWith('_init'), 'an initial migration is committed');

t.test('the committed migrations produce exactly prisma/schema.prisma', async (t) => {
  t.equal(await diffMigrationsToSchema(), undefined, 'no migration missing: run npm run db:new-migration');
});

t.test('createMigration writes the difference as a new timestamped folder', async (t) => {
  const dir = await tempDir(t);
  const migrationsDir = path.join(dir, 'migrations');
  await cp('prisma/migrations', migrationsDir, { recursive: true });
  const schemaPath = path.join(dir, 'schema.prisma');
  const schema = await readFile('prisma/schema.prisma', 'utf8');
  await writeFile(schemaPath, `${schema}\nmodel Probe {\n  id String @id\n  @@map("probe")\n}\n`);
  const folder = await createMigration('Add probe!', { migrationsDir, schemaPath, now: new Date('2031-02-03T04:05:06Z') });
  t.equal(folder, path.join(migrationsDir, '20310203040506_add_probe'));
  const sql = await readFile(path.join(folder!, 'migration.sql'), 'utf8');
  t.match(sql, /CREATE TABLE "probe"/);
  t.notMatch(sql, /"domains"/, 'only the difference');
  t.match(await readFile(path.join(migrationsDir, 'migration_lock.toml'), 'utf8'), /provider = "postgresql"/);
});

t.test('db:migrate on an embedded data folder (DATA_DIR/pglite, as the server), then openDatabase on it', async (t) => {
  const root = await tempDir(t);
  const dataDir = path.join(root, 'pglite');
  const migrate = () => run('npx', ['tsx', 'scripts/db-migrate.ts'], { env: { ...process.env, DATABASE_URL: '', DATA_DIR: root } });
  t.match((await migrate()).stdout, new RegExp(`applied ${migrationNames.at(-1)}`));
  t.match((await migrate()).stdout, /up to date, nothing applied/, 'a second run applies nothing');

  const db = await openDatabase({ dataDir });
  t.teardown(() => db.close());
  const tables = await db.prisma.$queryRawUnsafe<Array<{ name: string }>>(TABLES_SQL);
  t.same(
    tables.map((row) => row.name),
    EXPECTED_TABLES,
  );
  const history = await db.prisma.$queryRaw<Array<{ migration_name: string; finished_at: Date | null }>>`
    SELECT migration_name, finished_at FROM _prisma_migrations ORDER BY migration_name`;
  t.same(
    history.map((row) => row.migration_name),
    migrationNames,
    'the same history as on Postgres',
  );
  t.ok(
    history.every((row) => row.finished_at),
    'all finished',
  );
});

t.test('Postgres 15', async (t) => {
  const server = process.env.DATABASE_URL ? undefined : await startTestPostgres();
  // DATABASE_URL may be set but empty (CI's embedded pass): then the throwaway server is the one to use.
  const serverUrl = process.env.DATABASE_URL || server?.url;
  if (!serverUrl) return t.plan(0, 'no DATABASE_URL and no Postgres binaries');
  if (server) t.teardown(server.stop);
  const freshDatabase = async () => {
    const url = await createEmptyDatabase(serverUrl);
    t.teardown(() => dropDatabase(serverUrl, url));
    return url;
  };

  t.test('the migration SQL applies unchanged', async (t) => {
    const url = await freshDatabase();
    await withClient(url, async (client) => {
      for (const name of migrationNames) {
        await client.query(await readFile(path.join('prisma/migrations', name, 'migration.sql'), 'utf8'));
      }
      const { rows } = await client.query(TABLES_SQL);
      t.same(
        rows.map((row) => row.name),
        EXPECTED_TABLES.filter((name) => name !== '_prisma_migrations'),
      );
    });
  });

  t.test('applies once and records it like the CLI', async (t) => {
    const url = await freshDatabase();
    const started = Date.now();
    t.same(await applyMigrations({ url }), migrationNames);
    t.comment(`postgres: migrated a fresh database in ${Date.now() - started} ms`);
    t.same(await applyMigrations({ url }), [], 'second run is a no-op');
    await withClient(url, async (client) => {
      const columns = await client.query(
        `SELECT column_name AS name FROM information_schema.columns WHERE table_name = '_prisma_migrations' ORDER BY 1`,
      );
      t.same(
        columns.rows.map((row) => row.name),
        CLI_HISTORY_COLUMNS,
      );
      const { rows } = await client.query('SELECT * FROM _prisma_migrations ORDER BY migration_name');
      t.same(
        rows.map((row) => row.migration_name),
        migrationNames,
      );
      const [first] = rows;
      const sql = await readFile(path.join('prisma/migrations', first.migration_name, 'migration.sql'));
      t.equal(first.checksum, createHash('sha256').update(sql).digest('hex'), 'checksum of migration.sql');
      t.ok(first.finished_at, 'finished');
      t.equal(first.rolled_back_at, null);
      t.equal(first.applied_steps_count, 1);
      t.same(
        (await client.query(TABLES_SQL)).rows.map((row) => row.name),
        EXPECTED_TABLES,
      );
    });
  });

  t.test('two concurrent runs apply each migration once', async (t) => {
    const url = await freshDatabase();
    const runs = await Promise.all([applyMigrations({ url }), applyMigrations({ url })]);
    t.same(runs.flat().sort(), migrationNames, 'between them, every migration once');
    await withClient(url, async (client) => {
      const { rows } = await client.query('SELECT count(*)::int AS n FROM _prisma_migrations');
      t.equal(rows[0].n, migrationNames.length);
    });
  });
});

t.test('AUTO_MIGRATE=false on a database without the migrations: the start is refused, naming them', async (t) => {
  const config = testConfig({ DATA_DIR: await tempDir(t), AUTO_MIGRATE: 'false' });
  await t.rejects(
    openRuntime(config),
    new RegExp(`lacks ${migrationNames.length} migration\\(s\\) of this version \\(${migrationNames[0]}, `),
  );
  const migrated = await openRuntime(config, { migrate: true });
  await migrated.close();
  const started = await openRuntime(config);
  await t.resolves(started.database.ping(), 'once they are applied, it starts');
  await started.close();
});
