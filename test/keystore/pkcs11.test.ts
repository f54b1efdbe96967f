import { createPublicKey, randomBytes, verify } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import pkcs11js from 'pkcs11js';
import t, { type Test } from 'tap';
import { AppError } from '../../src/errors.ts';
import { KeyStoreError } from '../../src/keystore/key-store-errors.ts';
import { createPkcs11KeyStore, type Pkcs11KeyStoreOptions } from '../../src/keystore/pkcs11-key-store.ts';
import type { HashAlgorithm, KeyAlgorithm } from '../../src/x509/algorithms.ts';
import {
  allowDecryptInOtherApplication,
  generateInOtherApplication,
  opensslVerifies,
  run,
  SOFTHSM_LIBRARY,
  softHsmToken,
  tokenPrivateKeys,
  type TokenPrivateKey,
} from './support.ts';

const LABEL = 'pca-keystore-test';
const PIN = '4711';
const token = await softHsmToken(LABEL, PIN);
t.teardown(() => rm(token.dir, { recursive: true, force: true }));
const options: Pkcs11KeyStoreOptions = { library: SOFTHSM_LIBRARY, tokenLabel: LABEL, pin: PIN };

/** Another PKCS#11 application's view of the token's private keys: ID (hex) -> flags. */
async function privateKeysOnToken(): Promise<Map<string, TokenPrivateKey>> {
  return new Map((await tokenPrivateKeys(LABEL, PIN)).map((key) => [key.id, key]));
}

const CASES: [KeyAlgorithm, HashAlgorithm[]][] = [
  ['EC256', ['SHA256', 'SHA384', 'SHA512']],
  ['EC384', ['SHA384']],
  ['EC521', ['SHA512']],
  ['RSA2048', ['SHA256', 'SHA384', 'SHA512']],
  ['RSA3072', ['SHA256']],
  ['RSA4096', ['SHA512']],
];

// Failures first, while no store of this process is logged in (the login state is shared per process).
t.test('unusable stores fail with clear 503s and nothing crashes', async (t) => {
  const failure = async (opts: Pkcs11KeyStoreOptions) => {
    const store = createPkcs11KeyStore(opts);
    const error = await store.check().catch((e: unknown) => e);
    await store.close();
    t.ok(error instanceof AppError && error.statusCode === 503, 'a 503');
    return (error as Error).message;
  };
  t.match(await failure({ ...options, pin: '0000' }), `PKCS#11 login to token '${LABEL}' failed: wrong PIN`);
  t.match(
    await failure({ ...options, tokenLabel: 'no-such-token' }),
    /no PKCS#11 token labelled 'no-such-token' \(initialised tokens: 'pca-keystore-test'\)/,
  );
  t.match(await failure({ library: SOFTHSM_LIBRARY, slot: 3, pin: PIN }), /no initialised PKCS#11 token at slot index 3/);
  t.match(
    await failure({ ...options, library: '/usr/lib/no-such-pkcs11.so' }),
    /PKCS#11 library \/usr\/lib\/no-such-pkcs11.so cannot be loaded: .*No such file/,
  );

  const store = createPkcs11KeyStore({ ...options, pin: '0000' });
  await t.rejects(store.generate('EC256'), { statusCode: 503, message: /wrong PIN/ }, 'operations fail the same way');
  await store.close();
});

// OpenSC's pkcs11-spy sits between the store and SoftHSM2 and logs every call the store makes to the token.
const PKCS11_SPY = '/usr/lib/x86_64-linux-gnu/pkcs11-spy.so';
t.test(
  'a PIN the token refused is not tried again: anonymous requests cannot count down its retry counter',
  { skip: existsSync(PKCS11_SPY) ? false : `${PKCS11_SPY} missing (Debian package opensc-pkcs11; .ci/run installs it)` },
  async (t) => {
    const spyLog = path.join(token.dir, 'spy.log');
    // A process of its own: the spy and SoftHSM2 are loaded and initialised once per process.
    const child = `
      const { createPkcs11KeyStore } = await import(${JSON.stringify(new URL('../../src/keystore/pkcs11-key-store.ts', import.meta.url).href)});
      const store = createPkcs11KeyStore({ library: ${JSON.stringify(PKCS11_SPY)}, tokenLabel: ${JSON.stringify(LABEL)}, pin: '0000' });
      const messages = [];
      for (let i = 0; i < 5; i++) messages.push(await store.check().then(() => 'ok', (error) => error.message));
      messages.push(await store.generate('EC256').then(() => 'ok', (error) => error.message));
      await store.close();
      console.log(JSON.stringify(messages));`;
    const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', child], {
      env: { ...process.env, PKCS11SPY: SOFTHSM_LIBRARY, PKCS11SPY_OUTPUT: spyLog },
    });
    const messages = JSON.parse(stdout.trim().split('\n').pop()!) as string[];
    t.equal(messages.length, 6);
    for (const message of messages) t.match(message, /wrong PIN; not tried again until the service restarts/);
    const logins = (await readFile(spyLog, 'utf8')).match(/C_Login/g) ?? [];
    t.equal(logins.length, 1, 'one C_Login for six operations');
  },
);

t.test('PKCS#11 key store on SoftHSM2', async (t) => {
  const store = createPkcs11KeyStore(options);
  t.equal(store.kind, 'pkcs11');
  await store.check();
  const data = randomBytes(1000);
  const generated = new Map<KeyAlgorithm, { keyRef: string; spki: Uint8Array }>();

  for (const [alg, hashes] of CASES) {
    t.test(`${alg}: generate on the token, sign, openssl verifies`, async (t) => {
      const key = await store.generate(alg);
      generated.set(alg, key);
      t.match(key.keyRef, /^p11:[0-9a-f]{32}$/);
      for (const hash of hashes) {
        const signature = await store.sign(key.keyRef, alg, hash, data);
        t.ok(await opensslVerifies(key.spki, hash, data, signature), `${hash} signature verifies`);
        t.notOk(await opensslVerifies(key.spki, hash, randomBytes(1000), signature), 'and not over other data');
      }
    });
  }

  t.test('keys are sensitive, never extractable, sign only, and cannot be changed or copied on the token', async (t) => {
    const onToken = await privateKeysOnToken();
    t.equal(onToken.size, CASES.length, 'one private key object per generated key, no leftovers');
    for (const [alg, { keyRef }] of generated) {
      const key = onToken.get(keyRef.slice('p11:'.length));
      t.ok(key, `${alg} key is on the token`);
      t.same(
        key && { ...key, id: undefined },
        {
          id: undefined,
          sensitive: true,
          neverExtractable: true,
          modifiable: false,
          copyable: false,
          signRecover: false,
          decrypt: false,
          unwrap: false,
          derive: false,
        },
        `${alg} key attributes`,
      );
    }
    // With the PIN, another application cannot turn a CA key into a decryption key.
    const rsa = generated.get('RSA2048')!.keyRef.slice('p11:'.length);
    // CKR_ACTION_PROHIBITED (0x1b, PKCS#11 2.40: the object is not modifiable) on SoftHSM2; CKR_ATTRIBUTE_READ_ONLY
    // (0x10) on tokens of the 2.20 era.
    t.ok([0x1b, 0x10].includes(await allowDecryptInOtherApplication(LABEL, PIN, rsa)), 'CKA_DECRYPT=true refused');
    t.equal((await privateKeysOnToken()).get(rsa)?.decrypt, false, 'and still false');
  });

  t.test('50 concurrent signatures on one key all verify', async (t) => {
    for (const alg of ['EC256', 'RSA2048'] as const) {
      const { keyRef, spki } = generated.get(alg)!;
      const publicKey = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
      const messages = Array.from({ length: 50 }, () => randomBytes(100));
      const signatures = await Promise.all(messages.map((message) => store.sign(keyRef, alg, 'SHA256', message)));
      t.equal(signatures.filter((sig, i) => verify('sha256', messages[i], publicKey, sig)).length, 50, alg);
    }
  });

  t.test('signatures asked while a slow key is being generated wait for it, then verify', async (t) => {
    const { keyRef, spki } = generated.get('EC256')!;
    const publicKey = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
    let generatedAt = 0;
    const generation = store.generate('RSA3072').then((key) => {
      generatedAt = performance.now();
      return key;
    });
    const signed = await Promise.all(
      Array.from({ length: 20 }, () =>
        store.sign(keyRef, 'EC256', 'SHA256', data).then((signature) => ({ signature, at: performance.now() })),
      ),
    );
    await generation;
    t.ok(
      signed.every(({ at }) => at >= generatedAt),
      'every signature answered after the generation',
    );
    t.ok(
      signed.every(({ signature }) => verify('sha256', data, publicKey, signature)),
      'and each verifies',
    );
    await store.destroy((await generation).keyRef);
  });

  // SoftHSM2 fails a key-pair generation now and then when another thread of the process signs, looks a key up or
  // generates meanwhile (softhsm/SoftHSMv2#573): CA creations racing issuance and each other must all succeed.
  t.test('generations racing signatures, look-ups and each other all succeed', async (t) => {
    const { keyRef: busyKey } = generated.get('EC256')!;
    const made: { keyRef: string; spki: Uint8Array; signature: Uint8Array }[] = [];
    const failures: unknown[] = [];
    for (let round = 0; round < 6; round++) {
      const work = Array.from({ length: 30 }, async () => {
        const generation = store.generate('EC256').then(async (key) => {
          const signature = await store.sign(key.keyRef, 'EC256', 'SHA256', data); // a look-up of the new key
          made.push({ ...key, signature });
        });
        const busy = Array.from({ length: 5 }, () => store.sign(busyKey, 'EC256', 'SHA256', data));
        return Promise.all([generation, ...busy]);
      });
      failures.push(...(await Promise.allSettled(work)).filter((result) => result.status === 'rejected').map((result) => result.reason));
    }
    t.same(failures, [], 'no operation failed');
    t.equal(new Set(made.map(({ keyRef }) => keyRef)).size, 180, '180 distinct keys');
    const verified = made.filter(({ spki, signature }) =>
      verify('sha256', data, createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' }), signature),
    );
    t.equal(verified.length, 180, 'each signs with its own key');
    await Promise.all(made.map(({ keyRef }) => store.destroy(keyRef)));
    const onToken = await privateKeysOnToken();
    t.notOk(
      made.some(({ keyRef }) => onToken.has(keyRef.slice('p11:'.length))),
      'all destroyed',
    );
  });

  t.test('wrong algorithm, unknown and malformed keyRefs', async (t) => {
    const { keyRef } = generated.get('EC384')!;
    await t.rejects(store.sign(keyRef, 'EC256', 'SHA256', data), { name: 'KeyStoreError', message: /is EC384, not EC256/ });
    await t.rejects(store.sign(generated.get('RSA2048')!.keyRef, 'RSA4096', 'SHA256', data), { message: /is RSA2048, not RSA4096/ });
    const unknown = `p11:${randomBytes(16).toString('hex')}`;
    await t.rejects(store.sign(unknown, 'EC256', 'SHA256', data), { message: /not found on token 'pca-keystore-test'/ });
    await t.rejects(store.sign('sw1:abc:def', 'EC256', 'SHA256', data), KeyStoreError);
    await t.rejects(store.destroy('p11:xyz'), { message: /not a PKCS#11 key reference/ });
  });

  t.test('destroy removes the key from the token', async (t) => {
    const { keyRef } = await store.generate('EC256');
    t.ok((await privateKeysOnToken()).has(keyRef.slice(4)));
    await store.sign(keyRef, 'EC256', 'SHA256', data);
    await store.destroy(keyRef);
    t.notOk((await privateKeysOnToken()).has(keyRef.slice(4)), 'gone');
    await t.rejects(store.sign(keyRef, 'EC256', 'SHA256', data), { message: /not found/ });
  });

  t.test('a key deleted by another process is reported, not crashed on', async (t) => {
    const { keyRef } = await store.generate('EC256');
    await store.sign(keyRef, 'EC256', 'SHA256', data); // its handle is now cached
    t.equal((await tokenPrivateKeys(LABEL, PIN, keyRef.slice(4))).length, 1, 'deleted by another process');
    // The stale handle is not believed alone (a removed token answers so too): the key is looked up after a reload.
    await t.rejects(store.sign(keyRef, 'EC256', 'SHA256', data), { name: 'KeyStoreError', message: /not found on token/ });
    await t.rejects(store.sign(keyRef, 'EC256', 'SHA256', data), { name: 'KeyStoreError', message: /not found on token/ });
  });

  t.test('keys another process generates are found, though this process wrote to the token since', async (t) => {
    // SoftHSM2 adopts the token's generation counter on its own writes, so the other key stays out of this
    // process's object list (the 4-process test met it: a root made through one server, signed with through another).
    const signed = await generateInOtherApplication(LABEL, PIN);
    await store.destroy((await store.generate('EC256')).keyRef); // this process writes after the other did
    const signature = await store.sign(`p11:${signed.id}`, 'EC256', 'SHA256', data);
    t.ok(verify('sha256', data, signed.publicKey, signature), 'signs with the key the other process generated');

    const destroyed = await generateInOtherApplication(LABEL, PIN);
    await store.destroy((await store.generate('EC256')).keyRef);
    await store.destroy(`p11:${destroyed.id}`);
    t.notOk((await privateKeysOnToken()).has(destroyed.id), 'destroy leaves no key behind');
    await store.destroy(`p11:${destroyed.id}`); // absent after a reload: gone, as asked
    await store.destroy(`p11:${signed.id}`);
  });

  // A second handle on the module is the same PKCS#11 application: closing all its sessions closes the store's.
  const closeAllSessions = () => {
    const intruder = new pkcs11js.PKCS11();
    intruder.load(SOFTHSM_LIBRARY);
    t.throws(() => intruder.C_Initialize(), { code: pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED });
    for (const slot of intruder.C_GetSlotList(true)) intruder.C_CloseAllSessions(slot);
  };
  /**
   * Faults are injected on the wrapper's prototype: each connection's PKCS11 instance takes its methods from it when
   * made, so a fault reaches the connections made after it is set. The native methods stay one level down.
   */
  const wrapper = pkcs11js.PKCS11.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
  const native = Object.getPrototypeOf(wrapper) as Record<string, (...args: unknown[]) => unknown>;
  /** An error as the native module raises it, so pkcs11js turns it into a Pkcs11Error with that code. */
  const nativeError = (name: 'CKR_SESSION_HANDLE_INVALID' | 'CKR_DEVICE_ERROR' | 'CKR_GENERAL_ERROR') =>
    new Error(`${name}:${pkcs11js[name]}`);

  /** The first signature on a connection made from here on never comes back until released (with an error). */
  function hangFirstSignature(t: Test) {
    let release: ((error: Error) => void) | undefined;
    let reached!: () => void;
    const hanging = new Promise<void>((resolve) => {
      reached = resolve;
    });
    wrapper.C_SignCallback = function (this: unknown, ...args: unknown[]) {
      if (release) return native.C_SignCallback!.apply(this, args);
      release = args[3] as (error: Error) => void;
      reached();
    };
    t.teardown(() => delete wrapper.C_SignCallback);
    return { reached: hanging, isHanging: () => release !== undefined, release: (error: Error) => release!(error) };
  }

  t.test('a lost session is replaced within the call; a 503 only when the new one is lost too', async (t) => {
    const { keyRef, spki } = generated.get('EC256')!;
    closeAllSessions();
    t.ok(await opensslVerifies(spki, 'SHA256', data, await store.sign(keyRef, 'EC256', 'SHA256', data)), 'signed on a new connection');
    await store.check();

    let refusals = 0;
    wrapper.C_SignInit = function (this: unknown, ...args: unknown[]) {
      if (refusals++ === 0) throw nativeError('CKR_SESSION_HANDLE_INVALID');
      return native.C_SignInit!.apply(this, args);
    };
    t.teardown(() => delete wrapper.C_SignInit);
    closeAllSessions(); // the connection in use is lost, and its replacement loses its session at its first signature
    await t.rejects(store.sign(keyRef, 'EC256', 'SHA256', data), {
      statusCode: 503,
      message: /PKCS#11 token 'pca-keystore-test' is unavailable: CKR_SESSION_HANDLE_INVALID/,
    });
    t.equal(refusals, 1, 'the replacement was tried once');
    t.ok(await opensslVerifies(spki, 'SHA256', data, await store.sign(keyRef, 'EC256', 'SHA256', data)), 'the next call signs');
  });

  t.test('a call hung on a lost connection holds up its replacement for a bounded time, then is retried on it', async (t) => {
    const { keyRef, spki } = generated.get('EC256')!;
    const hung = hangFirstSignature(t);
    closeAllSessions();
    await store.check(); // a new connection, made with the fault
    const stuck = store.sign(keyRef, 'EC256', 'SHA256', data);
    await hung.reached;

    closeAllSessions(); // lost under the hung call
    const signature = await store.sign(keyRef, 'EC256', 'SHA256', data);
    t.ok(await opensslVerifies(spki, 'SHA256', data, signature), 'signed on a new connection while the old one still hangs');
    hung.release(nativeError('CKR_SESSION_HANDLE_INVALID'));
    t.ok(await opensslVerifies(spki, 'SHA256', data, await stuck), 'the hung call, once it fails, signs on the new connection');
  });

  t.test("a connection replaced beside a hung call closes no session when the call ends: the handles may be its successor's", async (t) => {
    const { keyRef, spki } = generated.get('EC256')!;
    const hung = hangFirstSignature(t);
    // While the first signature hangs, the next one loses the connection (its sessions stay open on the token).
    let lost = false;
    wrapper.C_SignInit = function (this: unknown, ...args: unknown[]) {
      if (hung.isHanging() && !lost) {
        lost = true;
        throw nativeError('CKR_DEVICE_ERROR');
      }
      return native.C_SignInit!.apply(this, args);
    };
    const closed: unknown[] = [];
    wrapper.C_CloseSession = function (this: unknown, ...args: unknown[]) {
      closed.push(args[0]);
      return native.C_CloseSession!.apply(this, args);
    };
    t.teardown(() => {
      delete wrapper.C_SignInit;
      delete wrapper.C_CloseSession;
    });
    closeAllSessions();
    await store.check(); // a new connection, made with the faults
    const stuck = store.sign(keyRef, 'EC256', 'SHA256', data);
    await hung.reached;
    t.ok(await opensslVerifies(spki, 'SHA256', data, await store.sign(keyRef, 'EC256', 'SHA256', data)), 'signed on the successor');
    hung.release(nativeError('CKR_SESSION_HANDLE_INVALID'));
    t.ok(await opensslVerifies(spki, 'SHA256', data, await stuck), 'the hung call, once it fails, signs on the successor');
    await new Promise((resolve) => setImmediate(resolve)); // the replaced connection's drain has ended
    t.same(closed, [], 'no session closed by the replaced connection');
    await store.check();
  });

  for (const cut of ['CKR_DEVICE_ERROR', 'CKR_GENERAL_ERROR'] as const) {
    t.test(`a key generation cut off by ${cut} after the token stored the key is redone on a new connection: one key per id`, async (t) => {
      let generations = 0;
      wrapper.C_GenerateKeyPairCallback = function (this: unknown, ...args: unknown[]) {
        const done = args[4] as (error: Error | null, keys: unknown) => void;
        return native.C_GenerateKeyPairCallback!.call(this, ...args.slice(0, 4), (error: Error | null, keys: unknown) => {
          if (!error && ++generations === 1) done(nativeError(cut), null);
          else done(error, keys);
        });
      };
      t.teardown(() => delete wrapper.C_GenerateKeyPairCallback);
      closeAllSessions();
      await store.check(); // on a new connection, made with the fault

      const { keyRef, spki } = await store.generate('EC256');
      t.equal(generations, 2, 'generated again after the cut');
      const id = keyRef.slice('p11:'.length);
      t.equal((await tokenPrivateKeys(LABEL, PIN)).filter((key) => key.id === id).length, 1, 'one private key with its id on the token');
      t.ok(await opensslVerifies(spki, 'SHA256', data, await store.sign(keyRef, 'EC256', 'SHA256', data)), 'the key signs');
      await store.destroy(keyRef);
    });
  }

  await t.test('close', async (t) => {
    await store.close();
    await t.rejects(store.sign(generated.get('EC256')!.keyRef, 'EC256', 'SHA256', data), { statusCode: 503, message: /closed/ });
    await store.close();
  });

  t.test('keys survive re-opening the store (a fresh module load)', async (t) => {
    const reopened = createPkcs11KeyStore({ library: SOFTHSM_LIBRARY, slot: 0, pin: PIN, sessions: 1 });
    await reopened.check();
    for (const [alg, { keyRef, spki }] of generated) {
      const hash: HashAlgorithm = 'SHA384';
      const signature = await reopened.sign(keyRef, alg, hash, data);
      t.ok(await opensslVerifies(spki, hash, data, signature), `${alg} key still signs`);
    }
    const publicKey = createPublicKey({ key: Buffer.from(generated.get('EC256')!.spki), format: 'der', type: 'spki' });
    const { keyRef } = generated.get('EC256')!;
    const signatures = await Promise.all(Array.from({ length: 20 }, () => reopened.sign(keyRef, 'EC256', 'SHA256', data)));
    t.ok(
      signatures.every((sig) => verify('sha256', data, publicKey, sig)),
      'one session serializes 20 concurrent calls',
    );
    await reopened.close();
  });
});
