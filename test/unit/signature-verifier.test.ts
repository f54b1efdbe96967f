/** The CSR signature verifier: right answers from either thread, in place while quiet, the worker while busy. */
import { generateKeyPairSync, sign } from 'node:crypto';
import t, { type Test } from 'tap';
import { createSignatureVerifier, MAX_WORKER_RESTART_AFTER_MS, WORKER_RESTART_AFTER_MS } from '../../src/services/signature-verifier.ts';
import { runSignatureCheck, type SignatureCheck, signatureCheck } from '../../src/x509/public-key.ts';
import { nextTurn, settledWithoutTheLoop } from '../helpers/event-loop.ts';

function keyPair(type: 'ec' | 'rsa') {
  const { privateKey, publicKey } =
    type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { privateKey, spki: new Uint8Array(publicKey.export({ type: 'spki', format: 'der' })) };
}
const ec = keyPair('ec');
const rsa = keyPair('rsa');

/** A check of a signature over `index`'s bytes, valid or made over other bytes; alternately P-256 and RSA-2048. */
function checkOf(index: number, valid: boolean): SignatureCheck {
  const { privateKey, spki } = index % 2 === 0 ? ec : rsa;
  const data = Buffer.from(`to be signed ${index}`);
  const signature = sign('sha256', valid ? data : Buffer.from(`other ${index}`), privateKey);
  const check = signatureCheck(spki, index % 2 === 0 ? 'EC' : 'RSA', 'SHA256', data, signature);
  if (check === null) throw new Error('a well-formed signature must leave a check for OpenSSL');
  return check;
}

t.test('every answer is the check in place, whichever thread made it', async (t) => {
  const verifier = createSignatureVerifier();
  t.teardown(() => verifier.close());
  const checks = Array.from({ length: 24 }, (_, i) => checkOf(i, i % 3 !== 0));
  const expected = checks.map(runSignatureCheck);
  t.equal(expected.filter(Boolean).length, 16, 'two thirds of the signatures are valid');
  for (let round = 0; round < 3; round++) {
    t.same(await Promise.all(checks.map((check) => verifier.verify(check))), expected, `burst ${round + 1}`);
    await nextTurn();
  }
  t.same(await verifier.verify(checks[1]!), true, 'a lone valid one');
  t.same(await verifier.verify(checks[0]!), false, 'a lone invalid one');
});

t.test('in place while quiet; for a second after a turn that checks several, the worker takes them', async (t) => {
  let clock = 0;
  const verifier = createSignatureVerifier({ now: () => clock });
  t.teardown(() => verifier.close());
  const check = checkOf(0, true);
  const turnOf = (count: number) => Array.from({ length: count }, () => verifier.verify(check));

  t.same(await settledWithoutTheLoop(turnOf(1)), [true], 'quiet: the one check of a turn in place');
  await nextTurn();
  t.same(await settledWithoutTheLoop(turnOf(1)), [true], 'still quiet');
  await nextTurn();
  const burst = turnOf(3);
  t.same(await settledWithoutTheLoop(burst), [true, false, false], 'a turn of three: the first in place, the others sent');
  t.same(await Promise.all(burst), [true, true, true], 'and answered');
  await nextTurn();
  clock += 999;
  const afterBurst = turnOf(1);
  t.same(await settledWithoutTheLoop(afterBurst), [false], '999 ms later: still busy');
  await afterBurst;
  await nextTurn();
  clock += 1;
  t.same(await settledWithoutTheLoop(turnOf(1)), [true], 'a second after the burst: quiet again');
});

t.test('checks the worker holds when it stops are answered here; later ones in place', async (t) => {
  const failures: unknown[] = [];
  const verifier = createSignatureVerifier({ onWorkerFailure: (error) => failures.push(error) });
  const checks = Array.from({ length: 8 }, (_, i) => checkOf(i, i !== 5));
  const expected = checks.map(runSignatureCheck);
  await Promise.all(checks.map((check) => verifier.verify(check)));
  await nextTurn();
  const held = checks.map((check) => verifier.verify(check));
  await nextTurn(); // the turn ends: its checks are posted to the worker
  await verifier.close();
  t.same(await Promise.all(held), expected, 'every held check answered, rightly');
  t.same(
    await settledWithoutTheLoop(checks.map((check) => verifier.verify(check))),
    checks.map(() => true),
    'after close: in place',
  );
  t.same(failures, [], 'a worker stopped by close is no failure');
});

/** A worker whose every message throws: an uncaught exception, the worker's `error` then its exit. */
const FAILING_WORKER = `
const { parentPort } = process.getBuiltinModule('node:worker_threads');
parentPort.on('message', () => {
  throw new Error('worker broke');
});
`;

/**
 * A verifier on a driven clock whose workers run `workerSource`, with the failures it reports. Its workers are
 * unref'd (they hold no process alive); a server's listening socket keeps this one up meanwhile.
 */
function verifierWithFailures(t: Test, workerSource: string) {
  const failures: unknown[] = [];
  const clock = { now: 0 };
  const verifier = createSignatureVerifier({ now: () => clock.now, onWorkerFailure: (error) => failures.push(error), workerSource });
  const serverLike = setInterval(() => {}, 1000);
  t.teardown(() => clearInterval(serverLike));
  return { verifier, failures, clock };
}

t.test('a worker that fails is reported, its checks answered here, and a busy turn after the back-off starts another', async (t) => {
  const { verifier, failures, clock } = verifierWithFailures(t, FAILING_WORKER);
  const checks = Array.from({ length: 6 }, (_, i) => checkOf(i, i !== 3));
  const expected = checks.map(runSignatureCheck);
  t.same(await Promise.all(checks.map((check) => verifier.verify(check))), expected, 'a busy turn: answered rightly');
  t.equal(failures.length, 1, 'the failure reported once');
  t.match((failures[0] as Error).message, /worker broke/);
  clock.now += WORKER_RESTART_AFTER_MS;
  await nextTurn();
  t.same(await Promise.all(checks.map((check) => verifier.verify(check))), expected, 'the next busy turn: answered rightly');
  t.equal(failures.length, 2, 'by a new worker, which failed too');
  await verifier.close();
});

/** A worker that fails on a message whose first check's data starts with "fail", and answers the others rightly. */
const FAILING_ON_REQUEST_WORKER = `
const { createPublicKey, verify } = process.getBuiltinModule('node:crypto');
const { parentPort } = process.getBuiltinModule('node:worker_threads');
parentPort.on('message', (checks) => {
  if (Buffer.from(checks[0].data).toString().startsWith('fail')) throw new Error('worker broke');
  parentPort.postMessage(Uint8Array.from(checks, (c) => (verify(c.hash, c.data, createPublicKey(c.keyPem), c.signature) ? 1 : 0)));
});
`;

t.test('after a failure no worker starts for a while, doubled for each failure in a row; an answer ends the run', async (t) => {
  const { verifier, failures, clock } = verifierWithFailures(t, FAILING_ON_REQUEST_WORKER);
  const checkOver = (text: string, valid: boolean) => {
    const data = Buffer.from(text);
    const check = signatureCheck(ec.spki, 'EC', 'SHA256', data, sign('sha256', valid ? data : Buffer.from('other'), ec.privateKey));
    if (check === null) throw new Error('a well-formed signature must leave a check for OpenSSL');
    return check;
  };
  const failing = Array.from({ length: 6 }, (_, i) => checkOver(`fail ${i}`, i !== 2));
  const healthy = Array.from({ length: 6 }, (_, i) => checkOver(`fine ${i}`, i !== 4));
  /** A busy turn at `at` ms: answered rightly; returns the failures reported so far. */
  const busyTurnAt = async (at: number, checks: SignatureCheck[], what: string) => {
    clock.now = at;
    await nextTurn();
    t.same(await Promise.all(checks.map((check) => verifier.verify(check))), checks.map(runSignatureCheck), `${what}: answered rightly`);
    return failures.length;
  };

  t.equal(await busyTurnAt(0, failing, 'first failure'), 1);
  t.equal(await busyTurnAt(0, failing, 'at once'), 1, 'no worker started within the back-off: checked here');
  t.equal(await busyTurnAt(999, failing, '999 ms on'), 1, 'still none');
  t.equal(await busyTurnAt(1000, failing, '1 s on'), 2, 'a worker again after 1 s: it fails');
  t.equal(await busyTurnAt(2999, failing, 'within 2 s of the second'), 2, 'the back-off doubled');
  t.equal(await busyTurnAt(3000, failing, '2 s after the second'), 3);
  t.equal(await busyTurnAt(6999, healthy, 'within 4 s of the third'), 3);
  t.equal(await busyTurnAt(7000, healthy, '4 s after the third'), 3, 'a worker that answers: no failure');
  t.equal(await busyTurnAt(7000, failing, 'the same worker, a failing message'), 4);
  t.equal(await busyTurnAt(8000, failing, '1 s later'), 5, 'the answer ended the run: the back-off is 1 s again');
  // In a row now: 2 (until 10 s), 3 (14 s), 4 (22 s), 5 (38 s), 6 (70 s), then 7: 64 s, capped.
  for (const at of [10_000, 14_000, 22_000, 38_000, 70_000]) await busyTurnAt(at, failing, `at ${at} ms`);
  t.equal(failures.length, 10, 'five more failures, each once its back-off passed');
  t.equal(await busyTurnAt(70_000 + MAX_WORKER_RESTART_AFTER_MS - 1, failing, 'just within the cap'), 10);
  t.equal(await busyTurnAt(70_000 + MAX_WORKER_RESTART_AFTER_MS, failing, 'at the cap'), 11, 'the back-off stops growing');
  await verifier.close();
});

t.test("a turn's checks still unsent when the verifier closes are answered here, by the turn's end", async (t) => {
  const verifier = createSignatureVerifier();
  const checks = Array.from({ length: 4 }, (_, i) => checkOf(i, i !== 2));
  await Promise.all(checks.map((check) => verifier.verify(check))); // a busy turn: the next turn's checks are all sent
  await nextTurn();
  const unsent = checks.map((check) => verifier.verify(check));
  const closing = verifier.close();
  const settled = checks.map(() => false);
  for (const [i, answer] of unsent.entries()) answer.then(() => (settled[i] = true));
  await nextTurn(); // queued after the turn's end: a worker's answer could not have arrived yet
  t.same(settled, [true, true, true, true], 'answered at the turn end, not by a worker started after close');
  t.same(await Promise.all(unsent), checks.map(runSignatureCheck), 'rightly');
  await closing;
});
