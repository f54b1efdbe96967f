/**
 * The audit's orphan-key run: a server process (src/server.ts) with CA keys on a SoftHSM2 token is killed by SIGKILL
 * while a burst of CA creations is under way. Whenever the kill lands, every key it leaves on the token without a CA
 * row is recorded in pending_ca_keys, and once those records are older than ORPHAN_KEY_AGE_MS (the test's clock
 * moves, nothing waits) the ca-deletion job leaves no key on the token that no CA references.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { ManualClock } from '../../src/clock.ts';
import { ORPHAN_KEY_AGE_MS } from '../../src/services/ca/key-destruction.ts';
import { createTestAppOnRealPostgres } from '../helpers/app.ts';
import { realPostgresOrSkipFile } from '../helpers/database.ts';
import { startSharedServer } from '../helpers/server-process.ts';
import { CA, DN } from '../ca/support.ts';
import { SOFTHSM_LIBRARY, softHsmToken, tokenPrivateKeys } from './support.ts';

const LABEL = 'pca-sigkill-test';
const PIN = '2468';
const CREATIONS = 20;
const token = await softHsmToken(LABEL, PIN);
const pkcs11Env = { KEY_STORE: 'pkcs11', PKCS11_LIBRARY: SOFTHSM_LIBRARY, PKCS11_TOKEN_LABEL: LABEL, PKCS11_PIN: PIN };
const clock = new ManualClock();
const harness = await createTestAppOnRealPostgres(await realPostgresOrSkipFile(t), { clock, env: pkcs11Env });
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pca-sigkill-'));
t.teardown(async () => {
  await harness.close();
  await rm(dataDir, { recursive: true, force: true });
  await rm(token.dir, { recursive: true, force: true });
});

t.test(`SIGKILL during ${CREATIONS} CA creations: every key left behind is recorded, and the job destroys them all`, async (t) => {
  const prisma = harness.database.prisma;
  const server = await startSharedServer(harness, dataDir, { ...pkcs11Env, SOFTHSM2_CONF: token.conf });
  // One domain each: a domain's creations make their keys one at a time, and the burst should overlap on the token.
  const creations = Array.from({ length: CREATIONS }, (_, i) =>
    fetch(`${server.base}${CA}`, {
      method: 'POST',
      headers: { ...harness.auth(randomBytes(16).toString('hex')), 'content-type': 'application/json' },
      body: JSON.stringify({
        type: 'ROOT',
        key_algorithm: 'RSA2048',
        signature_algorithm: 'SHA256',
        distinguished_name: { ...DN, common_name: `burst-${i}` },
        validity: { type: 'YEAR', value: 1 },
      }),
    }).then(
      (response) => response.status,
      () => 'cut off',
    ),
  );
  // Killed once two CAs are in: by then the other creations have recorded their keys and some have made them.
  while ((await prisma.certificateAuthority.count()) < 2) await new Promise((resolve) => setImmediate(resolve));
  server.child.kill('SIGKILL');
  const answers = await Promise.all(creations);
  t.ok(
    answers.every((answer) => answer === 200 || answer === 'cut off'),
    `each creation was answered 200 or cut off: ${answers.join(' ')}`,
  );

  const referenced = new Set(
    (await prisma.certificateAuthority.findMany({ where: { keyRef: { not: null } }, select: { keyRef: true } })).map((row) => row.keyRef),
  );
  const recorded = new Set((await prisma.pendingCaKey.findMany()).map((row) => row.keyRef));
  t.ok(recorded.size > 0, `${recorded.size} creations cut off after recording their key`);
  const onToken = (await tokenPrivateKeys(LABEL, PIN)).map((key) => `p11:${key.id}`);
  const orphans = onToken.filter((keyRef) => !referenced.has(keyRef));
  t.comment(`${referenced.size} CAs created, ${orphans.length} keys left without a CA, ${recorded.size} records`);
  t.same(
    orphans.filter((keyRef) => !recorded.has(keyRef)),
    [],
    'every key left without a CA is recorded',
  );

  clock.set(Date.now() + ORPHAN_KEY_AGE_MS + 1000);
  const result = await harness.app.jobRunner.runOnce('ca-deletion');
  // A record whose key the token never made counts too: destroying an absent key is what was asked.
  t.equal(result?.orphanKeysDestroyed, recorded.size, 'the job destroyed the key of every record');
  const left = (await tokenPrivateKeys(LABEL, PIN)).map((key) => `p11:${key.id}`);
  t.same(
    left.filter((keyRef) => !referenced.has(keyRef)),
    [],
    'no key on the token without a CA',
  );
  t.equal(left.length, referenced.size, 'and every CA keeps its key');
  t.equal(await prisma.pendingCaKey.count(), 0, 'no record left');
});
