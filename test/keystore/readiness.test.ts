/**
 * Key-store faults are reported clearly (503, PCA.00050002) instead of surfacing as garbage signatures: a master
 * key other than the one that sealed the stored CA keys, a missing token (by label or slot index). The public /ready
 * says only which check failed; what went wrong is in the log and in the operators' GET /v1/readiness (issue #13
 * item 13). (A wrong PIN is covered by test/keystore/pkcs11.test.ts: login state is per process, so it needs a
 * process of its own.)
 */
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import t, { type Test } from 'tap';
import { createKeyStores } from '../../src/keystore/index.ts';
import { createTestApp, SOFTWARE_KEYS_ONLY, testConfig } from '../helpers/app.ts';
import { SOFTHSM_LIBRARY, softHsmToken } from './support.ts';

const token = await softHsmToken('pca-ready-test', '2468');
t.teardown(() => rm(token.dir, { recursive: true, force: true }));

type Harness = Awaited<ReturnType<typeof createTestApp>>;
type Readiness = { status: number; body: { error_code?: string; error_msg?: string; checks: Record<string, string> } };

async function get(harness: Harness, url: string, headers: Record<string, string> = {}): Promise<Readiness> {
  const response = await harness.app.inject({ method: 'GET', url, headers });
  return { status: response.statusCode, body: response.json() };
}

/** The operators' view (details), after checking that the public one agrees on every state and says no more. */
async function readiness(t: Test, harness: Harness): Promise<Readiness> {
  const detailed = await get(harness, '/v1/readiness', harness.auth());
  const shown = await get(harness, '/ready');
  t.equal(shown.status, detailed.status, 'the public view has the same status');
  t.same(
    shown.body.checks,
    Object.fromEntries(Object.entries(detailed.body.checks).map(([name, result]) => [name, result === 'ok' ? 'ok' : 'failed'])),
    'the public view: names and states only',
  );
  for (const result of Object.values(detailed.body.checks).filter((result) => result !== 'ok')) {
    t.notOk(JSON.stringify(shown.body).includes(result), 'no failure text in the public view');
    t.ok(harness.logs.text.includes(JSON.stringify(result).slice(1, -1)), 'the failure text is in the log');
  }
  return detailed;
}

/** Only the software store: this file's own token replaces any the suite was given (SOFTHSM2_CONF). */
const softwareOnly = SOFTWARE_KEYS_ONLY;

t.test('a CA key sealed under another master key makes /ready fail, naming the cause', async (t) => {
  const harness = await createTestApp({ env: softwareOnly });
  t.teardown(() => harness.close());
  t.equal((await readiness(t, harness)).status, 200, 'ready before any key exists');

  const foreign = createKeyStores({ masterKey: crypto.getRandomValues(new Uint8Array(32)) });
  const key = await foreign.software.generate('EC256');
  await harness.database.prisma.certificateAuthority.create({
    data: {
      id: randomUUID(),
      domainId: harness.config.defaultDomainId,
      type: 'ROOT',
      status: 'ACTIVED',
      keyStore: 'software',
      keyRef: key.keyRef,
      keyAlgorithm: 'EC256',
    },
  });
  const { status, body } = await readiness(t, harness);
  t.equal(status, 503);
  t.equal(body.error_code, 'PCA.00050002');
  t.match(body.checks.key_store_software, /different master key/);
  t.equal(body.checks.database, 'ok');
});

t.test('PKCS#11: a missing token is reported, a good token is ready', async (t) => {
  const good = await createTestApp({ env: softwareOnly, pkcs11: { library: SOFTHSM_LIBRARY, tokenLabel: 'pca-ready-test', pin: '2468' } });
  t.teardown(() => good.close());
  const ready = await readiness(t, good);
  t.equal(ready.status, 200);
  t.equal(ready.body.checks.key_store_pkcs11, 'ok');

  const missing = await createTestApp({
    env: softwareOnly,
    pkcs11: { library: SOFTHSM_LIBRARY, tokenLabel: 'no-such-token', pin: '2468' },
  });
  t.teardown(() => missing.close());
  const missingResult = await readiness(t, missing);
  t.equal(missingResult.status, 503);
  t.match(missingResult.body.checks.key_store_pkcs11, /no-such-token/);
  t.equal(missingResult.body.checks.key_store_software, 'ok', 'the software store is unaffected');
});

t.test('PKCS11_SLOT: not a number stops the start naming it; an index holding no token is reported as a missing label is', async (t) => {
  const slot = (PKCS11_SLOT: string) => ({
    ...softwareOnly,
    KEY_STORE: 'pkcs11',
    PKCS11_LIBRARY: SOFTHSM_LIBRARY,
    PKCS11_PIN: '2468',
    PKCS11_SLOT,
  });
  for (const value of ['abc', '1.5', '-1', '0x1']) {
    t.throws(() => testConfig(slot(value)), {
      name: 'ConfigError',
      message: `PKCS11_SLOT must be an integer from 0 to 4294967295, got '${value}'`,
    });
  }
  // The token is opened at its first use, not at start (it may come and go): /ready is where a wrong one shows.
  const wrong = await createTestApp({ env: slot('5') });
  t.teardown(() => wrong.close());
  const { status, body } = await readiness(t, wrong);
  t.equal(status, 503);
  t.equal(body.checks.key_store_pkcs11, "no initialised PKCS#11 token at slot index 5 (initialised tokens: 'pca-ready-test')");
  const right = await createTestApp({ env: slot('0') });
  t.teardown(() => right.close());
  t.equal((await readiness(t, right)).body.checks.key_store_pkcs11, 'ok', 'index 0: the one token');
});

t.test('the details need a credential holding every action', async (t) => {
  const harness = await createTestApp({ env: softwareOnly });
  t.teardown(() => harness.close());
  t.equal((await get(harness, '/v1/readiness')).status, 401);
  const narrow = await get(harness, '/v1/readiness', { authorization: `Bearer ${harness.tokenWith(['pca:ca:get'])}` });
  t.equal(narrow.status, 403);
  t.equal(narrow.body.error_code, 'PCA.00010003');
});
