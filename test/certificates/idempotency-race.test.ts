/**
 * Idempotency-Key requests group-committed with the rest, raced on a real Postgres by two app instances (two
 * connection pools, two group committers: in one instance requests with one key queue behind each other, across
 * the two they meet on the key's row). Whatever the interleaving: each key issues exactly one certificate and all
 * its answers name it; a key sent with two bodies issues once and refuses the other body with 409; certificates =
 * CERT_ISSUE records = issuing audit events = the quota counter; and with the quota running out mid-burst (the
 * short domain's requests fall back to one transaction each) nothing is lost or doubled. And the one-statement batch takes
 * a key before its domain's quota row, as the transaction path does, so the two cannot deadlock.
 */
import t from 'tap';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { buildApp } from '../../src/app.ts';
import { openDatabase } from '../../src/db/database.ts';
import { ENDPOINT } from '../../src/services/certificates/issuance-service.ts';
import { createKeyStores } from '../../src/keystore/index.ts';
import { createTestAppOnRealPostgres, OTHER_DOMAIN, TEST_DOMAIN } from '../helpers/app.ts';
import { realPostgresOrSkipFile } from '../helpers/database.ts';
import { KEY_ARGS, opensslCsr, scratch, seedCa, type SeededCa } from './support.ts';

const QUOTA = 10_000;
const harness = await createTestAppOnRealPostgres(await realPostgresOrSkipFile(t), { env: { CERTIFICATE_QUOTA: String(QUOTA) } });
const secondDatabase = await openDatabase({ url: harness.database.url! });
const secondKeyStores = createKeyStores({ masterKey: harness.config.masterKey });
const second = await buildApp({ config: harness.config, database: secondDatabase, keyStores: secondKeyStores, logDestination: false });
t.teardown(async () => {
  await second.close();
  await secondKeyStores.software.close();
  await secondDatabase.close();
  await harness.close();
});
const instances = [harness.app, second];
const db = harness.database.prisma;
const dir = await scratch('idempotency-race');
const csrs = await Promise.all(
  [0, 1, 2, 3].map(async (i) => (await opensslCsr(dir, `race-${i}`, [...KEY_ARGS.p256], ['-subj', `/CN=race-${i}.example.com`])).csr),
);

async function issuerOf(domainId: string): Promise<SeededCa> {
  const root = await seedCa(harness, { commonName: `race-root-${domainId.slice(0, 4)}`, domainId });
  return seedCa(harness, { commonName: `race-sub-${domainId.slice(0, 4)}`, domainId, parent: root });
}

interface Request {
  key?: string;
  csr: number;
  /** Which of the key's bodies (the validity differs). */
  body: number;
}

interface Answer extends Request {
  status: number;
  certificateId?: string;
  errorCode?: string;
  errorMsg?: string;
}

/** Shuffled, so each run interleaves keys, bodies and instances differently. */
function shuffled<T>(items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** All at once, each from a random instance. */
function burst(domainId: string, issuer: SeededCa, requests: Request[]): Promise<Answer[]> {
  const auth = harness.auth(domainId);
  return Promise.all(
    shuffled(requests).map(async (request) => {
      const app = instances[Math.floor(Math.random() * instances.length)]!;
      const response = await app.inject({
        method: 'POST',
        url: '/v1/private-certificates/csr',
        headers: { ...auth, ...(request.key ? { 'idempotency-key': request.key } : {}) },
        payload: { issuer_id: issuer.id, csr: csrs[request.csr], validity: { type: 'DAY', value: 30 + request.body } },
      });
      const json = response.json();
      return {
        ...request,
        status: response.statusCode,
        certificateId: json.certificate_id,
        errorCode: json.error_code,
        errorMsg: json.error_msg,
      };
    }),
  );
}

function keyed(prefix: string, keys: number, repeats: number, bodies = 1): Request[] {
  return Array.from({ length: keys * repeats }, (_, i) => ({
    key: `${prefix}-${i % keys}`,
    csr: (i % keys) % csrs.length,
    body: Math.floor(i / keys) % bodies,
  }));
}

const unkeyed = (count: number): Request[] => Array.from({ length: count }, (_, i) => ({ csr: i % csrs.length, body: 0 }));

function byKey(answers: Answer[]): Map<string, Answer[]> {
  const groups = new Map<string, Answer[]>();
  for (const answer of answers) if (answer.key) groups.set(answer.key, [...(groups.get(answer.key) ?? []), answer]);
  return groups;
}

/** What the database holds for a domain: its certificates, their CERT_ISSUE records and audit events, the quota counter. */
async function stored(domainId: string) {
  const certificates = (await db.certificate.findMany({ where: { domainId }, select: { id: true } })).map(({ id }) => id).sort();
  const billed = (await db.billingRecord.findMany({ where: { domainId, usageType: 'CERT_ISSUE' }, select: { resourceId: true } }))
    .map(({ resourceId }) => resourceId)
    .sort();
  const audited = (
    await db.auditEvent.findMany({ where: { domainId, action: 'pca:ca:issueCert', outcome: 'SUCCESS' }, select: { resourceId: true } })
  )
    .map(({ resourceId }) => resourceId!)
    .sort();
  const used = (await db.domainCertificateUsage.findUnique({ where: { domainId } }))?.used ?? 0;
  const claims = await db.idempotencyKey.findMany({ where: { domainId } });
  return { certificates, billed, audited, used, claims: new Map(claims.map((claim) => [claim.key, claim.certificateId])) };
}

t.test('keys repeated across two instances, mixed with unkeyed requests: one certificate per key, all its answers name it', async (t) => {
  const KEYS = 24;
  const TWO_BODY_KEYS = 8;
  const UNKEYED = 32;
  const issuer = await issuerOf(TEST_DOMAIN);
  const answers = await burst(TEST_DOMAIN, issuer, [
    ...keyed('same', KEYS, 4),
    ...keyed('two-bodies', TWO_BODY_KEYS, 4, 2),
    ...unkeyed(UNKEYED),
  ]);
  const state = await stored(TEST_DOMAIN);

  const keyedIds = new Set<string>();
  for (const [key, group] of byKey(answers)) {
    const issued = group.filter((answer) => answer.status === 200);
    const ids = new Set(issued.map((answer) => answer.certificateId));
    t.equal(ids.size, 1, `${key}: all 200 answers name one certificate`);
    t.equal(new Set(issued.map((answer) => answer.body)).size, 1, `${key}: all for one body`);
    const [id] = ids;
    keyedIds.add(id!);
    t.equal(state.claims.get(key), id, `${key}: the key remembers that certificate`);
    const others = group.filter((answer) => answer.status !== 200);
    if (key.startsWith('same')) t.equal(others.length, 0, `${key}: every request with the same body is answered 200`);
    for (const other of others) {
      t.match(other, { status: 409, errorCode: 'PCA.00020001' }, `${key}: the other body is refused with 409`);
      t.not(other.body, issued[0]!.body);
    }
  }
  t.equal(keyedIds.size, KEYS + TWO_BODY_KEYS, 'exactly one certificate per key');
  const plain = answers.filter((answer) => !answer.key);
  t.ok(
    plain.every((answer) => answer.status === 200),
    'every unkeyed request issued',
  );
  const plainIds = new Set(plain.map((answer) => answer.certificateId));
  t.equal(plainIds.size, UNKEYED, 'each unkeyed request its own certificate');

  t.same(state.certificates, [...keyedIds, ...plainIds].sort(), 'the stored certificates are exactly the answered ones');
  t.same(state.billed, state.certificates, 'one CERT_ISSUE record per certificate');
  t.same(state.audited, state.certificates, 'one issuing audit event per certificate');
  t.equal(state.used, state.certificates.length, 'the quota counter counts the certificates');
  t.equal(state.claims.size, KEYS + TWO_BODY_KEYS, 'one claim per key');

  const replays = await burst(TEST_DOMAIN, issuer, keyed('same', KEYS, 2));
  for (const replay of replays) t.equal(replay.certificateId, state.claims.get(replay.key!), `${replay.key}: replayed`);
  t.same((await stored(TEST_DOMAIN)).certificates, state.certificates, 'replays issue nothing');
});

t.test('the quota runs out mid-burst: requests fall back one at a time, nothing lost or doubled', async (t) => {
  const ROOM = 20;
  const KEYS = 16;
  const UNKEYED = 16;
  const issuer = await issuerOf(OTHER_DOMAIN);
  await db.domainCertificateUsage.create({ data: { domainId: OTHER_DOMAIN, used: QUOTA - ROOM } });
  const answers = await burst(OTHER_DOMAIN, issuer, [...keyed('quota', KEYS, 3), ...unkeyed(UNKEYED)]);
  const state = await stored(OTHER_DOMAIN);

  for (const answer of answers.filter((answer) => answer.status !== 200)) {
    t.match(
      answer,
      { status: 400, errorCode: 'PCA.00020001', errorMsg: /quota of 10000 is used up/ },
      'a request past the quota is refused for it',
    );
  }
  const keyedIds = new Set<string>();
  for (const [key, group] of byKey(answers)) {
    const ids = new Set(group.filter((answer) => answer.status === 200).map((answer) => answer.certificateId!));
    t.ok(ids.size <= 1, `${key}: at most one certificate`);
    for (const id of ids) keyedIds.add(id);
    t.equal(state.claims.get(key), [...ids][0], `${key}: claimed only if issued, by its certificate`);
  }
  const plainIds = answers.filter((answer) => !answer.key && answer.status === 200).map((answer) => answer.certificateId!);
  t.equal(new Set(plainIds).size, plainIds.length, 'each unkeyed success its own certificate');
  t.same(state.certificates, [...keyedIds, ...plainIds].sort(), 'the stored certificates are exactly the answered ones');
  t.equal(state.certificates.length, ROOM, `exactly the ${ROOM} certificates the quota had room for (demand: ${KEYS + UNKEYED})`);
  t.same(state.billed, state.certificates, 'one CERT_ISSUE record per certificate');
  t.same(state.audited, state.certificates, 'one issuing audit event per certificate');
  t.equal(state.used, QUOTA, 'the quota counter is exactly full');
});

t.test('a statement waiting for a key another transaction holds does not hold the quota row that transaction takes next', async (t) => {
  // The transaction path claims its keys, then takes the quota row. Played here by hand on a connection of its own,
  // against a request of the app's that goes the one-statement way (its issuer is remembered). The other order
  // (quota, then keys) made this a deadlock that Postgres broke a second later, failing one of the two.
  const domainId = randomUUID().replaceAll('-', '');
  const issuer = await issuerOf(domainId);
  const auth = harness.auth(domainId);
  const request = (key?: string) =>
    harness.app.inject({
      method: 'POST',
      url: '/v1/private-certificates/csr',
      headers: { ...auth, ...(key ? { 'idempotency-key': key } : {}) },
      payload: { issuer_id: issuer.id, csr: csrs[0], validity: { type: 'DAY', value: 30 } },
    });
  t.equal((await request()).statusCode, 200, 'the issuer is read once, so the next request is one statement');

  const key = `lock-order-${randomUUID()}`;
  const other = new pg.Client({ connectionString: harness.database.url! });
  await other.connect();
  t.teardown(() => other.end());
  const otherPid = (await other.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  await other.query('BEGIN');
  await other.query(
    `INSERT INTO idempotency_keys (domain_id, endpoint, key, request_hash, certificate_id, created_at)
     VALUES ($1, $2, $3, 'another body', gen_random_uuid(), now())`,
    [domainId, ENDPOINT.createByCsr, key],
  );
  const answer = request(key);
  // Until the request waits for the other connection (for the key; whatever it holds by then). A minute is far more
  // than it needs.
  for (let polls = 0; ; polls++) {
    if (polls === 6_000) throw new Error('the request never waited for the key');
    const [row] = await db.$queryRaw<{ waiting: bigint }[]>`
      SELECT count(*) AS waiting FROM pg_stat_activity WHERE ${otherPid}::int = ANY (pg_blocking_pids(pid))`;
    if (row!.waiting > 0n) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  // Were the quota row held by the waiting statement, this would wait for it and time out.
  await other.query("SET LOCAL lock_timeout = '500ms'");
  const quota = await other.query('UPDATE domain_certificate_usage SET used = used WHERE domain_id = $1', [domainId]).then(
    (result) => result.rowCount,
    (error: Error) => error.message,
  );
  t.equal(quota, 1, 'the quota row was free to take');
  await other.query('ROLLBACK');

  const response = await answer;
  t.equal(response.statusCode, 200, response.body);
  const state = await stored(domainId);
  t.equal(state.certificates.length, 2, 'the two requests issued two certificates');
  t.ok(state.certificates.includes(response.json().certificate_id), 'the answered certificate is stored');
  t.equal(state.claims.get(key), response.json().certificate_id, 'the key, given back by the other, is claimed by the request');
  t.equal(state.used, 2, 'counted twice against the quota');
  t.same(state.billed, state.certificates, 'one CERT_ISSUE record per certificate');
});
