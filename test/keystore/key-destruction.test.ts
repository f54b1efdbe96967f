/**
 * Keys of deleted CAs are destroyed when the deletion becomes final, never during the pending window (issue #13
 * item 12), and so are those of yearly/monthly CAs released when their retention period ends (issue #21 item 7),
 * never while frozen. With the real stores: the sealed software key leaves the database; the PKCS#11 key leaves the
 * SoftHSM2 token (neither the store's own lookup nor another PKCS#11 application, through pkcs11js, finds it). A store
 * that fails leaves the CA removed whole and its key reference in place, and the next run of the job destroys it.
 */
import { rm } from 'node:fs/promises';
import t, { type Test } from 'tap';
import { ManualClock } from '../../src/clock.ts';
import { errors } from '../../src/errors.ts';
import { createKeyStores, signerOver } from '../../src/keystore/index.ts';
import type { KeyStore, KeyStoreKind } from '../../src/keystore/key-store.ts';
import { createPkcs11KeyStore } from '../../src/keystore/pkcs11-key-store.ts';
import { caDeletionJob } from '../../src/services/ca/ca-jobs.ts';
import { ORPHAN_KEY_AGE_MS } from '../../src/services/ca/key-destruction.ts';
import { createTestApp, SOFTWARE_KEYS_ONLY, type TestApp } from '../helpers/app.ts';
import { CA, DN, assertError, client, verifyWithChain } from '../ca/support.ts';
import { gate, settle } from '../unit/support.ts';
import { generateInOtherApplication, SOFTHSM_LIBRARY, softHsmMissing, softHsmToken, tokenPrivateKeys } from './support.ts';

const DAY = 86_400_000;
// Each case starts three weeks back and moves forward through deletion windows: what it signs is valid today.
const clock = new ManualClock(Date.now() - 21 * DAY);

async function keyRefOf(harness: TestApp, id: string): Promise<string | null> {
  return (await harness.database.prisma.certificateAuthority.findUniqueOrThrow({ where: { id } })).keyRef;
}

/** A root deleted with a pending window; its delete_time is `days` away on the manual clock. */
async function deletedRoot(harness: TestApp, commonName: string, days = 7): Promise<string> {
  const api = client(harness);
  const root = await api.root({ distinguished_name: { ...DN, common_name: commonName } });
  await api.call('POST', `${CA}/${root}/disable`);
  const deleted = await api.call('DELETE', `${CA}/${root}?pending_days=${days}`);
  if (deleted.status !== 204) throw new Error(`delete failed: ${deleted.status} ${JSON.stringify(deleted.body)}`);
  return root;
}

/**
 * Frozen one second before its retention ends, the prepaid CA keeps its key through a job run; at the end of
 * retention the job removes it (durably, audited) and destroys the key. Moves the clock past the case's other CAs'
 * windows, so call it last. `keyGone` says whether the key has left its store.
 */
async function releasedPrepaidLosesItsKey(t: Test, harness: TestApp, keyGone: (keyRef: string) => Promise<boolean>): Promise<void> {
  const runJob = () => harness.app.jobRunner.runOnce('ca-deletion');
  const prepaid = await client(harness).prepaidRoot(
    { period_type: 2, period_num: 1, is_auto_renew: 0 },
    { distinguished_name: { ...DN, common_name: 'released-prepaid-root' } },
  );
  const key = (await keyRefOf(harness, prepaid.id))!;
  clock.set(prepaid.expiry + 30 * DAY - 1000);
  t.match(await client(harness).show(prepaid.id), { freeze_flag: 1 }, 'frozen, 1 s before its retention ends');
  t.same(await runJob(), { removed: 0, keysDestroyed: 0 }, 'a frozen CA is not removed');
  t.equal(await keyRefOf(harness, prepaid.id), key, 'and keeps its key');
  t.notOk(await keyGone(key));
  clock.advance(1000);
  assertError(t, await client(harness).call('GET', `${CA}/${prepaid.id}`), 404, 'PCA.10010002');
  t.same(await runJob(), { removed: 1, keysDestroyed: 1 }, 'released: removed, its key destroyed');
  const row = await harness.database.prisma.certificateAuthority.findUniqueOrThrow({ where: { id: prepaid.id } });
  t.ok(row.removedAt, 'the release is stored');
  t.equal(row.keyRef, null, 'key_ref cleared');
  t.ok(await keyGone(key), 'the key has left its store');
  t.equal(
    await harness.database.prisma.auditEvent.count({ where: { resourceId: prepaid.id, action: 'pca:ca:remove' } }),
    1,
    'audited once',
  );
  t.same(await runJob(), { removed: 0, keysDestroyed: 0 }, 'a second run has nothing left to do');
}

/** Restores and enables `root`, then proves its key still signs: a subordinate it issues passes openssl. */
async function restoreAndSign(t: Test, harness: TestApp, root: string): Promise<void> {
  const api = client(harness);
  t.equal((await api.call('POST', `${CA}/${root}/restore`)).status, 204, 'restored');
  t.equal((await api.call('POST', `${CA}/${root}/enable`)).status, 204, 'enabled');
  const sub = await api.subordinate(root, { distinguished_name: { ...DN, common_name: 'signed-after-restore' } });
  const exported = (await api.call('POST', `${CA}/${sub}/export`)).body;
  await verifyWithChain(t, exported.certificate, exported.certificate_chain, 'a subordinate signed by the restored root');
}

t.test('software store: the sealed key stays through the pending window and leaves the database at removal', async (t) => {
  clock.set(Date.now() - 21 * DAY);
  const harness = await createTestApp({ clock, env: SOFTWARE_KEYS_ONLY });
  t.teardown(() => harness.close());
  const prisma = harness.database.prisma;
  const runJob = () => harness.app.jobRunner.runOnce('ca-deletion');

  const kept = await deletedRoot(harness, 'restored-root');
  const sealed = await keyRefOf(harness, kept);
  t.match(sealed, /^sw1:/, 'a sealed software key');
  clock.advance(3 * DAY);
  t.same(await runJob(), { removed: 0, keysDestroyed: 0 }, 'nothing due yet');
  t.equal(await keyRefOf(harness, kept), sealed, 'the pending window keeps the key');
  await restoreAndSign(t, harness, kept);

  const doomed = await deletedRoot(harness, 'doomed-root');
  const doomedKey = (await keyRefOf(harness, doomed))!;
  clock.advance(7 * DAY + 1000);
  t.same(await runJob(), { removed: 1, keysDestroyed: 1 });
  assertError(t, await client(harness).call('GET', `${CA}/${doomed}`), 404, 'PCA.10010002');
  const row = await prisma.certificateAuthority.findUniqueOrThrow({ where: { id: doomed } });
  t.equal(row.keyRef, null, 'key_ref cleared');
  t.ok(row.removedAt, 'removed');
  const sealedPart = doomedKey.split(':')[2];
  const anywhere = await prisma.$queryRaw<{ n: bigint }[]>`
    SELECT count(*) AS n FROM certificate_authorities ca WHERE strpos(ca::text, ${sealedPart}) > 0`;
  t.equal(Number(anywhere[0].n), 0, 'the sealed key is in no column of any CA row');
  t.same(await runJob(), { removed: 0, keysDestroyed: 0 }, 'a second run has nothing left to do');
  t.equal(await keyRefOf(harness, kept), sealed, 'the restored CA keeps its key');

  // A PENDING CA (key made, never activated) is removed at once, its key with it.
  const pending = await client(harness).call('POST', CA, {
    type: 'SUBORDINATE',
    key_algorithm: 'EC256',
    signature_algorithm: 'SHA256',
    distinguished_name: { ...DN, common_name: 'pending' },
  });
  t.equal(pending.status, 200);
  t.match(await keyRefOf(harness, pending.body.ca_id), /^sw1:/);
  t.equal((await client(harness).call('DELETE', `${CA}/${pending.body.ca_id}`)).status, 204);
  t.equal(await keyRefOf(harness, pending.body.ca_id), null, 'an immediate removal destroys the key at once');
  t.equal(await prisma.pendingCaKey.count(), 0, 'software keys live in their CA row alone: nothing is recorded for them');

  await releasedPrepaidLosesItsKey(t, harness, async (keyRef) => {
    const sealed = keyRef.split(':')[2];
    const rows = await prisma.$queryRaw<
      { n: bigint }[]
    >`SELECT count(*) AS n FROM certificate_authorities ca WHERE strpos(ca::text, ${sealed}) > 0`;
    return Number(rows[0].n) === 0;
  });
});

if (softHsmMissing) t.comment(`skipping the PKCS#11 cases: ${softHsmMissing}`);

t.test(
  'PKCS#11 store: the key leaves the token at removal; a failing token leaves the CA removed and is retried',
  { skip: softHsmMissing },
  async (t) => {
    const label = 'pca-destroy-test';
    const pin = '8642';
    clock.set(Date.now() - 21 * DAY);
    const token = await softHsmToken(label, pin);
    const pkcs11 = { library: SOFTHSM_LIBRARY, tokenLabel: label, pin };
    const harness = await createTestApp({
      clock,
      env: { KEY_STORE: 'pkcs11', PKCS11_LIBRARY: SOFTHSM_LIBRARY, PKCS11_TOKEN_LABEL: label, PKCS11_PIN: pin },
    });
    const unreachable = createKeyStores({ masterKey: harness.config.masterKey, pkcs11: { ...pkcs11, tokenLabel: 'unplugged-token' } });
    t.teardown(async () => {
      await harness.close();
      await unreachable.pkcs11!.close();
      await rm(token.dir, { recursive: true, force: true });
    });
    /** A store of its own for each look: a store caches the handles of keys it has seen. */
    const withStore = async <T>(use: (store: ReturnType<typeof createPkcs11KeyStore>) => Promise<T>): Promise<T> => {
      const store = createPkcs11KeyStore(pkcs11);
      try {
        return await use(store);
      } finally {
        await store.close();
      }
    };
    const onToken = async (keyRef: string) => {
      const found = await withStore((store) => store.check(keyRef)).then(
        () => true,
        (error: Error) => (/not found on token/.test(error.message) ? false : Promise.reject(error)),
      );
      const listed = (await tokenPrivateKeys(label, pin)).some((key) => key.id === keyRef.slice('p11:'.length));
      t.equal(listed, found, 'another PKCS#11 application agrees with the store');
      return found;
    };
    const runJob = () => harness.app.jobRunner.runOnce('ca-deletion');

    const kept = await deletedRoot(harness, 'hsm-restored-root');
    const keptKey = (await keyRefOf(harness, kept))!;
    t.match(keptKey, /^p11:[0-9a-f]+$/, 'the key is on the token');
    clock.advance(3 * DAY);
    await runJob();
    t.ok(await onToken(keptKey), 'the pending window keeps the key on the token');
    await restoreAndSign(t, harness, kept);

    const doomed = await deletedRoot(harness, 'hsm-doomed-root');
    const doomedKey = (await keyRefOf(harness, doomed))!;
    t.ok(await onToken(doomedKey));
    clock.advance(7 * DAY + 1000);
    // The token cannot be reached at the final deletion: the CA is removed whole, its key waits for the next run.
    const failingJob = caDeletionJob({ db: harness.database.prisma, keyStores: unreachable, billing: harness.app.services.billing.hooks });
    await t.rejects(
      failingJob.run({ now: clock.now(), log: harness.app.log }),
      /removed 1 CAs, destroyed 0 keys; the keys of 1 removed CAs could not be destroyed .*unplugged-token.*the next run retries/,
    );
    assertError(t, await client(harness).call('GET', `${CA}/${doomed}`), 404, 'PCA.10010002');
    t.equal(
      await harness.database.prisma.auditEvent.count({ where: { resourceId: doomed, action: 'pca:ca:remove' } }),
      1,
      'the removal is committed and audited',
    );
    t.equal(await keyRefOf(harness, doomed), doomedKey, 'the key reference stays, as the to-do of the next run');
    t.ok(await onToken(doomedKey), 'the key is still on the token');

    t.same(await runJob(), { removed: 0, keysDestroyed: 1 }, 'the next run destroys it');
    t.notOk(await onToken(doomedKey), 'the key is gone from the token');
    t.equal(await keyRefOf(harness, doomed), null);
    t.same(await runJob(), { removed: 0, keysDestroyed: 0 }, 'and then has nothing left to do');
    t.ok(await onToken(keptKey), 'the restored CA keeps its key');

    // A crash after the token call but before key_ref was cleared: the retry finds nothing to destroy and finishes.
    const crashed = await deletedRoot(harness, 'hsm-crashed-root');
    const crashedKey = (await keyRefOf(harness, crashed))!;
    clock.advance(7 * DAY + 1000);
    await harness.database.prisma.certificateAuthority.update({ where: { id: crashed }, data: { removedAt: clock.now() } });
    await withStore((store) => store.destroy(crashedKey));
    t.notOk(await onToken(crashedKey));
    t.same(await runJob(), { removed: 0, keysDestroyed: 1 }, 'a key already gone is no error');
    t.equal(await keyRefOf(harness, crashed), null);

    await releasedPrepaidLosesItsKey(t, harness, async (keyRef) => !(await onToken(keyRef)));
  },
);

t.test(
  'PKCS#11 store: the key of a CA never created is recorded, and the job destroys it once old; referenced, young and unrecorded keys stay',
  { skip: softHsmMissing },
  async (t) => {
    const label = 'pca-orphan-test';
    const pin = 'orphan-pin-9753'; // distinctive: a 4-digit PIN can occur by chance in a log line's numbers
    clock.set(Date.now() - 21 * DAY);
    const token = await softHsmToken(label, pin);
    // A token outage while the CA's transaction signs, and (with 'destroy') at the clean-up after it.
    const outage = new Set<'sign' | 'destroy'>();
    // A creation stalled between its key's generation and its transaction, until opened.
    let stall: Promise<void> | undefined;
    const down = () => Promise.reject(errors.unavailable(`PKCS#11 token '${label}' is unavailable: CKR_DEVICE_REMOVED`));
    const harness = await createTestApp({
      clock,
      env: { KEY_STORE: 'pkcs11', PKCS11_LIBRARY: SOFTHSM_LIBRARY, PKCS11_TOKEN_LABEL: label, PKCS11_PIN: pin },
      wrapKeyStores: (stores) => {
        const real = stores.pkcs11!;
        const pkcs11: KeyStore = {
          ...real,
          generate: async (alg, record) => {
            const key = await real.generate(alg, record);
            await stall;
            return key;
          },
          sign: (...args) => (outage.has('sign') ? down() : real.sign(...args)),
          destroy: (keyRef) => (outage.has('destroy') ? down() : real.destroy(keyRef)),
        };
        const get = (kind: KeyStoreKind) => (kind === 'pkcs11' ? pkcs11 : stores.get(kind));
        return { software: stores.software, pkcs11, get, signerOf: signerOver(get) };
      },
    });
    t.teardown(async () => {
      await harness.close();
      await rm(token.dir, { recursive: true, force: true });
    });
    const prisma = harness.database.prisma;
    const api = client(harness);
    const onToken = async () => new Set((await tokenPrivateKeys(label, pin)).map((key) => `p11:${key.id}`));
    const pending = async () => (await prisma.pendingCaKey.findMany({ orderBy: { createdAt: 'asc' } })).map((row) => row.keyRef);
    const runJob = () => harness.app.jobRunner.runOnce('ca-deletion');
    /** A creation that fails in its transaction; returns the key it made (the one new key on the token). */
    const failedCreate = async (commonName: string): Promise<string> => {
      const before = await onToken();
      const response = await api.call('POST', CA, {
        type: 'ROOT',
        key_algorithm: 'EC256',
        signature_algorithm: 'SHA256',
        distinguished_name: { ...DN, common_name: commonName },
        validity: { type: 'YEAR', value: 1 },
      });
      assertError(t, response, 503, 'PCA.00050002', /unavailable/);
      const made = [...(await onToken())].filter((keyRef) => !before.has(keyRef));
      t.ok(made.length <= 1, 'at most one key made');
      return made[0] ?? '';
    };

    const kept = await api.root({ distinguished_name: { ...DN, common_name: 'kept-root' } });
    const keptKey = (await keyRefOf(harness, kept))!;
    t.same(await pending(), [], 'the committed CA left no record');

    outage.add('sign');
    t.equal(await failedCreate('cleaned-up-root'), '', 'a failed creation whose clean-up works leaves no key');
    t.same(await pending(), [], 'nor a record');

    outage.add('destroy');
    const orphan = await failedCreate('orphan-root');
    t.match(orphan, /^p11:[0-9a-f]{32}$/, 'the token failed at the clean-up too: the key stays on the token');
    t.same(await pending(), [orphan], 'recorded');
    const warning = harness.logs.records().find((line) => line.keyRef === orphan);
    t.match(warning, { level: 40, msg: /could not be destroyed: the ca-deletion job will/ }, 'a warning names the key');
    t.notMatch(harness.logs.text, pin, 'no PIN in the logs');
    outage.clear();

    const foreign = `p11:${(await generateInOtherApplication(label, pin)).id}`; // another deployment's key
    t.same(await runJob(), { removed: 0, keysDestroyed: 0 }, 'a young record is not touched');
    t.ok((await onToken()).has(orphan), 'its key stays while its creation might still be running');

    clock.advance(ORPHAN_KEY_AGE_MS + 1000);
    outage.add('sign').add('destroy');
    const young = await failedCreate('young-orphan-root');
    outage.clear();
    // No creation leaves a referenced key recorded; the job must still never destroy one.
    await prisma.pendingCaKey.create({ data: { keyRef: keptKey, keyStore: 'pkcs11', createdAt: new Date(0) } });

    t.same(await runJob(), { removed: 0, keysDestroyed: 0, orphanKeysDestroyed: 1 }, 'the old orphan is destroyed');
    const left = await onToken();
    t.notOk(left.has(orphan), 'gone from the token');
    t.ok(left.has(keptKey), 'the key a CA references stays');
    t.ok(left.has(young), 'the young orphan stays');
    t.ok(left.has(foreign), 'the key this deployment never recorded stays');
    t.same(await pending(), [young], 'the records of the destroyed and of the referenced key are gone');
    const sub = await api.subordinate(kept, { distinguished_name: { ...DN, common_name: 'still-signing' } });
    t.ok(sub, 'the CA whose key was recorded still signs');

    clock.advance(ORPHAN_KEY_AGE_MS + 1000);
    t.same(await runJob(), { removed: 0, keysDestroyed: 0, orphanKeysDestroyed: 1 }, 'and the next one in its turn');
    t.same(await pending(), []);
    t.notOk((await onToken()).has(young));

    // A creation outlasting the bound loses its key to the job, and then fails rather than commit a CA without one.
    const stalled = gate();
    stall = stalled.opened;
    const late = api.call('POST', CA, {
      type: 'SUBORDINATE',
      key_algorithm: 'EC256',
      signature_algorithm: 'SHA256',
      distinguished_name: DN,
    });
    while ((await pending()).length === 0) await settle();
    const [lateKey] = await pending();
    t.ok((await onToken()).has(lateKey), 'the stalled creation made its key');
    clock.advance(ORPHAN_KEY_AGE_MS + 1000);
    t.same(await runJob(), { removed: 0, keysDestroyed: 0, orphanKeysDestroyed: 1 }, 'the job takes it for left behind');
    stalled.open();
    t.equal((await late).status, 500, 'the creation fails');
    t.equal(await prisma.certificateAuthority.count({ where: { keyRef: lateKey } }), 0, 'no CA holds the destroyed key');
    t.same(await pending(), []);

    // The connection lost after the CA's transaction committed, before its answer: the creation cannot know whether
    // the CA is stored, so it must not destroy the key; the stored CA signs.
    stall = undefined;
    const openTransaction = prisma.$transaction.bind(prisma) as (...args: unknown[]) => Promise<unknown>;
    let loseNextAnswer = true;
    Object.defineProperty(prisma, '$transaction', {
      value: async (...args: unknown[]) => {
        const result = await openTransaction(...args);
        if (!loseNextAnswer) return result;
        loseNextAnswer = false;
        throw new Error('Connection terminated unexpectedly (injected after the commit)');
      },
      configurable: true,
      writable: true,
    });
    const lost = await api.call('POST', CA, {
      type: 'ROOT',
      key_algorithm: 'EC256',
      signature_algorithm: 'SHA256',
      distinguished_name: { ...DN, common_name: 'answer-lost-root' },
      validity: { type: 'YEAR', value: 1 },
    });
    assertError(t, lost, 503, 'PCA.00050002', /unavailable/);
    const stored = await prisma.certificateAuthority.findFirstOrThrow({ where: { commonName: 'answer-lost-root' } });
    t.ok((await onToken()).has(stored.keyRef!), 'the stored CA keeps its key on the token');
    t.same(await pending(), [], 'its record went with the commit: the job has nothing to take');
    t.ok(await api.subordinate(stored.id, { distinguished_name: { ...DN, common_name: 'under-answer-lost' } }), 'it signs');
  },
);
