/**
 * Activating a PENDING CA that keeps its stored key writes the key_ref its locked row holds, not the one read before
 * the lock: an online master-key rotation that re-wrapped the key in between (src/keystore/master-key-rotation.ts) is
 * kept, and the CA still signs once the old master key is dropped. The rotation runs when the activation opens its
 * transaction (a proxied client), so the order is forced, on PGlite and Postgres alike.
 */
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { createKeyStores, keyStoreSigner, rewrapKeyRef } from '../../src/keystore/index.ts';
import { rotateMasterKey } from '../../src/keystore/master-key-rotation.ts';
import { createSealer } from '../../src/keystore/sealing.ts';
import { SOFTWARE_KEYS_ONLY, createTestApp } from '../helpers/app.ts';
import { DN, caServiceOver, client, pendingCa, proxiedTransactions } from './support.ts';

const oldMasterKey = randomBytes(32);
const newMasterKey = randomBytes(32);
// Step 3 of an online rotation: instances seal under the new master key and still open what the old one sealed.
const harness = await createTestApp({
  env: { ...SOFTWARE_KEYS_ONLY, MASTER_KEY: newMasterKey.toString('base64'), OTHER_MASTER_KEYS: oldMasterKey.toString('base64') },
});
t.teardown(() => harness.close());
const api = client(harness);
const prisma = harness.database.prisma;
const keyStores = createKeyStores({ masterKey: newMasterKey, otherMasterKeys: [oldMasterKey] });
t.teardown(() => keyStores.software.close());

/** Runs once, when the service next opens a transaction: after activate's unlocked read, before its row lock. */
let beforeTransaction: (() => Promise<void>) | undefined;
const db = proxiedTransactions(prisma, async (open, ...args) => {
  const run = beforeTransaction;
  beforeTransaction = undefined;
  await run?.();
  return open(...args);
});
const cas = caServiceOver(harness, db, keyStores);

t.test('a rotation committed between the read of the CA and its lock: the activation keeps the rotated key_ref', async (t) => {
  const rootId = await api.root({ distinguished_name: { ...DN, common_name: 'stale-key-root' } });
  const subId = await pendingCa(t, api, 'stale-key-sub');
  // Created before the rotation began: its key sealed under the old master key.
  const made = await prisma.certificateAuthority.findUniqueOrThrow({ where: { id: subId } });
  const underOld = rewrapKeyRef(made.keyRef!, createSealer(newMasterKey, [oldMasterKey]), createSealer(oldMasterKey));
  await prisma.certificateAuthority.update({ where: { id: subId }, data: { keyRef: underOld } });

  let rotated: string | null = null;
  beforeTransaction = async () => {
    const counts = await rotateMasterKey(prisma, { masterKey: newMasterKey, otherMasterKeys: [oldMasterKey] }, newMasterKey);
    t.equal(counts.caKeys, 1, 'the rotation re-wrapped the CA key');
    rotated = (await prisma.certificateAuthority.findUniqueOrThrow({ where: { id: subId } })).keyRef;
  };
  await cas.activate({ domainId: harness.config.defaultDomainId, actor: 'test', requestId: 'stale-key' }, subId, {
    issuer_id: rootId,
    signature_algorithm: 'SHA256',
    validity: { type: 'DAY', value: 10 },
  });
  t.not(rotated, null, 'the rotation ran after the unlocked read');
  t.not(rotated, underOld);

  const after = await prisma.certificateAuthority.findUniqueOrThrow({ where: { id: subId } });
  t.equal(after.status, 'ACTIVED');
  t.equal(after.keyRef, rotated, 'the activation kept the rotated key_ref');
  // Step 4 of the rotation: the old master key is dropped.
  const newKeyOnly = createKeyStores({ masterKey: newMasterKey });
  t.teardown(() => newKeyOnly.software.close());
  await t.resolves(
    keyStoreSigner(newKeyOnly.software, after.keyRef!, 'EC256', after.publicKeySpki).sign('SHA256', Buffer.from('probe')),
    'the CA key opens under the new master key alone',
  );
  const issued = await api.call('POST', '/v1/private-certificates', {
    issuer_id: subId,
    distinguished_name: { common_name: 'leaf.stale-key' },
    validity: { type: 'DAY', value: 1 },
  });
  t.equal(issued.status, 200, `the CA issues a certificate (${JSON.stringify(issued.body)})`);
});
