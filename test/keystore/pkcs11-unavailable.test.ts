/**
 * A PKCS#11 key store that cannot be reached answers 503 (the contract's "key store unavailable"), never 500: a
 * native module that does not load, a token refusing to list or open sessions, a token removed under a running
 * store. A key that is genuinely gone from a reachable token stays a KeyStoreError (500).
 */
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import pkcs11js from 'pkcs11js';
import t from 'tap';
import { AppError } from '../../src/errors.ts';
import { lazyPkcs11KeyStore } from '../../src/keystore/index.ts';
import { KeyStoreError } from '../../src/keystore/key-store-errors.ts';
import { connect, disconnect } from '../../src/keystore/pkcs11-connection.ts';
import { createPkcs11KeyStore } from '../../src/keystore/pkcs11-key-store.ts';
import { SOFTHSM_LIBRARY, softHsmMissing, softHsmToken, tokenPrivateKeys } from './support.ts';

const data = Buffer.from('to be signed');
const is503 = (error: unknown) => error instanceof AppError && !(error instanceof KeyStoreError) && error.statusCode === 503;

t.test('a native module that fails to load is a 503 naming the cause, on every use until a restart', async (t) => {
  let loads = 0;
  const store = lazyPkcs11KeyStore({ library: SOFTHSM_LIBRARY, pin: '1' }, () => {
    loads++;
    return Promise.reject(new Error('pkcs11.node: wrong ELF class: ELFCLASS32'));
  });
  for (const attempt of [1, 2]) {
    const error = await store.sign('p11:00', 'EC256', 'SHA256', data).catch((e: unknown) => e);
    t.ok(is503(error), `use ${attempt}: a 503`);
    t.match((error as Error).message, /PKCS#11 module \(pkcs11js\) cannot be loaded, until a restart: pkcs11.node: wrong ELF class/);
  }
  t.equal(loads, 1, 'not loaded again: Node would answer the same error');
  await t.resolves(store.close(), 'closing a store that never loaded');
});

if (softHsmMissing) t.comment(`skipping the PKCS#11 cases: ${softHsmMissing}`);

t.test('SoftHSM2 token', { skip: softHsmMissing }, async (t) => {
  const LABEL = 'pca-unavailable';
  const PIN = '2468';
  const token = await softHsmToken(LABEL, PIN);
  t.teardown(() => rm(token.dir, { recursive: true, force: true }));
  const options = { library: SOFTHSM_LIBRARY, tokenLabel: LABEL, pin: PIN, sessions: 2 };

  t.test("the token's refusals while connecting are 503s, and the module is released", async (t) => {
    const refusals = [
      ['C_GetSlotList', 'CKR_DEVICE_REMOVED'],
      ['C_GetTokenInfo', 'CKR_TOKEN_NOT_PRESENT'],
      ['C_OpenSession', 'CKR_SESSION_COUNT'],
    ] as const;
    const prototype = pkcs11js.PKCS11.prototype as unknown as Record<string, unknown>;
    for (const [method, code] of refusals) {
      // Set on the wrapper's prototype before connect() makes its PKCS11 instance, so the instance answers with it.
      prototype[method] = () => {
        throw new pkcs11js.Pkcs11Error(code, pkcs11js[code], method);
      };
      const error = await connect(options).catch((e: unknown) => e);
      delete prototype[method];
      t.ok(is503(error), `${method} answering ${code}: a 503`);
      t.match((error as Error).message, `PKCS#11 token '${LABEL}' cannot be opened: ${code}`);
    }
    const conn = await connect(options);
    t.equal(conn.tokenLabel, LABEL, 'the module was finalised: the next connection initialises it afresh');
    await disconnect(conn);
  });

  t.test('a token removed under a running store is a 503 until it is back; a deleted key stays a KeyStoreError', async (t) => {
    const store = createPkcs11KeyStore(options);
    t.teardown(() => store.close());
    const { keyRef } = await store.generate('EC256');
    await store.sign(keyRef, 'EC256', 'SHA256', data); // its handle is now cached
    const tokens = path.join(token.dir, 'tokens');
    const aside = path.join(token.dir, 'tokens.removed');
    await rename(tokens, aside);
    for (const attempt of [1, 2]) {
      const error = await store.sign(keyRef, 'EC256', 'SHA256', data).catch((e: unknown) => e);
      t.ok(is503(error), `sign ${attempt} with the token gone: a 503, not a KeyStoreError`);
    }
    await rename(aside, tokens);
    t.ok((await store.sign(keyRef, 'EC256', 'SHA256', data)).length > 0, 'signs again once the token is back');

    t.equal((await tokenPrivateKeys(LABEL, PIN, keyRef.slice(4))).length, 1, 'deleted by another process');
    await t.rejects(store.sign(keyRef, 'EC256', 'SHA256', data), { name: 'KeyStoreError', statusCode: 500, message: /not found on token/ });
  });
});
