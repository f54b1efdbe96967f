/**
 * One process per PGlite data folder: a second runtime, a second server process or `npm run db:migrate` on a folder
 * in use is refused with the holder's pid (two servers on one folder had both answered 200, and one side's writes
 * were gone after a restart); a lock left by a process that is gone is taken over; closing releases it.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { lockFileOf } from '../../src/db/data-dir-lock.ts';
import { embeddedDataDir, openRuntime } from '../../src/runtime.ts';
import { testConfig } from '../helpers/app.ts';

const run = promisify(execFile);
const config = testConfig({ DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'pca-lock-')) });
const lockFile = lockFileOf(embeddedDataDir(config));
const inUse = new RegExp(`in use by process ${process.pid}`);

t.test('a second opener is refused while the first holds the folder; after close, it opens', async (t) => {
  const first = await openRuntime(config);
  t.equal(existsSync(lockFile), true, 'the lock file is there');
  await t.rejects(openRuntime(config), inUse, 'a second runtime in this process');

  const migrate = await run(process.execPath, ['--import', 'tsx', 'scripts/db-migrate.ts'], {
    env: { ...process.env, DATA_DIR: config.dataDir, DATABASE_URL: '' },
  }).catch((error: { code: number; stderr: string }) => error);
  t.match(migrate, { code: 1, stderr: inUse }, 'npm run db:migrate on the same DATA_DIR');

  await t.resolves(first.database.ping(), 'the first still works');
  await first.close();
  t.equal(existsSync(lockFile), false, 'closing releases it');
  const again = await openRuntime(config);
  await again.close();
});

t.test('a lock left by a process that is gone is taken over', async (t) => {
  const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
  writeFileSync(lockFile, gone);
  const runtime = await openRuntime(config);
  t.teardown(() => runtime.close());
  t.equal((await runtime.database.prisma.certificateAuthority.count()) >= 0, true, `opened over pid ${gone}'s lock`);
  const { stdout } = await run(process.execPath, [
    '-e',
    `process.stdout.write(require('fs').readFileSync(${JSON.stringify(lockFile)}, 'utf8'))`,
  ]);
  t.equal(stdout, String(process.pid), 'and the lock names this process');
});

t.test('db:migrate applies to DATA_DIR/pglite, the folder the server opens', async (t) => {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'scripts/db-migrate.ts'], {
    env: { ...process.env, DATA_DIR: config.dataDir, DATABASE_URL: '' },
  });
  t.match(stdout, new RegExp(`PGlite at ${embeddedDataDir(config).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: up to date`));
});
