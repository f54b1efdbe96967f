/**
 * Key-store faults are reported clearly by /ready (503, PCA.00050002) instead of surfacing as garbage
 * signatures: a master key other than the one that sealed the stored CA keys, a missing token. (A wrong PIN is
 * covered by test/keystore/pkcs11.test.ts: login state is per process, so it needs a process of its own.)
 */
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import t from 'tap';
import { createKeyStores } from '../../src/keystore/index.ts';
import { createTestApp } from '../helpers/app.ts';
import { SOFTHSM_LIBRARY, softHsmToken } from './support.ts';

const token = await softHsmToken('pca-ready-test', '2468');
t.teardown(() => rm(token.dir, { recursive: true, force: true }));

async function readiness(harness: Awaited<ReturnType<typeof createTestApp>>) {
  const response = await harness.app.inject({ method: 'GET', url: '/ready' });
  return { status: response.statusCode, body: response.json() as { error_code?: string; checks: Record<string, string> } };
}

/** Only the software store: this file's own token replaces any the suite was given (SOFTHSM2_CONF). */
const softwareOnly = { KEY_STORE: 'software', PKCS11_LIBRARY: '' };

t.test('a CA key sealed under another master key makes /ready fail, naming the cause', async (t) => {
  const harness = await createTestApp({ env: softwareOnly });
  t.teardown(() => harness.close());
  t.equal((await readiness(harness)).status, 200, 'ready before any key exists');

  const foreign = createKeyStores({ masterKey: crypto.getRandomValues(new Uint8Array(32)) });
  const key = await foreign.software.generate('EC256');
  await harness.database.prisma.certificateAuthority.create({
    data: { id: randomUUID(), domainId: harness.config.defaultDomainId, type: 'ROOT', status: 'ACTIVED', keyStore: 'software', keyRef: key.keyRef, keyAlgorithm: 'EC256' },
  });
  const { status, body } = await readiness(harness);
  t.equal(status, 503);
  t.equal(body.error_code, 'PCA.00050002');
  t.match(body.checks.key_store_software, /different master key/);
  t.equal(body.checks.database, 'ok');
});

t.test('PKCS#11: a missing token is reported, a good token is ready', async (t) => {
  const good = await createTestApp({ env: softwareOnly, pkcs11: { library: SOFTHSM_LIBRARY, tokenLabel: 'pca-ready-test', pin: '2468' } });
  t.teardown(() => good.close());
  const ready = await readiness(good);
  t.equal(ready.status, 200);
  t.equal(ready.body.checks.key_store_pkcs11, 'ok');

  const missing = await createTestApp({ env: softwareOnly, pkcs11: { library: SOFTHSM_LIBRARY, tokenLabel: 'no-such-token', pin: '2468' } });
  t.teardown(() => missing.close());
  const missingResult = await readiness(missing);
  t.equal(missingResult.status, 503);
  t.match(missingResult.body.checks.key_store_pkcs11, /no-such-token/);
  t.equal(missingResult.body.checks.key_store_software, 'ok', 'the software store is unaffected');
});
