/**
 * Master-key rotation re-wraps every sealed item (EAB keys included); CA keys stay the same keys, the old master key
 * stops working. Without stopping the service: instances moved to the new key with the old one among
 * OTHER_MASTER_KEYS open items sealed under either, and the rotation re-wraps only those still under the old one.
 */
import { randomUUID, verify } from 'node:crypto';
import t from 'tap';
import { createKeyStores } from '../../src/keystore/index.ts';
import { rotateMasterKey } from '../../src/keystore/master-key-rotation.ts';
import { createSealer, eabSealingAad } from '../../src/keystore/sealing.ts';
import { testDatabase } from '../helpers/database.ts';
import { storeCertificateWithKey } from './support.ts';

const database = await testDatabase();
t.teardown(() => database.close());
const db = database.prisma;
const oldMaster = crypto.getRandomValues(new Uint8Array(32));
const newMaster = crypto.getRandomValues(new Uint8Array(32));
const oldStores = createKeyStores({ masterKey: oldMaster });
const caId = randomUUID();
const certificateId = randomUUID();
const certificateKey = crypto.getRandomValues(new Uint8Array(48));
const secret = 'S'.repeat(40);

const caKey = await oldStores.software.generate('EC256');
await db.certificateAuthority.create({
  data: { id: caId, domainId: 'd1', type: 'ROOT', status: 'ACTIVED', keyStore: 'software', keyRef: caKey.keyRef, keyAlgorithm: 'EC256' },
});
await storeCertificateWithKey(db, certificateId, caId, '01', createSealer(oldMaster).seal(certificateKey, certificateId));
await db.accessKey.create({
  data: {
    access: 'AKROTATIONTEST000001',
    domainId: 'd1',
    sealedSecret: createSealer(oldMaster).seal(Buffer.from(secret), 'AKROTATIONTEST000001'),
    actions: [],
  },
});

const eabKid = 'kid-rotation-test';
const eabHmacKey = crypto.getRandomValues(new Uint8Array(32));
await db.acmeEabKey.create({
  data: {
    kid: eabKid,
    domainId: 'd1',
    caId,
    sealedHmacKey: createSealer(oldMaster).seal(eabHmacKey, eabSealingAad(eabKid)),
    createdAt: new Date(),
  },
});

const counts = await rotateMasterKey(db, { masterKey: oldMaster, otherMasterKeys: [] }, newMaster);

t.same(counts, { caKeys: 1, certificateKeys: 1, accessKeySecrets: 1, eabKeys: 1 });

t.test('the CA key signs under the new master key and is still the same key', async (t) => {
  const { keyRef } = await db.certificateAuthority.findUniqueOrThrow({ where: { id: caId } });
  t.not(keyRef, caKey.keyRef, 'the sealed reference changed');
  const newStores = createKeyStores({ masterKey: newMaster });
  const data = new TextEncoder().encode('rotation');
  const signature = await newStores.software.sign(keyRef!, 'EC256', 'SHA256', data);
  const publicKey = { key: Buffer.from(caKey.spki), format: 'der' as const, type: 'spki' as const };
  t.ok(verify('sha256', data, publicKey, signature), 'signature verifies against the original public key');
  await t.rejects(createKeyStores({ masterKey: oldMaster }).software.sign(keyRef!, 'EC256', 'SHA256', data), /different master key/);
});

t.test('sealed certificate keys and access-key secrets open only with the new master key', async (t) => {
  const certificate = await db.certificate.findUniqueOrThrow({ where: { id: certificateId } });
  t.ok(Buffer.from(createSealer(newMaster).unseal(certificate.sealedPrivateKey!, certificateId)).equals(certificateKey), 'same key bytes');
  t.throws(() => createSealer(oldMaster).unseal(certificate.sealedPrivateKey!, certificateId), /different master key/);
  const key = await db.accessKey.findUniqueOrThrow({ where: { access: 'AKROTATIONTEST000001' } });
  t.equal(Buffer.from(createSealer(newMaster).unseal(key.sealedSecret, key.access)).toString(), secret);
  // An EAB key left under the old master key made every ACME sign-up with it a 500 after the rotation.
  const eab = await db.acmeEabKey.findUniqueOrThrow({ where: { kid: eabKid } });
  t.ok(Buffer.from(createSealer(newMaster).unseal(eab.sealedHmacKey, eabSealingAad(eabKid))).equals(eabHmacKey), 'the EAB key too');
  t.throws(() => createSealer(oldMaster).unseal(eab.sealedHmacKey, eabSealingAad(eabKid)), /different master key/);
});

t.test('rotating to the same key, with no other key to move from, is refused', async (t) => {
  await t.rejects(rotateMasterKey(db, { masterKey: newMaster, otherMasterKeys: [] }, newMaster), /nothing to re-wrap/);
});

t.test('the next key while instances run: either key opens, only MASTER_KEY seals; the rotation re-wraps the rest', async (t) => {
  const nextMaster = crypto.getRandomValues(new Uint8Array(32));
  // An instance moved to the next key, with the current one kept to open what is stored.
  const moved = createSealer(nextMaster, [newMaster]);
  const certificate = await db.certificate.findUniqueOrThrow({ where: { id: certificateId } });
  t.ok(Buffer.from(moved.unseal(certificate.sealedPrivateKey!, certificateId)).equals(certificateKey), 'an item of the current key opens');
  const sealedNow = moved.seal(Buffer.from(secret), 'AKROTATIONTEST000002');
  t.equal(sealedNow.split('.')[1], createSealer(nextMaster).fingerprint, 'a new item is sealed under the next key');
  await db.accessKey.create({ data: { access: 'AKROTATIONTEST000002', domainId: 'd1', sealedSecret: sealedNow, actions: [] } });
  const { keyRef } = await db.certificateAuthority.findUniqueOrThrow({ where: { id: caId } });
  const data = new TextEncoder().encode('moving');
  const movedStores = createKeyStores({ masterKey: nextMaster, otherMasterKeys: [newMaster] });
  const publicKey = { key: Buffer.from(caKey.spki), format: 'der' as const, type: 'spki' as const };
  t.ok(verify('sha256', data, publicKey, await movedStores.software.sign(keyRef!, 'EC256', 'SHA256', data)), 'the CA key signs');

  const rewrapped = await rotateMasterKey(db, { masterKey: nextMaster, otherMasterKeys: [newMaster] }, nextMaster);
  t.same(rewrapped, { caKeys: 1, certificateKeys: 1, accessKeySecrets: 1, eabKeys: 1 }, 'the item already under the next key is left');
  t.equal((await db.accessKey.findUniqueOrThrow({ where: { access: 'AKROTATIONTEST000002' } })).sealedSecret, sealedNow, 'unchanged');
  const nextOnly = createSealer(nextMaster);
  for (const key of await db.accessKey.findMany()) {
    t.equal(Buffer.from(nextOnly.unseal(key.sealedSecret, key.access)).toString(), secret, `${key.access} opens with the next key alone`);
  }
  const rotatedKeyRef = (await db.certificateAuthority.findUniqueOrThrow({ where: { id: caId } })).keyRef!;
  const nextStores = createKeyStores({ masterKey: nextMaster });
  t.ok(verify('sha256', data, publicKey, await nextStores.software.sign(rotatedKeyRef, 'EC256', 'SHA256', data)), 'and the CA key');
  t.same(
    await rotateMasterKey(db, { masterKey: nextMaster, otherMasterKeys: [newMaster] }, nextMaster),
    { caKeys: 0, certificateKeys: 0, accessKeySecrets: 0, eabKeys: 0 },
    'run again: nothing left to re-wrap',
  );
});
