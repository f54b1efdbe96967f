/**
 * A CA deletion that Postgres aborts (a deadlock, a serialization conflict) runs again and judges the CA afresh. If
 * the first attempt found the CA PENDING (removed at once, its key to destroy after commit) and the second finds it
 * activated and disabled meanwhile (a scheduled deletion, its key kept for restore), the key must survive: nothing
 * of the rolled-back attempt may carry over. The abort and the concurrent change are forced through a proxied client,
 * on PGlite and Postgres alike.
 */
import t from 'tap';
import { type KeyStores, createKeyStores } from '../../src/keystore/index.ts';
import { SOFTWARE_KEYS_ONLY, createTestApp } from '../helpers/app.ts';
import { caServiceOver, client, pendingCa, proxiedTransactions } from './support.ts';

const harness = await createTestApp({ env: SOFTWARE_KEYS_ONLY });
t.teardown(() => harness.close());
const api = client(harness);
const prisma = harness.database.prisma;
const stores = createKeyStores({ masterKey: harness.config.masterKey });
t.teardown(() => stores.software.close());
/** What the service asked any store to destroy: on a PKCS#11 token a destroyed key is gone for good. */
const destroyed: string[] = [];
const keyStores: KeyStores = {
  ...stores,
  get: (kind) => {
    const store = stores.get(kind);
    return { ...store, destroy: async (keyRef) => void destroyed.push(keyRef) };
  },
};

/** The first transaction runs whole, then aborts as a deadlock would; `betweenAttempts` runs before the second. */
let abortFirst: { betweenAttempts: () => Promise<void> } | undefined;
const db = proxiedTransactions(prisma, async (run, work, ...rest) => {
  const abort = abortFirst;
  abortFirst = undefined;
  if (!abort) return run(work, ...rest);
  await run(
    async (tx) => {
      await work(tx);
      throw new Error('deadlock detected');
    },
    ...rest,
  ).catch(async (error: unknown) => {
    await abort.betweenAttempts();
    throw error;
  });
});
const cas = caServiceOver(harness, db, keyStores);

t.test('an attempt that removed a PENDING CA, rolled back, does not destroy the key the retry keeps', async (t) => {
  const subId = await pendingCa(t, api, 'delete-retry-sub');
  const pending = await prisma.certificateAuthority.findUniqueOrThrow({ where: { id: subId } });
  t.equal(pending.status, 'PENDING');

  let retried = false;
  destroyed.length = 0;
  abortFirst = {
    // Meanwhile the CA was activated and disabled (its certificate dates are what a DISABLED CA has).
    betweenAttempts: async () => {
      retried = true;
      const now = Date.now();
      await prisma.certificateAuthority.update({
        where: { id: subId },
        data: { status: 'DISABLED', notBefore: new Date(now - 60_000), notAfter: new Date(now + 86_400_000) },
      });
    },
  };
  await cas.delete({ domainId: harness.config.defaultDomainId, actor: 'test', requestId: 'delete-retry' }, subId, 7);
  t.ok(retried, 'the first attempt was aborted and the deletion ran again');

  const after = await prisma.certificateAuthority.findUniqueOrThrow({ where: { id: subId } });
  t.equal(after.status, 'DELETED', 'the retry scheduled the deletion');
  t.equal(after.removedAt, null, 'the CA is not removed: it can be restored');
  t.equal(after.keyRef, pending.keyRef, 'its key reference is kept');
  t.same(destroyed, [], 'no key was destroyed');
});

t.test('a PENDING CA deleted without a retry has its key destroyed after commit', async (t) => {
  const subId = await pendingCa(t, api, 'delete-pending-sub');
  const { keyRef } = await prisma.certificateAuthority.findUniqueOrThrow({ where: { id: subId } });
  destroyed.length = 0;
  await cas.delete({ domainId: harness.config.defaultDomainId, actor: 'test', requestId: 'delete-pending' }, subId, 7);
  t.same(destroyed, [keyRef], 'its key was destroyed');
  const after = await prisma.certificateAuthority.findUniqueOrThrow({ where: { id: subId } });
  t.not(after.removedAt, null, 'the CA is removed');
  t.equal(after.keyRef, null, 'its key reference is cleared');
});
