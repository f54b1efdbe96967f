/**
 * Fresh, migrated, empty databases for tests: on the server named by DATABASE_URL when set (CI's real
 * Postgres), else an in-memory PGlite started from a cached migrated template.
 */
import { execFile, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chown, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { openDatabase, type DatabaseHandle } from '../../src/db/database.ts';
import { applyMigrations, readMigrationList } from '../../src/db/migrate.ts';

const run = promisify(execFile);
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MIGRATIONS_DIR = path.join(REPO_ROOT, 'prisma/migrations');

export type TestDatabase = DatabaseHandle & { url?: string };

export async function testDatabase(): Promise<TestDatabase> {
  const serverUrl = process.env.DATABASE_URL;
  return serverUrl ? postgresTestDatabase(serverUrl) : pgliteTestDatabase();
}

/**
 * Tests and benchmarks seed through this database's handle: a million revocations took 74 s, 190 s on a loaded
 * machine (bench/crl), past the service's query bound. A test file may run this long (.taprc); a test that checks
 * the bound opens a database of its own.
 */
const SEEDING_QUERY_WAIT_MS = 600_000;

/** A fresh database on any other reachable server, e.g. one from startTestPostgres(). */
export async function postgresTestDatabase(serverUrl: string): Promise<TestDatabase> {
  const template = await postgresTemplate(serverUrl);
  const name = `test_${randomBytes(8).toString('hex')}`;
  await onAdminConnection(serverUrl, (client) => client.query(`CREATE DATABASE "${name}" TEMPLATE "${template}"`));
  const url = withDatabase(serverUrl, name);
  const database = await openDatabase({ url, queryWaitMs: SEEDING_QUERY_WAIT_MS });
  return {
    ...database,
    url,
    async close() {
      await database.close();
      await dropDatabase(serverUrl, url);
    },
  };
}

/**
 * A migrated database on the server, named after the migrations it holds, that test databases are copied from:
 * a copy takes milliseconds where applying the migrations through the WASM schema engine takes a second and holds
 * the server's migration lock. Parallel test processes may build it at once: each migrates its own database and
 * renames it into place; the loser drops its copy. It stays on the server (CI's is throwaway).
 */
const postgresTemplates = new Map<string, Promise<string>>();

function postgresTemplate(serverUrl: string): Promise<string> {
  let template = postgresTemplates.get(serverUrl);
  if (!template) {
    template = buildPostgresTemplate(serverUrl);
    postgresTemplates.set(serverUrl, template);
    template.catch(() => postgresTemplates.delete(serverUrl));
  }
  return template;
}

async function buildPostgresTemplate(serverUrl: string): Promise<string> {
  const name = `pca_template_${await migrationsHash()}`;
  const exists = await onAdminConnection(serverUrl, (client) => client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]));
  if (exists.rowCount) return name;
  const url = await createEmptyDatabase(serverUrl);
  await applyMigrations({ url }, MIGRATIONS_DIR);
  try {
    await onAdminConnection(serverUrl, (client) => client.query(`ALTER DATABASE "${new URL(url).pathname.slice(1)}" RENAME TO "${name}"`));
  } catch (error) {
    if ((error as { code?: string }).code !== '42P04') throw error; // duplicate_database: another process won
    await dropDatabase(serverUrl, url);
  }
  return name;
}

/** A new, empty (unmigrated) database on the server; returns its URL. */
export async function createEmptyDatabase(serverUrl: string): Promise<string> {
  const name = `test_${randomBytes(8).toString('hex')}`;
  await onAdminConnection(serverUrl, (client) => client.query(`CREATE DATABASE "${name}"`));
  return withDatabase(serverUrl, name);
}

export async function dropDatabase(serverUrl: string, url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  await onAdminConnection(serverUrl, (client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
}

/** The same server, another database name. */
function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

async function onAdminConnection<T>(serverUrl: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

/** Names the migration set: a template of either kind is rebuilt when a migration changes. */
async function migrationsHash(extra = ''): Promise<string> {
  const migrations = await readMigrationList(MIGRATIONS_DIR);
  const hash = createHash('sha256');
  hash.update(extra);
  for (const { path: name, migrationFile } of migrations.migrationDirectories) {
    hash.update(`${name}\n${migrationFile.content.value}\n`);
  }
  return hash.digest('hex').slice(0, 16);
}

/** The template depends on the migrations and on the PGlite build that wrote it. */
async function templateCachePath(): Promise<string> {
  const pgliteVersion = JSON.parse(await readFile(path.join(REPO_ROOT, 'node_modules/@electric-sql/pglite/package.json'), 'utf8')).version;
  const hash = await migrationsHash(`pglite ${pgliteVersion}\n`);
  return path.join(REPO_ROOT, 'node_modules/.cache/pca-test', `pglite-template-${hash}.tar.gz`);
}

async function buildTemplate(cachePath: string): Promise<Blob> {
  const pglite = await PGlite.create();
  try {
    await applyMigrations({ pglite }, MIGRATIONS_DIR);
    const dump = await pglite.dumpDataDir('gzip');
    await mkdir(path.dirname(cachePath), { recursive: true });
    // Parallel test processes may build it at once: each writes its own file and renames it into place.
    const partial = `${cachePath}.${process.pid}.partial`;
    await writeFile(partial, new Uint8Array(await dump.arrayBuffer()));
    await rename(partial, cachePath);
    return dump;
  } finally {
    await pglite.close();
  }
}

let template: Promise<Blob> | undefined;

function pgliteTemplate(): Promise<Blob> {
  template ??= (async () => {
    const cachePath = await templateCachePath();
    if (existsSync(cachePath)) return new Blob([await readFile(cachePath)]);
    return buildTemplate(cachePath);
  })();
  return template;
}

/**
 * Closed PGlite databases of this process, emptied, waiting for the next caller: starting a PGlite (even from
 * the template) costs 1-2 s, emptying one a few milliseconds. An idle PGlite keeps re-arming internal timers,
 * which would hold a finished test process open, so one left unclaimed for a moment is really closed.
 */
const idlePglites = new Map<PGlite, NodeJS.Timeout>();
const IDLE_PGLITE_GRACE_MS = 500;

function takeIdlePglite(): PGlite | undefined {
  const [entry] = idlePglites;
  if (!entry) return undefined;
  const [pglite, closeTimer] = entry;
  clearTimeout(closeTimer);
  idlePglites.delete(pglite);
  return pglite;
}

function releasePglite(pglite: PGlite): void {
  const closeTimer = setTimeout(() => {
    idlePglites.delete(pglite);
    void pglite.close();
  }, IDLE_PGLITE_GRACE_MS);
  idlePglites.set(pglite, closeTimer);
}

/** Back to the state the template had: no open transaction, no session state, no rows. */
async function emptyPglite(pglite: PGlite): Promise<void> {
  if (pglite.isInTransaction()) await pglite.query('ROLLBACK');
  await pglite.query('DISCARD ALL');
  const { rows } = await pglite.query<{ name: string }>(
    `SELECT quote_ident(tablename) AS name FROM pg_tables WHERE schemaname = 'public' AND tablename <> '_prisma_migrations'`,
  );
  if (rows.length > 0) await pglite.query(`TRUNCATE ${rows.map((row) => row.name).join(', ')}`);
}

export async function pgliteTestDatabase(): Promise<TestDatabase> {
  const pglite = takeIdlePglite() ?? (await PGlite.create({ loadDataDir: await pgliteTemplate() }));
  const database = await openDatabase({ pglite });
  return {
    ...database,
    async close() {
      await database.close();
      await emptyPglite(pglite);
      releasePglite(pglite);
    },
  };
}

const POSTGRES_BIN = process.env.POSTGRES_BIN ?? '/usr/lib/postgresql/15/bin';

/** A TCP port on loopback that nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** initdb refuses to run as root: run the server tools as `postgres` then. */
function asServerUser(command: string, args: string[]): [string, string[]] {
  const isRoot = process.getuid?.() === 0;
  return isRoot ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args];
}

export interface TestPostgres {
  url: string;
  stop(): Promise<void>;
}

/**
 * A throwaway Postgres 15 cluster in a temp folder on a free loopback port (trust auth, user postgres);
 * undefined when the server binaries are missing. stop() removes it; so does process exit.
 */
export async function startTestPostgres(): Promise<TestPostgres | undefined> {
  const pgCtl = path.join(POSTGRES_BIN, 'pg_ctl');
  if (!existsSync(pgCtl) || !existsSync(path.join(POSTGRES_BIN, 'initdb'))) return undefined;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pca-pg-'));
  if (process.getuid?.() === 0) {
    const idOf = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
    await chown(dir, idOf('-u'), idOf('-g'));
  }
  const dataDir = path.join(dir, 'data');
  await run(
    ...asServerUser(path.join(POSTGRES_BIN, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8']),
  );
  const port = await freePort();
  const serverOptions = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off`;
  await run(...asServerUser(pgCtl, ['-D', dataDir, '-o', serverOptions, '-l', path.join(dir, 'server.log'), '-w', 'start']));

  let stopped = false;
  const stopNow = () => {
    if (stopped) return;
    stopped = true;
    execFileSync(...asServerUser(pgCtl, ['-D', dataDir, '-m', 'immediate', '-w', 'stop']), { stdio: 'ignore' });
  };
  // A test that dies before stop() must not leave a server behind.
  process.once('exit', stopNow);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async stop() {
      process.removeListener('exit', stopNow);
      stopNow();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A real Postgres server for tests that need one whatever the suite runs on (several processes sharing a
 * database, pg_dump): the DATABASE_URL server when set, else a throwaway cluster started for this file.
 */
export async function realPostgres(): Promise<TestPostgres> {
  const server = await realPostgresIfAny();
  if (!server) throw new Error(MISSING_POSTGRES);
  return server;
}

const MISSING_POSTGRES = `no DATABASE_URL and no Postgres server binaries in ${POSTGRES_BIN} (apt-get install postgresql)`;

async function realPostgresIfAny(): Promise<TestPostgres | undefined> {
  if (process.env.DATABASE_URL) return { url: process.env.DATABASE_URL, stop: async () => undefined };
  return startTestPostgres();
}

/**
 * realPostgres for a test that cannot run without one: where there is none, undefined, the test's plan ended at 0
 * with the reason (tap reports it skipped and prints why). `t` is passed in so that this module, which the benchmarks
 * import too, does not start a tap run itself.
 */
export async function realPostgresOrSkipTest(t: { plan(count: number, reason: string): void }): Promise<TestPostgres | undefined> {
  const server = await realPostgresIfAny();
  if (!server) t.plan(0, `needs a real Postgres server: ${MISSING_POSTGRES}`);
  return server;
}

/**
 * A new, empty database on a real Postgres server for this test, dropped (and the server stopped) when it ends;
 * undefined, the test planned to skip with the reason, where there is none.
 */
export async function emptyRealDatabaseOrSkipTest(t: {
  plan(count: number, reason: string): void;
  teardown(fn: () => unknown): void;
}): Promise<string | undefined> {
  const server = await realPostgresOrSkipTest(t);
  if (!server) return undefined;
  t.teardown(() => server.stop());
  const url = await createEmptyDatabase(server.url);
  t.teardown(() => dropDatabase(server.url, url));
  return url;
}

/** The same for a whole file (`t` its root): where there is none, the file is skipped and the process exits. */
export async function realPostgresOrSkipFile(t: { plan(count: number, reason: string): void }): Promise<TestPostgres> {
  return (await realPostgresOrSkipTest(t)) ?? process.exit(0);
}

/** `db` whose `$transaction` calls are counted: how a batched job shows the transactions it made. */
export function countingTransactions<T extends { $transaction: unknown }>(db: T): T & { transactions(): number } {
  let count = 0;
  return new Proxy(db, {
    get: (target, property, receiver) => {
      if (property === 'transactions') return () => count;
      if (property !== '$transaction') return Reflect.get(target, property, receiver);
      return (...args: unknown[]) => {
        count++;
        return (target.$transaction as (...given: unknown[]) => unknown)(...args);
      };
    },
  }) as T & { transactions(): number };
}
