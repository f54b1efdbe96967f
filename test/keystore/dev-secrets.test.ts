/**
 * A development data folder's secrets file: written whole or not at all (a temp file linked into place, mode 0600),
 * once (processes starting together all take the first one's), and one that does not parse (a crash mid-write by an
 * older version) is a ConfigError naming the file and the way out, not a raw SyntaxError at every start.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import t, { type Test } from 'tap';
import { type DevSecrets, existingDevSecrets, loadOrCreateDevSecrets, placeExclusively } from '../../src/config/dev-secrets.ts';
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

/**
 * A process that loads the module, says "ready", spins until `go` exists (so that all start within a moment of each
 * other), makes or reads the secrets of `dir` and prints them.
 */
function creatingProcess(dir: string, go: string): { ready: Promise<void>; secrets: Promise<DevSecrets> } {
  const module = pathToFileURL(path.join(import.meta.dirname, '../../src/config/dev-secrets.ts')).href;
  const script = `
    import { existsSync } from 'node:fs';
    const { loadOrCreateDevSecrets } = await import(${JSON.stringify(module)});
    process.stdout.write('ready\\n');
    while (!existsSync(${JSON.stringify(go)}));
    process.stdout.write(JSON.stringify(loadOrCreateDevSecrets(${JSON.stringify(dir)})));`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout.setEncoding('utf8');
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: string) => {
      output += chunk;
      if (output.startsWith('ready\n')) resolve();
    });
    child.once('exit', () => reject(new Error(`exited before it was ready: ${output}`)));
  });
  const secrets = new Promise<DevSecrets>((resolve, reject) => {
    child.once('exit', (code) =>
      code === 0 ? resolve(JSON.parse(output.slice('ready\n'.length)) as DevSecrets) : reject(new Error(`exit ${code}: ${output}`)),
    );
  });
  return { ready, secrets };
}

t.test('processes starting together on an empty folder all run on the secrets that end up on disk', async (t) => {
  for (let round = 1; round <= 3; round++) {
    const dir = await dataDir(t);
    const go = path.join(await dataDir(t), 'go');
    const processes = Array.from({ length: 4 }, () => creatingProcess(dir, go));
    await Promise.all(processes.map((creator) => creator.ready));
    await writeFile(go, '');
    const used = await Promise.all(processes.map((creator) => creator.secrets));
    const onDisk = existingDevSecrets(dir);
    for (const [i, secrets] of used.entries()) t.same(secrets, onDisk, `round ${round}, process ${i + 1}: the secrets on disk`);
    t.same(await readdir(dir), ['dev-secrets.json'], `round ${round}: no temp file left`);
  }
});

t.test('on a file system without hard links the file is created exclusively in place, once', async (t) => {
  for (const code of ['EPERM', 'ENOTSUP', 'EXDEV']) {
    const noLinks = () => {
      throw Object.assign(new Error(`${code}: operation not permitted, link`), { code });
    };
    const dir = await dataDir(t);
    const [temp, file] = [path.join(dir, 'secrets.tmp'), path.join(dir, 'dev-secrets.json')];
    await writeFile(temp, '{"first":true}');
    placeExclusively(temp, file, '{"first":true}', noLinks);
    t.equal(await readFile(file, 'utf8'), '{"first":true}', `${code}: written in place`);
    t.equal((await stat(file)).mode & 0o777, 0o600, `${code}: mode 0600`);
    t.throws(() => placeExclusively(temp, file, '{"second":true}', noLinks), { code: 'EEXIST' }, `${code}: a second one is refused`);
    t.equal(await readFile(file, 'utf8'), '{"first":true}', `${code}: the first one stays`);
  }
  const dir = await dataDir(t);
  t.throws(
    () =>
      placeExclusively(path.join(dir, 'a'), path.join(dir, 'b'), '', () => {
        throw Object.assign(new Error('EACCES'), { code: 'EACCES' });
      }),
    { code: 'EACCES' },
    'another failure is no missing hard link: thrown as it is',
  );
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
