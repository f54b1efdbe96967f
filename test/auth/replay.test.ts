/**
 * The signature replay cache (issue #13 item 10), with requests signed by the Huawei Node SDK's signers: a signed
 * POST sent again byte for byte is refused (401 APIG.0303) and issues and bills nothing more, for every signature
 * algorithm (an ECDSA signature with s replaced by n - s too); a retry signed anew works, and with the same
 * Idempotency-Key gets the first answer; refused requests and GETs record nothing; identical replays racing on
 * real Postgres execute once; the `signature-expiry` job drops rows past their window on the manual clock.
 */
import t, { type Test } from 'tap';
import { AKSKSigner } from '@huaweicloud/huaweicloud-sdk-core/auth/AKSKSigner.js';
import { BasicCredentials } from '@huaweicloud/huaweicloud-sdk-core/auth/BasicCredentials.js';
import { DerivedAKSKSigner } from '@huaweicloud/huaweicloud-sdk-core/auth/DerivedAKSKSigner.js';
import { GlobalCredentials } from '@huaweicloud/huaweicloud-sdk-core/auth/GlobalCredentials.js';
import type { FastifyInstance } from 'fastify';
import { ManualClock } from '../../src/clock.ts';
import { formatSdkDate } from '../../src/auth/sdk-hmac.ts';
import { projectIdOf } from '../../src/services/access-keys/access-key-rules.ts';
import { CLOCK_MARGIN_MS, signatureExpiryJob } from '../../src/services/access-keys/signature-replay.ts';
import { createTestApp, createTestAppOnRealPostgres, TEST_DOMAIN, type TestApp } from '../helpers/app.ts';
import { realPostgresOrSkipTest } from '../helpers/database.ts';
import { client } from '../ca/support.ts';
import { ecdsaSignerFor, Sm3Signer, type KeyPair, type StaticSigner } from './support.ts';

type Injected = Awaited<ReturnType<FastifyInstance['inject']>>;
interface Signed {
  method: 'POST' | 'GET';
  url: string;
  headers: Record<string, string>;
  payload?: Buffer;
}

const SKEW_MS = 15 * 60_000;
// Whole seconds, as X-Sdk-Date has them; each request below takes its own second after this one.
const T0 = Math.floor(Date.now() / 1000) * 1000;
let nextSecond = 0;
const freshDate = () => new Date(T0 + ++nextSecond * 1000);

const clock = new ManualClock(T0);
const harness = await createTestApp({ clock });
t.teardown(() => harness.close());
const prisma = harness.database.prisma;

async function createKey(h: TestApp, actions?: string[]): Promise<KeyPair> {
  const response = await h.app.inject({ method: 'POST', url: '/v1/access-keys', headers: h.auth(), payload: actions ? { actions } : {} });
  if (response.statusCode !== 200) throw new Error(`access key creation failed: ${response.body}`);
  return response.json().credential as KeyPair;
}

/** Signs a POST (a GET without `data`) with one of the SDK's signers as its HcClient does, dated `date`. */
function sign(
  signer: StaticSigner,
  credentials: unknown,
  path: string,
  data: object | undefined,
  date: Date,
  headers: Record<string, string> = {},
): Signed {
  const method = data === undefined ? 'GET' : 'POST';
  const request = {
    method,
    endpoint: `http://pca.example.test${path}`,
    headers: {
      'X-Sdk-Date': formatSdkDate(date),
      'X-Domain-Id': TEST_DOMAIN,
      ...(data && { 'content-type': 'application/json' }),
      ...headers,
    },
    queryParams: {},
    data,
  };
  const signed = signer.sign(request, credentials);
  return {
    method,
    url: path,
    headers: Object.fromEntries(Object.entries(signed).map(([name, value]) => [name.toLowerCase(), value])),
    ...(data && { payload: Buffer.from(JSON.stringify(data)) }),
  };
}

const withKey = (key: KeyPair) => new GlobalCredentials().withAk(key.access).withSk(key.secret);
const signHmac = (key: KeyPair, path: string, data: object | undefined, date = freshDate(), headers?: Record<string, string>) =>
  sign(AKSKSigner as unknown as StaticSigner, withKey(key), path, data, date, headers);

function assertReplayRefused(t: Test, response: Injected, what: string): void {
  t.equal(response.statusCode, 401, `${what}: 401`);
  t.equal(response.json().error_code, 'APIG.0303');
  t.match(response.json().error_msg, /signature was already used/);
}

const seenRows = () => prisma.seenSignature.count();
const certificates = () => prisma.certificate.count();
const certBilling = () => prisma.billingRecord.count({ where: { usageType: 'CERT_ISSUE' } });

const admin = await createKey(harness);
const root = await client(harness).root();
const issueBody = (commonName: string) => ({
  issuer_id: root,
  key_algorithm: 'EC256',
  signature_algorithm: 'SHA256',
  distinguished_name: { common_name: commonName },
  validity: { type: 'DAY', value: 1 },
});

t.test('a replayed signed POST is refused and issues and bills nothing; the retry signed anew works', async (t) => {
  const original = signHmac(admin, '/v1/private-certificates', issueBody('replayed.example.com'));
  const [certs, billed] = [await certificates(), await certBilling()];
  const first = await harness.app.inject(original);
  t.equal(first.statusCode, 200, first.body);
  t.equal(await certificates(), certs + 1);
  t.equal(await certBilling(), billed + 1);

  assertReplayRefused(t, await harness.app.inject(original), 'the same bytes again');
  clock.advance(SKEW_MS - 60_000);
  assertReplayRefused(t, await harness.app.inject(original), 'the same bytes 14 minutes later');
  t.equal(await certificates(), certs + 1, 'no second certificate');
  t.equal(await certBilling(), billed + 1, 'no second billing record');
  clock.set(T0);

  const retry = await harness.app.inject(signHmac(admin, '/v1/private-certificates', issueBody('replayed.example.com')));
  t.equal(retry.statusCode, 200, 'the same request signed anew (a new X-Sdk-Date) is a new request');
  t.not(retry.json().certificate_id, first.json().certificate_id);
  t.equal(await certificates(), certs + 2);
});

/** Rewrites a DER ECDSA-Sig-Value (r, s) as (r, n - s): a different signature of the same bytes that verifies. */
function malleate(signatureHex: string): string {
  const der = Buffer.from(signatureHex, 'hex');
  const rLength = der[3];
  const r = der.subarray(4, 4 + rLength);
  const s = BigInt(`0x${der.subarray(6 + rLength).toString('hex')}`);
  const n = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
  let flipped = Buffer.from((n - s).toString(16).padStart(64, '0'), 'hex');
  while (flipped.length > 1 && flipped[0] === 0 && flipped[1] < 0x80) flipped = flipped.subarray(1);
  if (flipped[0] >= 0x80) flipped = Buffer.concat([Buffer.alloc(1), flipped]);
  const body = Buffer.concat([Buffer.from([2, r.length]), r, Buffer.from([2, flipped.length]), flipped]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]).toString('hex');
}

t.test('every signature algorithm: a replay is refused, a request signed anew is accepted', async (t) => {
  const derived = new BasicCredentials()
    .withAk(admin.access)
    .withSk(admin.secret)
    .withProjectId(projectIdOf(TEST_DOMAIN, harness.config.region));
  derived.processDerivedAuthParams('ccm', harness.config.region);
  const signers: [string, StaticSigner, unknown][] = [
    ['SDK-HMAC-SHA256', AKSKSigner as unknown as StaticSigner, withKey(admin)],
    ['SDK-HMAC-SM3', Sm3Signer as unknown as StaticSigner, withKey(admin)],
    ['SDK-ECDSA-P256-SHA256', ecdsaSignerFor(admin), withKey(admin)],
    ['V11-HMAC-SHA256', DerivedAKSKSigner as unknown as StaticSigner, derived],
  ];
  for (const [name, signer, credentials] of signers) {
    const date = freshDate();
    const request = sign(signer, credentials, '/v1/auth/tokens', { purpose: name }, date);
    t.match(request.headers.authorization, new RegExp(`^${name} `));
    t.equal((await harness.app.inject(request)).statusCode, 200, `${name}: accepted once`);
    assertReplayRefused(t, await harness.app.inject(request), `${name}: replayed`);
    if (name === 'SDK-ECDSA-P256-SHA256') {
      const again = sign(signer, credentials, '/v1/auth/tokens', { purpose: name }, date);
      t.not(again.headers.authorization, request.headers.authorization, 'ECDSA signs the same bytes differently each time');
      assertReplayRefused(t, await harness.app.inject(again), `${name}: the same bytes signed again (another random k)`);
      const signature = /Signature=([0-9a-f]+)$/.exec(request.headers.authorization)![1];
      const flipped = {
        ...request,
        headers: { ...request.headers, authorization: request.headers.authorization.replace(signature, malleate(signature)) },
      };
      assertReplayRefused(t, await harness.app.inject(flipped), `${name}: the captured signature with s -> n - s`);
    }
    t.equal(
      (await harness.app.inject(sign(signer, credentials, '/v1/auth/tokens', { purpose: name }, freshDate()))).statusCode,
      200,
      `${name}: signed anew, accepted`,
    );
  }
});

t.test('Idempotency-Key: a replayed signature is refused; a retry signed anew gets the stored answer', async (t) => {
  const body = issueBody('idempotent.example.com');
  const original = signHmac(admin, '/v1/private-certificates', body, freshDate(), { 'Idempotency-Key': 'replay-key-1' });
  const first = await harness.app.inject(original);
  t.equal(first.statusCode, 200, first.body);
  const [certs, billed] = [await certificates(), await certBilling()];
  assertReplayRefused(t, await harness.app.inject(original), 'the same bytes with the same Idempotency-Key');
  const retry = await harness.app.inject(
    signHmac(admin, '/v1/private-certificates', body, freshDate(), { 'Idempotency-Key': 'replay-key-1' }),
  );
  t.equal(retry.statusCode, 200);
  t.equal(retry.json().certificate_id, first.json().certificate_id, 'the stored answer');
  t.same([await certificates(), await certBilling()], [certs, billed], 'nothing issued or billed by the replay or the retry');
});

t.test('refused requests and GETs spend no signature', async (t) => {
  const rows = await seenRows();
  const invalid = signHmac(admin, '/v1/private-certificates', { issuer_id: root, validity: { type: 'DAY', value: 1 } });
  t.equal((await harness.app.inject(invalid)).statusCode, 400, 'schema refusal');
  t.equal((await harness.app.inject(invalid)).statusCode, 400, 'the same bytes again: still judged, not a replay');

  const reader = await createKey(harness, ['pca:ca:list']);
  const forbidden = signHmac(reader, '/v1/private-certificates', issueBody('forbidden.example.com'));
  t.equal((await harness.app.inject(forbidden)).statusCode, 403, 'permission refusal');
  t.equal((await harness.app.inject(forbidden)).statusCode, 403, 'again: 403, not a replay');

  // Someone who saw a signature in flight sends it with other signed bytes first: refused, and the original still runs.
  const legit = signHmac(admin, '/v1/private-certificates', issueBody('legit.example.com'));
  const forged = { ...legit, payload: Buffer.from(JSON.stringify(issueBody('forged.example.com'))) };
  t.equal((await harness.app.inject(forged)).statusCode, 401, 'the forged copy fails verification');
  t.equal((await harness.app.inject(legit)).statusCode, 200, 'the legitimate request is not burnt');

  const get = signHmac(admin, '/v1/private-certificate-authorities', undefined);
  for (let i = 0; i < 3; i++) t.equal((await harness.app.inject(get)).statusCode, 200, 'a signed GET may repeat');
  t.equal(await seenRows(), rows + 1, 'only the executed POST was recorded');
});

t.test('signature-expiry: rows go once their window (X-Sdk-Date + 15 min) and the clock margin have passed', async (t) => {
  await prisma.seenSignature.deleteMany();
  const date = freshDate();
  t.equal((await harness.app.inject(signHmac(admin, '/v1/auth/tokens', { expiry: 1 }, date))).statusCode, 200);
  const [row] = await prisma.seenSignature.findMany();
  t.equal(row.expiresAt.getTime(), date.getTime() + SKEW_MS, 'expires_at = X-Sdk-Date + the accepted skew');
  t.equal(harness.app.jobRunner.job('signature-expiry').intervalSeconds, 300);
  const job = signatureExpiryJob({ db: prisma });
  const run = (at: number) => job.run({ now: new Date(at), log: harness.app.log });
  t.same(await run(row.expiresAt.getTime() + CLOCK_MARGIN_MS), { deleted: 0 }, 'kept up to the margin');
  t.equal(await seenRows(), 1);
  t.same(await run(row.expiresAt.getTime() + CLOCK_MARGIN_MS + 1), { deleted: 1 }, 'deleted after it');
  t.equal(await seenRows(), 0);
});

/** Identical copies of one signed issuance at once: exactly one is executed, whatever the interleaving. */
async function race(t: Test, h: TestApp, copies: number): Promise<void> {
  const key = await createKey(h);
  const caId = await client(h).root();
  const request = signHmac(key, '/v1/private-certificates', { ...issueBody('raced.example.com'), issuer_id: caId }, new Date(clock.now()));
  const before = await h.database.prisma.certificate.count();
  const responses = await Promise.all(Array.from({ length: copies }, () => h.app.inject(request)));
  const statuses = responses.map((response) => response.statusCode);
  t.equal(statuses.filter((status) => status === 200).length, 1, `one copy executed (${statuses.join(' ')})`);
  for (const response of responses.filter((r) => r.statusCode !== 200)) assertReplayRefused(t, response, 'a concurrent copy');
  t.equal(await h.database.prisma.certificate.count(), before + 1, 'one certificate');
}

t.test(`concurrent identical replays on this suite's database (${process.env.DATABASE_URL ? 'Postgres' : 'PGlite'})`, (t) =>
  race(t, harness, 8),
);

t.test('concurrent identical replays on a real Postgres server', async (t) => {
  const postgres = await realPostgresOrSkipTest(t);
  if (!postgres) return;
  const onPostgres = await createTestAppOnRealPostgres(postgres, { clock });
  t.teardown(() => onPostgres.close());
  await race(t, onPostgres, 2);
  await race(t, onPostgres, 16);
});
