/** The CSR signature verifier: right answers from either thread, in place while quiet, the worker while busy. */
import { generateKeyPairSync, sign } from 'node:crypto';
import t from 'tap';
import { createSignatureVerifier } from '../../src/services/signature-verifier.ts';
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

t.test('a worker that fails is reported, its checks answered here, and the next busy turn starts another', async (t) => {
  const failures: unknown[] = [];
  const verifier = createSignatureVerifier({ onWorkerFailure: (error) => failures.push(error), workerSource: FAILING_WORKER });
  // The worker is unref'd (it holds no process alive); a server's listening socket keeps this one up meanwhile.
  const serverLike = setInterval(() => {}, 1000);
  t.teardown(() => clearInterval(serverLike));
  const checks = Array.from({ length: 6 }, (_, i) => checkOf(i, i !== 3));
  const expected = checks.map(runSignatureCheck);
  t.same(await Promise.all(checks.map((check) => verifier.verify(check))), expected, 'a busy turn: answered rightly');
  t.equal(failures.length, 1, 'the failure reported once');
  t.match((failures[0] as Error).message, /worker broke/);
  await nextTurn();
  t.same(await Promise.all(checks.map((check) => verifier.verify(check))), expected, 'the next busy turn: answered rightly');
  t.equal(failures.length, 2, 'by a new worker, which failed too');
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
