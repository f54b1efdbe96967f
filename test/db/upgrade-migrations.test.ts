// Data migrations that carry an older database's meaning forward: run against a database migrated to an
// earlier release, holding that release's rows, then upgraded with the committed folder.
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import t from 'tap';
import { ACTIONS } from '../../src/auth/actions.ts';
import { applyMigrations, readMigrationList } from '../../src/db/migrate.ts';

const ACME_RELEASE = '20261202112600_acme';
const migrationNames = (await readMigrationList('prisma/migrations')).migrationDirectories.map((dir) => dir.path);

/** A migrations folder holding the committed migrations before `firstLeftOut`. */
async function folderBefore(t: { teardown(fn: () => unknown): void }, firstLeftOut: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pca-upgrade-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await cp('prisma/migrations/migration_lock.toml', path.join(dir, 'migration_lock.toml'));
  for (const name of migrationNames.filter((name) => name < firstLeftOut)) {
    await cp(path.join('prisma/migrations', name), path.join(dir, name), { recursive: true });
  }
  return dir;
}

async function insertKey(db: PGlite, access: string, actions: readonly string[], createdAt: string): Promise<void> {
  await db.query(
    `INSERT INTO access_keys (access, domain_id, sealed_secret, actions, created_at) VALUES ($1, 'tenant-a', 'sealed', $2, ${createdAt})`,
    [access, actions],
  );
}

async function actionsOf(db: PGlite, access: string): Promise<string[]> {
  const { rows } = await db.query<{ actions: string[] }>('SELECT actions FROM access_keys WHERE access = $1', [access]);
  return rows[0].actions;
}

t.test('administrator keys made before the ACME release keep every action after the upgrade', async (t) => {
  t.ok(migrationNames.includes(ACME_RELEASE), 'the ACME release migration is committed');
  const preAcmeCatalogue = ACTIONS.filter((action) => action !== 'pca:acme:eab');
  const db = await PGlite.create();
  t.teardown(() => db.close());

  await applyMigrations({ pglite: db }, await folderBefore(t, ACME_RELEASE));
  await insertKey(db, 'ADMINBEFORE', preAcmeCatalogue, "now() - interval '1 day'");
  await insertKey(db, 'READERBEFORE', ['pca:ca:get', 'pca:ca:list'], "now() - interval '1 day'");

  // An installation that ran the ACME release, where a key was then made with everything but the new action.
  const firstAfterAcme = migrationNames[migrationNames.indexOf(ACME_RELEASE) + 1];
  await applyMigrations({ pglite: db }, await folderBefore(t, firstAfterAcme));
  await insertKey(db, 'CHOSEAFTER', preAcmeCatalogue, "now() + interval '1 second'");

  await applyMigrations({ pglite: db }, 'prisma/migrations');

  t.same((await actionsOf(db, 'ADMINBEFORE')).sort(), [...ACTIONS].sort(), 'a pre-ACME administrator holds the whole catalogue again');
  t.same(await actionsOf(db, 'READERBEFORE'), ['pca:ca:get', 'pca:ca:list'], 'a restricted key gains nothing');
  t.same(await actionsOf(db, 'CHOSEAFTER'), preAcmeCatalogue, 'a key made after the ACME release keeps the actions it was given');
});

t.test('an upgrade from before ACME to now in one run also restores administrators', async (t) => {
  const db = await PGlite.create();
  t.teardown(() => db.close());
  await applyMigrations({ pglite: db }, await folderBefore(t, ACME_RELEASE));
  await insertKey(
    db,
    'ADMINBEFORE',
    ACTIONS.filter((action) => action !== 'pca:acme:eab'),
    'now()',
  );
  await applyMigrations({ pglite: db }, 'prisma/migrations');
  t.same((await actionsOf(db, 'ADMINBEFORE')).sort(), [...ACTIONS].sort());
});

t.test('applied by hand, without a migration history, the SQL changes no key', async (t) => {
  const db = await PGlite.create();
  t.teardown(() => db.close());
  const sqlOf = (name: string) => readFile(path.join('prisma/migrations', name, 'migration.sql'), 'utf8');
  for (const name of migrationNames.filter((name) => name < ACME_RELEASE)) await db.exec(await sqlOf(name));
  const preAcmeCatalogue = ACTIONS.filter((action) => action !== 'pca:acme:eab');
  await insertKey(db, 'ADMINBEFORE', preAcmeCatalogue, "now() - interval '1 day'");
  for (const name of migrationNames.filter((name) => name >= ACME_RELEASE)) await db.exec(await sqlOf(name));
  t.same(await actionsOf(db, 'ADMINBEFORE'), preAcmeCatalogue);
});
