/**
 * SoftHSM2 reads its token folders once, when the module initialises; a token another process is writing at that
 * moment can fail its integrity check and be left out (softhsm/SoftHSMv2#757), so a server started then answered 503
 * "no PKCS#11 token" (the 4-process CI test met it); or the token is listed and its C_GetTokenInfo answers
 * CKR_GENERAL_ERROR until the module is initialised again (the same test met a 503 "cannot be opened" later).
 * connect() finalises the module and looks again. Here the token's folder is moved away before the first attempt
 * and put back during the pause, or the refusal is injected once: no timing is involved.
 */
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import pkcs11js from 'pkcs11js';
import t from 'tap';
import { AppError } from '../../src/errors.ts';
import { connect, disconnect } from '../../src/keystore/pkcs11-connection.ts';
import { SOFTHSM_LIBRARY, softHsmToken } from './support.ts';

const LABEL = 'pca-late-token';
const PIN = '8642';
const token = await softHsmToken(LABEL, PIN);
t.teardown(() => rm(token.dir, { recursive: true, force: true }));

const tokens = path.join(token.dir, 'tokens');
const aside = path.join(token.dir, 'aside');
await mkdir(aside);
const [tokenFolder] = await readdir(tokens);

const takeAway = () => rename(path.join(tokens, tokenFolder!), path.join(aside, tokenFolder!));
const putBack = () => rename(path.join(aside, tokenFolder!), path.join(tokens, tokenFolder!));
const options = { library: SOFTHSM_LIBRARY, tokenLabel: LABEL, pin: PIN, sessions: 1 };

t.test('a token missing when the module first initialised is found once it is back', async (t) => {
  await takeAway();
  const pauses: number[] = [];
  const conn = await connect(options, async (attempt) => {
    pauses.push(attempt);
    await putBack();
  });
  t.same(pauses, [1], 'one pause, then the second initialisation found it');
  t.equal(conn.tokenLabel, LABEL);
  await disconnect(conn);
});

t.test('a token the first initialisation lists but refuses is opened after the module is initialised again', async (t) => {
  const wrapper = pkcs11js.PKCS11.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
  const native = Object.getPrototypeOf(wrapper) as Record<string, (...args: unknown[]) => unknown>;
  let refusals = 0;
  // On the wrapper's prototype before connect() makes its PKCS11 instance; raised as the native module raises it.
  wrapper.C_GetTokenInfo = function (this: unknown, ...args: unknown[]) {
    if (refusals++ === 0) throw new Error(`CKR_GENERAL_ERROR:${pkcs11js.CKR_GENERAL_ERROR}`);
    return native.C_GetTokenInfo!.apply(this, args);
  };
  t.teardown(() => delete wrapper.C_GetTokenInfo);
  const pauses: number[] = [];
  const conn = await connect(options, async (attempt) => {
    pauses.push(attempt);
  });
  t.same(pauses, [1], 'one pause, then the second initialisation opened it');
  t.equal(conn.tokenLabel, LABEL);
  await disconnect(conn);
});

t.test('a token that stays missing is a 503 naming the label, after three initialisations', async (t) => {
  await takeAway();
  const pauses: number[] = [];
  const error = await connect(options, async (attempt) => {
    pauses.push(attempt);
  }).catch((e: unknown) => e);
  t.ok(error instanceof AppError && error.statusCode === 503, 'a 503');
  t.match((error as Error).message, `no PKCS#11 token labelled '${LABEL}' (initialised tokens: none)`);
  t.same(pauses, [1, 2], 'looked three times, pausing between');
  // Released after the failure: a module still held would keep its token list from before and refuse at once.
  await putBack();
  const conn = await connect(options, async () => {
    t.fail('no pause: the module was initialised afresh');
  });
  t.equal(conn.tokenLabel, LABEL, 'the next connection initialises the module again and finds the token');
  await disconnect(conn);
});

t.test('while another connection holds the module, a missing label is answered at once', async (t) => {
  const held = await connect(options);
  t.teardown(() => disconnect(held));
  const pauses: number[] = [];
  const error = await connect({ ...options, tokenLabel: 'no-such-token' }, async (attempt) => {
    pauses.push(attempt);
  }).catch((e: unknown) => e);
  t.ok(error instanceof AppError && error.statusCode === 503, 'a 503');
  t.match((error as Error).message, `no PKCS#11 token labelled 'no-such-token' (initialised tokens: '${LABEL}')`);
  t.same(pauses, [], 'no pause: finalising is not ours to do while the module is shared, so looking again would see the same');
});
