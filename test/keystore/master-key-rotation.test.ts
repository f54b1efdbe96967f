/** Master-key rotation re-wraps every sealed item (EAB keys included); CA keys stay the same keys, the old master key stops working. */
import { randomUUID, verify } from 'node:crypto';
import t from 'tap';
import { createKeyStores } from '../../src/keystore/index.ts';
import { rotateMasterKey } from '../../src/keystore/master-key-rotation.ts';
import { createSealer, eabSealingAad } from '../../src/keystore/sealing.ts';
import { testDatabase } from '../helpers/database.ts';

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
await db.certificate.create({
  data: {
    id: certificateId,
    domainId: 'd1',
    issuerId: caId,
    status: 'ISSUED',
    genMode: 'GENERATE',
    keyAlgorithm: 'EC256',
    signatureAlgorithm: 'SHA256',
    serialNumber: '01',
    notBefore: new Date(),
    notAfter: new Date(Date.now() + 1e9),
    certificateDer: new Uint8Array([0x30, 0]),
    sealedPrivateKey: createSealer(oldMaster).seal(certificateKey, certificateId),
  },
});
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

const counts = await rotateMasterKey(db, oldMaster, newMaster);

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

t.test('rotating to the same key is refused', async (t) => {
  await t.rejects(rotateMasterKey(db, newMaster, newMaster), /equals the current one/);
});
