/**
 * One process per PGlite data folder: a second runtime, a second process or `npm run db:migrate` on a folder in use
 * is refused with the holder's pid (two servers on one folder had both answered 200, and one side's writes were gone
 * after a restart); starters racing for a folder get one holder; a holder killed outright leaves nothing behind, so a
 * restart (even one that gets the same pid, as in a container) starts; closing releases the folder.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { embeddedDataDir, openRuntime } from '../../src/runtime.ts';
import { testConfig } from '../helpers/app.ts';

const run = promisify(execFile);
const config = testConfig({ DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'pca-lock-')) });
const inUse = new RegExp(`in use by process ${process.pid}`);
const migrateEnv = { ...process.env, DATA_DIR: config.dataDir, DATABASE_URL: '' };

/** A process that takes the folder's lock and says so ("held" or the refusal), then holds it until killed. */
function locker(dataDir: string) {
  const script = `import { lockDataDir } from ${JSON.stringify(path.resolve('src/db/data-dir-lock.ts'))};
    lockDataDir(${JSON.stringify(dataDir)}).then(() => { console.log('held'); setInterval(() => {}, 1000); },
      (error) => { console.log(error.message); process.exit(0); });`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const said = new Promise<string>((resolve) => child.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString().trim())));
  return { child, said };
}

t.test('a second opener is refused while the first holds the folder; after close, it opens', async (t) => {
  const first = await openRuntime(config);
  await t.rejects(openRuntime(config), inUse, 'a second runtime in this process');
  const migrate = await run(process.execPath, ['--import', 'tsx', 'scripts/db-migrate.ts'], { env: migrateEnv }).catch(
    (error: { code: number; stderr: string }) => error,
  );
  t.match(migrate, { code: 1, stderr: inUse }, 'npm run db:migrate on the same DATA_DIR');
  await t.resolves(first.database.ping(), 'the first still works');
  await first.close();
  const again = await openRuntime(config);
  await again.close();
});

t.test('starters racing for a folder: exactly one holds it, the others name it', async (t) => {
  const dataDir = path.join(mkdtempSync(path.join(os.tmpdir(), 'pca-lock-race-')), 'pglite');
  mkdirSync(dataDir);
  const lockers = Array.from({ length: 4 }, () => locker(dataDir));
  t.teardown(() => {
    for (const { child } of lockers) child.kill('SIGKILL');
  });
  const said = await Promise.all(lockers.map(({ said }) => said));
  t.equal(said.filter((line) => line === 'held').length, 1, said.join(' | '));
  const holder = lockers[said.indexOf('held')]!.child.pid;
  t.equal(said.filter((line) => line.includes(`in use by process ${holder}`)).length, 3, 'the others name the holder');
});

t.test('a holder killed outright leaves the folder free at once', async (t) => {
  const dataDir = embeddedDataDir(config);
  const holder = locker(dataDir);
  t.equal(await holder.said, 'held');
  await t.rejects(openRuntime(config), new RegExp(`in use by process ${holder.child.pid}`));
  const exited = new Promise((resolve) => holder.child.once('exit', resolve));
  holder.child.kill('SIGKILL');
  await exited;
  const runtime = await openRuntime(config);
  await t.resolves(runtime.database.ping(), 'opened');
  await runtime.close();
});

t.test('db:migrate applies to DATA_DIR/pglite, the folder the server opens', async (t) => {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'scripts/db-migrate.ts'], { env: migrateEnv });
  t.match(stdout, new RegExp(`PGlite at ${embeddedDataDir(config).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: up to date`));
});
