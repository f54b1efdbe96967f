/**
 * A row that changes between the rotation's read and its update is left as it now is: a removed CA's software key,
 * destroyed by clearing key_ref (key-destruction.ts), is not written back; an access key or EAB key deleted meanwhile
 * does not fail the rotation; an item a concurrent rotation re-wrapped keeps that rotation's value. The concurrent
 * change is made by a hook right after the rotation's read of that table, in its transaction: no timing is involved.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import type { Db } from '../../src/db/database.ts';
import { createKeyStores } from '../../src/keystore/index.ts';
import { rotateMasterKey } from '../../src/keystore/master-key-rotation.ts';
import { createSealer, eabSealingAad } from '../../src/keystore/sealing.ts';
import { rewrapKeyRef } from '../../src/keystore/software-key-store.ts';
import { testDatabase } from '../helpers/database.ts';
import { storeCertificateWithKey } from './support.ts';

const database = await testDatabase();
t.teardown(() => database.close());
const db = database.prisma;
type Tx = Parameters<Parameters<Db['$transaction']>[0]>[0];
type Model = 'certificateAuthority' | 'certificate' | 'accessKey' | 'acmeEabKey';

/** `db` whose transactions run `change` right after the first findMany of each hooked model. */
function changedAfterRead(hooks: Partial<Record<Model, (tx: Tx) => Promise<unknown>>>): Db {
  const hooked = (tx: Tx) =>
    new Proxy(tx, {
      get(target, model: string) {
        const delegate = Reflect.get(target, model);
        const change = hooks[model as Model];
        if (!change) return delegate;
        return new Proxy(delegate, {
          get: (d, method) =>
            method === 'findMany'
              ? async (args: unknown) => {
                  const rows = await d.findMany(args);
                  await change(target);
                  return rows;
                }
              : Reflect.get(d, method),
        });
      },
    });
  return {
    $transaction: (fn: (tx: Tx) => Promise<unknown>, options: unknown) => db.$transaction((tx) => fn(hooked(tx)), options as never),
  } as unknown as Db;
}

const oldMaster = crypto.getRandomValues(new Uint8Array(32));
const newMaster = crypto.getRandomValues(new Uint8Array(32));
const oldSealer = createSealer(oldMaster);
const keys = { masterKey: oldMaster, otherMasterKeys: [] };
const oldStores = createKeyStores({ masterKey: oldMaster });

async function ca(removed: boolean): Promise<string> {
  const id = randomUUID();
  const { keyRef } = await oldStores.software.generate('EC256');
  await db.certificateAuthority.create({
    data: {
      id,
      domainId: 'd1',
      type: 'ROOT',
      status: removed ? 'DELETED' : 'ACTIVED',
      keyStore: 'software',
      keyRef,
      keyAlgorithm: 'EC256',
      ...(removed && { removedAt: new Date() }),
    },
  });
  return id;
}

t.test('a removed CA key destroyed after the read stays destroyed; a concurrent re-wrap is kept', async (t) => {
  const removedId = await ca(true);
  const otherId = await ca(false);
  let concurrentKeyRef = '';
  const rotation = changedAfterRead({
    certificateAuthority: async (tx) => {
      await tx.certificateAuthority.updateMany({ where: { id: removedId }, data: { keyRef: null } });
      const { keyRef } = await tx.certificateAuthority.findUniqueOrThrow({ where: { id: otherId } });
      concurrentKeyRef = rewrapKeyRef(keyRef!, oldSealer, createSealer(newMaster));
      await tx.certificateAuthority.update({ where: { id: otherId }, data: { keyRef: concurrentKeyRef } });
    },
  });
  const counts = await rotateMasterKey(rotation, keys, newMaster);
  t.equal(counts.caKeys, 0, 'neither counted as re-wrapped by this rotation');
  const removed = await db.certificateAuthority.findUniqueOrThrow({ where: { id: removedId } });
  t.equal(removed.keyRef, null, 'the destroyed key is not written back');
  const other = await db.certificateAuthority.findUniqueOrThrow({ where: { id: otherId } });
  t.equal(other.keyRef, concurrentKeyRef, "the concurrent rotation's value stays");
  await db.certificateAuthority.deleteMany({ where: { id: { in: [removedId, otherId] } } });
});

t.test('certificate keys, access keys and EAB keys changed or deleted after the read are skipped', async (t) => {
  const caId = await ca(false);
  const certificateId = randomUUID();
  await storeCertificateWithKey(db, certificateId, caId, '02', oldSealer.seal(new Uint8Array(48), certificateId));
  const access = 'AKROTATIONRACE000001';
  await db.accessKey.create({
    data: { access, domainId: 'd1', sealedSecret: oldSealer.seal(Buffer.from('S'.repeat(40)), access), actions: [] },
  });
  const kid = 'kid-rotation-race';
  await db.acmeEabKey.create({
    data: { kid, domainId: 'd1', caId, sealedHmacKey: oldSealer.seal(new Uint8Array(32), eabSealingAad(kid)), createdAt: new Date() },
  });
  const rotation = changedAfterRead({
    certificate: (tx) => tx.certificate.update({ where: { id: certificateId }, data: { sealedPrivateKey: null } }),
    accessKey: (tx) => tx.accessKey.delete({ where: { access } }),
    acmeEabKey: (tx) => tx.acmeEabKey.delete({ where: { kid } }),
  });
  const counts = await rotateMasterKey(rotation, keys, newMaster).catch((error: unknown) => error);
  t.same(counts, { caKeys: 1, certificateKeys: 0, accessKeySecrets: 0, eabKeys: 0 }, 'the rotation completes, skipping them');
  const certificate = await db.certificate.findUniqueOrThrow({ where: { id: certificateId } });
  t.equal(certificate.sealedPrivateKey, null, 'the cleared certificate key is not written back');
  t.equal(await db.accessKey.count({ where: { access } }), 0);
  t.equal(await db.acmeEabKey.count({ where: { kid } }), 0);
});
