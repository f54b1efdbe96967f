/**
 * A development data folder's secrets file: written whole or not at all (a temp file renamed into place, mode 0600),
 * and one that does not parse (a crash mid-write by an older version) is a ConfigError naming the file and the way
 * out, not a raw SyntaxError at every start.
 */
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { existingDevSecrets, loadOrCreateDevSecrets } from '../../src/config/dev-secrets.ts';
import { ConfigError } from '../../src/config/env.ts';

async function dataDir(t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pca-dev-secrets-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test('made once, mode 0600, no temp file left; read back the same', async (t) => {
  const dir = await dataDir(t);
  const made = loadOrCreateDevSecrets(dir);
  t.same(await readdir(dir), ['dev-secrets.json']);
  t.equal((await stat(path.join(dir, 'dev-secrets.json'))).mode & 0o777, 0o600);
  t.same(loadOrCreateDevSecrets(dir), made);
});

t.test('a truncated or incomplete file is a ConfigError naming it and what to do', async (t) => {
  const dir = await dataDir(t);
  const file = path.join(dir, 'dev-secrets.json');
  for (const content of ['{\n  "masterKey": "AAAA', '', '{"masterKey": "AAAA"}', 'null']) {
    await writeFile(file, content);
    for (const read of [existingDevSecrets, loadOrCreateDevSecrets]) {
      const error = (() => {
        try {
          read(dir);
        } catch (e) {
          return e;
        }
      })();
      t.ok(error instanceof ConfigError, `${read.name} of ${JSON.stringify(content)}: a ConfigError`);
      t.match((error as Error).message, `${file} holds no usable development secrets`);
      t.match((error as Error).message, /restore it from a backup, or delete it to generate new ones/);
    }
  }
  t.same(await readdir(dir), ['dev-secrets.json'], 'left for the operator to restore or delete');
});
