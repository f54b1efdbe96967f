// Data migrations that carry an older database's meaning forward: run against a database migrated to an
// earlier release, holding that release's rows, then upgraded with the committed folder. On PGlite, and on Postgres
// in time zones either side of UTC (the migration history's times are written without an offset).
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import t from 'tap';
import { ACTIONS } from '../../src/auth/actions.ts';
import { applyMigrations, readMigrationList } from '../../src/db/migrate.ts';
import { createEmptyDatabase, dropDatabase, realPostgres } from '../helpers/database.ts';

const ACME_RELEASE = '20261202112600_acme';
const migrationNames = (await readMigrationList('prisma/migrations')).migrationDirectories.map((dir) => dir.path);
const preAcmeCatalogue = ACTIONS.filter((action) => action !== 'pca:acme:eab');
type Teardown = { teardown(fn: () => unknown): void };

/** A migrations folder holding the committed migrations before `firstLeftOut`. */
async function folderBefore(t: Teardown, firstLeftOut: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pca-upgrade-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await cp('prisma/migrations/migration_lock.toml', path.join(dir, 'migration_lock.toml'));
  for (const name of migrationNames.filter((name) => name < firstLeftOut)) {
    await cp(path.join('prisma/migrations', name), path.join(dir, name), { recursive: true });
  }
  return dir;
}

/** A database to upgrade: migrated by the service's own runner, read and written with plain SQL. */
interface Target {
  migrate(folder: string): Promise<unknown>;
  query<T>(sql: string, params?: unknown[]): Promise<T[]>;
}

async function pgliteTarget(t: Teardown): Promise<Target> {
  const db = await PGlite.create();
  t.teardown(() => db.close());
  return {
    migrate: (folder) => applyMigrations({ pglite: db }, folder),
    query: async <T>(sql: string, params?: unknown[]) => (await db.query<T>(sql, params)).rows,
  };
}

async function postgresTarget(t: Teardown, timeZone: string): Promise<Target> {
  const server = await realPostgres();
  t.teardown(server.stop);
  const url = await createEmptyDatabase(server.url);
  t.teardown(() => dropDatabase(server.url, url));
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`ALTER DATABASE "${new URL(url).pathname.slice(1)}" SET timezone TO '${timeZone}'`);
  await client.end();
  // A session opened after the change, as the migration runner's are.
  const session = new pg.Client({ connectionString: url });
  await session.connect();
  t.teardown(() => session.end());
  return {
    migrate: (folder) => applyMigrations({ url }, folder),
    query: async <T>(sql: string, params?: unknown[]) => (await session.query(sql, params)).rows as T[],
  };
}

async function insertKey(db: Target, access: string, actions: readonly string[], createdAt: string): Promise<void> {
  await db.query(
    `INSERT INTO access_keys (access, domain_id, sealed_secret, actions, created_at) VALUES ($1, 'tenant-a', 'sealed', $2, ${createdAt})`,
    [access, actions],
  );
}

async function actionsOf(db: Target, access: string): Promise<string[]> {
  return (await db.query<{ actions: string[] }>('SELECT actions FROM access_keys WHERE access = $1', [access]))[0]!.actions;
}

const targets: [name: string, open: (t: Teardown) => Promise<Target>][] = [
  ['PGlite', pgliteTarget],
  ['Postgres in Asia/Shanghai (UTC+8)', (t) => postgresTarget(t, 'Asia/Shanghai')],
  ['Postgres in America/New_York (UTC-5/-4)', (t) => postgresTarget(t, 'America/New_York')],
];

t.ok(migrationNames.includes(ACME_RELEASE), 'the ACME release migration is committed');

for (const [name, open] of targets) {
  t.test(`${name}: administrator keys made before the ACME release keep every action after the upgrade`, async (t) => {
    const db = await open(t);
    await db.migrate(await folderBefore(t, ACME_RELEASE));
    // An hour before the release: inside any time zone's offset, which a misread history time would move across.
    await insertKey(db, 'ADMINBEFORE', preAcmeCatalogue, "now() - interval '1 hour'");
    await insertKey(db, 'READERBEFORE', ['pca:ca:get', 'pca:ca:list'], "now() - interval '1 hour'");

    // An installation that ran the ACME release, where a key was then made with everything but the new action.
    const firstAfterAcme = migrationNames[migrationNames.indexOf(ACME_RELEASE) + 1]!;
    await db.migrate(await folderBefore(t, firstAfterAcme));
    await insertKey(db, 'CHOSEAFTER', preAcmeCatalogue, "now() + interval '1 hour'");

    await db.migrate('prisma/migrations');

    t.same((await actionsOf(db, 'ADMINBEFORE')).sort(), [...ACTIONS].sort(), 'a pre-ACME administrator holds the whole catalogue again');
    t.same(await actionsOf(db, 'READERBEFORE'), ['pca:ca:get', 'pca:ca:list'], 'a restricted key gains nothing');
    t.same(await actionsOf(db, 'CHOSEAFTER'), preAcmeCatalogue, 'a key made after the ACME release keeps the actions it was given');
  });
}

t.test('an upgrade from before ACME to now in one run also restores administrators', async (t) => {
  const db = await pgliteTarget(t);
  await db.migrate(await folderBefore(t, ACME_RELEASE));
  await insertKey(db, 'ADMINBEFORE', preAcmeCatalogue, 'now()');
  await db.migrate('prisma/migrations');
  t.same((await actionsOf(db, 'ADMINBEFORE')).sort(), [...ACTIONS].sort());
});

t.test('applied by hand, without a migration history, the SQL changes no key', async (t) => {
  const db = await PGlite.create();
  t.teardown(() => db.close());
  const sqlOf = (name: string) => readFile(path.join('prisma/migrations', name, 'migration.sql'), 'utf8');
  for (const name of migrationNames.filter((name) => name < ACME_RELEASE)) await db.exec(await sqlOf(name));
  await db.query(
    `INSERT INTO access_keys (access, domain_id, sealed_secret, actions, created_at) VALUES ('ADMINBEFORE', 'tenant-a', 'sealed', $1, now() - interval '1 day')`,
    [preAcmeCatalogue],
  );
  for (const name of migrationNames.filter((name) => name >= ACME_RELEASE)) await db.exec(await sqlOf(name));
  const { rows } = await db.query<{ actions: string[] }>("SELECT actions FROM access_keys WHERE access = 'ADMINBEFORE'");
  t.same(rows[0]!.actions, preAcmeCatalogue);
});

t.test("the finalize key of an order left processing moves to ACME finalize's own scope; other keys stay", async (t) => {
  const scoped = '20261206140000_acme_finalize_idempotency_scope';
  const db = await pgliteTarget(t);
  await db.migrate(await folderBefore(t, scoped));
  const REST = 'POST /v1/private-certificates/csr';
  const ACME = 'ACME finalize';
  const orders = {
    processing: '3f1c2a56-7d4b-4c1e-9a2f-0b6d8e4c1a77',
    ready: '7a9e0c13-2b5d-4f6e-8c1a-3d4b5e6f7a81',
    alreadyMoved: 'c2d4e6f8-1a3b-4c5d-8e7f-9a0b1c2d3e4f',
  };
  for (const [status, id] of [
    ['processing', orders.processing],
    ['ready', orders.ready],
    ['processing', orders.alreadyMoved],
  ]) {
    await db.query(
      `INSERT INTO acme_orders (id, account_id, domain_id, ca_id, status, identifiers, expires_at, created_at)
       VALUES ($1, gen_random_uuid(), 'tenant-a', gen_random_uuid(), $2, '[]', now() + interval '1 day', now())`,
      [id, status],
    );
  }
  const insert = (endpoint: string, key: string, certificate: number) =>
    db.query(
      `INSERT INTO idempotency_keys (domain_id, endpoint, key, request_hash, certificate_id, created_at)
       VALUES ('tenant-a', $1, $2, 'hash', $3, now())`,
      [endpoint, key, `00000000-0000-4000-8000-00000000000${certificate}`],
    );
  await insert(REST, `acme-order:${orders.processing}`, 1);
  await insert(REST, `acme-order:${orders.ready}`, 2);
  await insert(REST, 'a-rest-callers-key', 3);
  await insert(REST, `acme-order:${orders.alreadyMoved}`, 4);
  await insert(ACME, orders.alreadyMoved, 5);
  await db.migrate('prisma/migrations');
  const rows = await db.query<{ endpoint: string; key: string; certificate_id: string }>(
    'SELECT endpoint, key, right(certificate_id::text, 1) AS certificate_id FROM idempotency_keys ORDER BY certificate_id',
  );
  t.same(rows, [
    { endpoint: ACME, key: orders.processing, certificate_id: '1' },
    { endpoint: REST, key: `acme-order:${orders.ready}`, certificate_id: '2' },
    { endpoint: REST, key: 'a-rest-callers-key', certificate_id: '3' },
    { endpoint: REST, key: `acme-order:${orders.alreadyMoved}`, certificate_id: '4' },
    { endpoint: ACME, key: orders.alreadyMoved, certificate_id: '5' },
  ]);
});

for (const [name, open] of [targets[0]!, targets[1]!]) {
  t.test(`${name}: CAs left ACTIVED below a deleted, removed or revoked CA are disabled by the upgrade`, async (t) => {
    const release = '20261207094500_disable_cas_below_unusable';
    const db = await open(t);
    await db.migrate(await folderBefore(t, release));
    const ids: Record<string, string> = {};
    /** A CA row as an earlier release left it; `serial` as stored (a legacy row may hold it in upper case). */
    const ca = async (
      label: string,
      status: string,
      issuer?: string,
      extra: { serial?: string; genMode?: string; removed?: boolean } = {},
    ) => {
      const [{ id }] = await db.query<{ id: string }>(
        `INSERT INTO certificate_authorities (id, domain_id, type, status, key_usages, updated_at, issuer_id, serial_number, gen_mode, removed_at)
         VALUES (gen_random_uuid(), 'tenant-a', $1, $2, '{}', now(), $3, $4, $5, $6) RETURNING id::text AS id`,
        [
          issuer ? 'SUBORDINATE' : 'ROOT',
          status,
          issuer ?? null,
          extra.serial ?? label,
          extra.genMode ?? 'GENERATE',
          extra.removed ? new Date() : null,
        ],
      );
      ids[label] = id;
      return id;
    };
    // Revoked B (its revocation keyed by the canonical serial; B's row holds it in upper case with a leading zero octet).
    const root = await ca('root', 'ACTIVED');
    const b = await ca('b', 'DISABLED', root, { serial: '00AB01' });
    await db.query(
      `INSERT INTO revocations (issuer_id, serial_number, revoked_at, reason_code, not_after) VALUES ($1, 'ab01', now(), 1, now() + interval '1 year')`,
      [root],
    );
    const c = await ca('c', 'DISABLED', b);
    await ca('d', 'ACTIVED', c);
    await ca('csr-issued', 'ACTIVED', c, { genMode: 'CSR' });
    // A deleted root's grandchild, a removed root's, and a live chain.
    const deleted = await ca('deleted', 'DELETED');
    await ca('e', 'ACTIVED', await ca('deleted-child', 'DISABLED', deleted));
    const removed = await ca('removed', 'DELETED', undefined, { removed: true });
    await ca('f', 'ACTIVED', await ca('removed-child', 'DISABLED', removed));
    const live = await ca('live', 'ACTIVED');
    await ca('g', 'ACTIVED', await ca('live-child', 'ACTIVED', live));

    await db.migrate('prisma/migrations');
    const statusOf = async (label: string) =>
      (await db.query<{ status: string }>('SELECT status FROM certificate_authorities WHERE id = $1::uuid', [ids[label]]))[0]!.status;
    t.equal(await statusOf('d'), 'DISABLED', 'below a revoked CA (matched by canonical serial)');
    t.equal(await statusOf('e'), 'DISABLED', 'below a deleted CA');
    t.equal(await statusOf('f'), 'DISABLED', 'below a removed CA');
    t.equal(await statusOf('csr-issued'), 'ACTIVED', 'a CSR-issued intermediate is a certificate, left as it is');
    for (const label of ['root', 'live', 'live-child', 'g'])
      t.equal(await statusOf(label), 'ACTIVED', `${label}: a live chain is untouched`);
  });
}

t.test('challenges and orders left processing before their claim time existed count as claimed at the upgrade', async (t) => {
  const release = '20261207224500_acme_challenge_processing_since';
  const db = await pgliteTarget(t);
  await db.migrate(await folderBefore(t, release));
  const order = (status: string, processingSince: string | null) =>
    db.query<{ id: string }>(
      `INSERT INTO acme_orders (id, account_id, domain_id, ca_id, status, identifiers, expires_at, created_at, processing_since)
       VALUES (gen_random_uuid(), gen_random_uuid(), 'tenant-a', gen_random_uuid(), $1, '[]', now() + interval '1 day', now(), $2::timestamptz)
       RETURNING id::text AS id`,
      [status, processingSince],
    );
  const challenge = (status: string) =>
    db.query<{ id: string }>(
      `INSERT INTO acme_challenges (id, authorization_id, type, token, status)
       VALUES (gen_random_uuid(), gen_random_uuid(), 'http-01', 'token', $1) RETURNING id::text AS id`,
      [status],
    );
  const [unclaimedOrder] = await order('processing', null);
  const [claimedOrder] = await order('processing', '2026-12-01T00:00:00Z');
  const [readyOrder] = await order('ready', null);
  const [processingChallenge] = await challenge('processing');
  const [pendingChallenge] = await challenge('pending');
  const [before] = await db.query<{ now: Date }>('SELECT now() AS now');

  await db.migrate('prisma/migrations');
  const since = async (table: string, id: string) =>
    (await db.query<{ since: Date | null }>(`SELECT processing_since AS since FROM ${table} WHERE id = $1::uuid`, [id]))[0]!.since;
  const claimedAtUpgrade = (value: Date | null) => value !== null && value.getTime() >= before!.now.getTime();
  t.ok(claimedAtUpgrade(await since('acme_challenges', processingChallenge!.id)), 'a processing challenge is claimed at the upgrade');
  t.equal(await since('acme_challenges', pendingChallenge!.id), null, 'a pending challenge is not');
  t.ok(
    claimedAtUpgrade(await since('acme_orders', unclaimedOrder!.id)),
    'a processing order without a claim time is claimed at the upgrade',
  );
  t.same(await since('acme_orders', claimedOrder!.id), new Date('2026-12-01T00:00:00Z'), 'a claim time already recorded is kept');
  t.equal(await since('acme_orders', readyOrder!.id), null, 'a ready order is not claimed');
});
