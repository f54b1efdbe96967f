import { createPrivateKey, createPublicKey, randomBytes, verify } from 'node:crypto';
import t from 'tap';
import { AppError } from '../../src/errors.ts';
import { createKeyStores, keyStoreSigner } from '../../src/keystore/index.ts';
import { KeyStoreError } from '../../src/keystore/key-store-errors.ts';
import { createSealer } from '../../src/keystore/sealing.ts';
import { createSoftwareKeyStore, rewrapKeyRef } from '../../src/keystore/software-key-store.ts';
import type { HashAlgorithm, KeyAlgorithm } from '../../src/x509/algorithms.ts';
import { nextTurn, settledWithoutTheLoop } from '../helpers/event-loop.ts';
import { opensslVerifies } from './support.ts';

const sealer = createSealer(randomBytes(32));
const otherSealer = createSealer(randomBytes(32));

t.test('sealing', async (t) => {
  t.test('round trip, format and fresh randomness', async (t) => {
    for (const size of [0, 1, 100, 5000]) {
      const plaintext = randomBytes(size);
      const sealed = sealer.seal(plaintext, 'key-1');
      t.ok(Buffer.from(sealer.unseal(sealed, 'key-1')).equals(plaintext), `${size} bytes come back`);
      const parts = sealed.split('.');
      t.equal(parts.length, 4);
      t.equal(parts[0], 'v1');
      t.equal(parts[1], sealer.fingerprint);
      t.match(sealed, /^v1(\.[A-Za-z0-9_-]+){3}$/);
    }
    const plaintext = randomBytes(64);
    const [a, b] = [sealer.seal(plaintext, 'k'), sealer.seal(plaintext, 'k')];
    t.not(a.split('.')[2], b.split('.')[2], 'each item has its own data key');
    t.not(a.split('.')[3], b.split('.')[3]);
    t.not(sealer.fingerprint, otherSealer.fingerprint);
  });

  t.test('changing any single character is detected', async (t) => {
    // 100 and 101 bytes: bodies with and without spare base64 bits in their last character.
    for (const size of [100, 101]) {
      const plaintext = randomBytes(size);
      const sealed = sealer.seal(plaintext, 'key-1');
      let detected = 0;
      for (let i = 0; i < sealed.length; i++) {
        const replacement = sealed[i] === 'A' ? 'B' : 'A';
        const tampered = sealed.slice(0, i) + replacement + sealed.slice(i + 1);
        try {
          sealer.unseal(tampered, 'key-1');
        } catch (error) {
          if (error instanceof KeyStoreError) detected++;
        }
      }
      t.equal(detected, sealed.length, `all ${sealed.length} positions (${size}-byte plaintext)`);
    }
  });

  t.test('each part has its own message', async (t) => {
    const sealed = sealer.seal(randomBytes(32), 'key-1');
    const withPart = (index: number, value: string) =>
      sealed
        .split('.')
        .map((part, i) => (i === index ? value : part))
        .join('.');
    const flip = (part: string) => (part[0] === 'A' ? 'B' : 'A') + part.slice(1);
    const parts = sealed.split('.');
    t.throws(() => sealer.unseal(withPart(0, 'v2'), 'key-1'), { name: 'KeyStoreError', message: /unsupported format/ });
    t.throws(() => sealer.unseal(withPart(1, flip(parts[1])), 'key-1'), { message: /different master key/ });
    t.throws(() => sealer.unseal(withPart(2, flip(parts[2])), 'key-1'), { message: /authentication \(wrapped data key\)/ });
    t.throws(() => sealer.unseal(withPart(3, flip(parts[3])), 'key-1'), { message: /authentication \(encrypted body\)/ });
    t.throws(() => sealer.unseal(withPart(3, parts[3].slice(0, 20)), 'key-1'), KeyStoreError, 'truncated body');
    t.throws(() => sealer.unseal(withPart(2, `${parts[2]}!`), 'key-1'), { message: /malformed/ });
    t.throws(() => sealer.unseal(`${sealed}.x`, 'key-1'), { message: /malformed/ });
    t.throws(() => sealer.unseal('', 'key-1'), KeyStoreError);
  });

  t.test('the aad binds the item to its key id', async (t) => {
    const sealed = sealer.seal(randomBytes(32), 'key-1');
    t.throws(() => sealer.unseal(sealed, 'key-2'), { name: 'KeyStoreError', message: /different key id/ });
  });

  t.test('a different master key is named as such', async (t) => {
    const sealed = sealer.seal(randomBytes(32), 'key-1');
    t.throws(() => otherSealer.unseal(sealed, 'key-1'), {
      name: 'KeyStoreError',
      message: /sealed with a different master key/,
    });
    t.throws(() => createSealer(randomBytes(16)), { message: /32 bytes/ });
  });

  t.test('rewrap moves the item to the new master key and touches only the wrapped data key', async (t) => {
    const plaintext = randomBytes(200);
    const sealed = sealer.seal(plaintext, 'key-1');
    const rewrapped = sealer.rewrap(sealed, 'key-1', otherSealer);
    const [before, after] = [sealed.split('.'), rewrapped.split('.')];
    t.equal(after[0], 'v1');
    t.equal(after[1], otherSealer.fingerprint);
    t.not(after[2], before[2], 'new wrapped data key');
    t.equal(after[3], before[3], 'body unchanged');
    t.ok(Buffer.from(otherSealer.unseal(rewrapped, 'key-1')).equals(plaintext));
    t.throws(() => sealer.unseal(rewrapped, 'key-1'), { message: /different master key/ });
    t.throws(() => sealer.rewrap(sealed, 'key-2', otherSealer), KeyStoreError, 'wrong aad');
    const badBody = [...before.slice(0, 3), (before[3][0] === 'A' ? 'B' : 'A') + before[3].slice(1)].join('.');
    t.throws(() => sealer.rewrap(badBody, 'key-1', otherSealer), { message: /encrypted body/ }, 'checks the body first');
    const imposter = { ...otherSealer };
    t.throws(() => sealer.rewrap(sealed, 'key-1', imposter), { message: /createSealer/ });
  });
});

const CASES: [KeyAlgorithm, HashAlgorithm[]][] = [
  ['EC256', ['SHA256', 'SHA384', 'SHA512']],
  ['EC384', ['SHA384']],
  ['EC521', ['SHA512']],
  ['RSA2048', ['SHA256', 'SHA512']],
  ['RSA3072', ['SHA384']],
  ['RSA4096', ['SHA256']],
];

t.test('software key store', async (t) => {
  const store = createSoftwareKeyStore({ sealer });
  t.equal(store.kind, 'software');
  await store.check();
  const data = randomBytes(1000);

  for (const [alg, hashes] of CASES) {
    t.test(`${alg}: generate, sign, openssl verifies`, async (t) => {
      const { keyRef, spki } = await store.generate(alg);
      t.match(keyRef, /^sw1:[A-Za-z0-9_-]{22}:v1\.[A-Za-z0-9_.-]+$/);
      for (const hash of hashes) {
        const signature = await store.sign(keyRef, alg, hash, data);
        t.ok(await opensslVerifies(spki, hash, data, signature), `${hash} signature verifies`);
        t.notOk(await opensslVerifies(spki, hash, randomBytes(1000), signature), 'and not over other data');
      }

      // The test may unseal (it holds the sealer) to get the private key and search the keyRef for it.
      const keyId = keyRef.split(':')[1];
      const pkcs8 = Buffer.from(sealer.unseal(keyRef.split(':')[2], keyId));
      const privateKey = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
      t.ok(
        Buffer.from(createPublicKey(privateKey).export({ type: 'spki', format: 'der' })).equals(Buffer.from(spki)),
        'the SPKI is the public half of the sealed key',
      );
      const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
      const pemLines = pem.split('\n').filter((line) => line && !line.startsWith('-----'));
      const forms = [
        pkcs8.toString('hex'),
        pkcs8.toString('base64'),
        pkcs8.toString('base64url'),
        pkcs8.toString('latin1'),
        pem,
        ...pemLines,
      ];
      t.notOk(
        forms.some((form) => keyRef.includes(form)),
        'no PKCS#8 (DER, hex, base64, base64url, PEM) in the keyRef',
      );
      t.notOk(Buffer.from(keyRef, 'latin1').includes(pkcs8.subarray(pkcs8.length - 32)), 'nor the private value');
    });
  }

  t.test('wrong algorithm, foreign master key, malformed keyRef', async (t) => {
    const { keyRef } = await store.generate('EC256');
    await t.rejects(store.sign(keyRef, 'EC384', 'SHA256', data), { name: 'KeyStoreError', message: /is EC256, not EC384/ });
    const foreign = createSoftwareKeyStore({ sealer: otherSealer });
    await t.rejects(foreign.sign(keyRef, 'EC256', 'SHA256', data), { message: /different master key/ });
    await t.rejects(store.sign('p11:00ff', 'EC256', 'SHA256', data), { message: /not a software key reference/ });
    const [prefix, keyId, sealed] = keyRef.split(':');
    const stolenBlob = `${prefix}:${'A'.repeat(keyId.length)}:${sealed}`;
    await t.rejects(store.sign(stolenBlob, 'EC256', 'SHA256', data), { message: /different key id/ }, 'blob bound to its id');
  });

  t.test('50 concurrent signatures, all valid', async (t) => {
    const { keyRef, spki } = await store.generate('EC256');
    const publicKey = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
    const messages = Array.from({ length: 50 }, () => randomBytes(64));
    const signatures = await Promise.all(messages.map((message) => store.sign(keyRef, 'EC256', 'SHA256', message)));
    t.equal(signatures.filter((sig, i) => verify('sha256', messages[i], publicKey, sig)).length, 50);
  });

  t.test("a P-256 key's signatures are made in place, a P-384 key's on the pool", async (t) => {
    const ec256 = await store.generate('EC256');
    const ec384 = await store.generate('EC384');
    await nextTurn();
    const burst = [1, 2, 3].map(() => store.sign(ec256.keyRef, 'EC256', 'SHA256', data));
    t.same(await settledWithoutTheLoop(burst), [true, true, true], 'a burst of P-256 signatures: all in place');
    const publicKey = createPublicKey({ key: Buffer.from(ec256.spki), format: 'der', type: 'spki' });
    t.ok(
      (await Promise.all(burst)).every((signature) => verify('sha256', data, publicKey, signature)),
      'all three verify',
    );
    await nextTurn();
    const slow = [1, 2].map(() => store.sign(ec384.keyRef, 'EC384', 'SHA384', data));
    t.same(await settledWithoutTheLoop(slow), [false, false], 'P-384 signatures (~0.8 ms each) on the pool');
    const publicKey384 = createPublicKey({ key: Buffer.from(ec384.spki), format: 'der', type: 'spki' });
    t.ok(
      (await Promise.all(slow)).every((signature) => verify('sha384', data, publicKey384, signature)),
      'both verify',
    );
  });

  t.test('master-key rotation with rewrapKeyRef', async (t) => {
    const { keyRef, spki } = await store.generate('EC256');
    const rotated = rewrapKeyRef(keyRef, sealer, otherSealer);
    t.equal(rotated.split(':')[1], keyRef.split(':')[1], 'same key id');
    const rotatedStore = createSoftwareKeyStore({ sealer: otherSealer });
    const signature = await rotatedStore.sign(rotated, 'EC256', 'SHA256', data);
    t.ok(await opensslVerifies(spki, 'SHA256', data, signature));
    await t.rejects(store.sign(rotated, 'EC256', 'SHA256', data), { message: /different master key/ });
    await rotatedStore.destroy(rotated);
    await rotatedStore.close();
  });
});

t.test('factory and signer adapter', async (t) => {
  const stores = createKeyStores({ masterKey: randomBytes(32) });
  t.equal(stores.get('software'), stores.software);
  t.equal(stores.pkcs11, undefined);
  t.throws(() => stores.get('pkcs11'), { statusCode: 503, message: /pkcs11 key store is not configured/ });
  const withToken = createKeyStores({ masterKey: randomBytes(32), pkcs11: { library: '/nowhere.so', pin: '1' } });
  t.equal(withToken.get('pkcs11').kind, 'pkcs11', 'configured, not touched until used');
  const error = await withToken
    .get('pkcs11')
    .check()
    .catch((e: unknown) => e);
  t.ok(error instanceof AppError && error.statusCode === 503, 'an unusable token is a 503');

  const { keyRef, spki } = await stores.software.generate('EC384');
  const signer = keyStoreSigner(stores.software, keyRef, 'EC384');
  t.equal(signer.keyAlgorithm, 'EC384');
  const data = randomBytes(100);
  t.ok(await opensslVerifies(spki, 'SHA384', data, await signer.sign('SHA384', data)));
});
