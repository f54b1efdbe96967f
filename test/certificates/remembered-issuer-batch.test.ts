/**
 * The one-statement batch (issuance-batch.ts `writeAgainstRememberedIssuers`): once an issuance has read its issuer,
 * the next ones are signed against that remembered row and stored by one statement with no transaction around it,
 * which checks the row's version, claims the Idempotency-Keys, takes the quota and writes the certificate, its audit
 * event and its CERT_ISSUE record together. A CA changed since (disabled) is caught by that statement and refused by
 * the transaction path; a request whose key another request holds is left out of it (the transaction answers the
 * holder's certificate) while the rest of its batch is stored; quotas stay exact per domain, and a domain found at its
 * quota is refused before signing until it has room again. openssl judges a certificate issued this way.
 */
import t from 'tap';
import { randomUUID } from 'node:crypto';
import type { SqlStatement } from '../../src/db/database.ts';
import { ENDPOINT } from '../../src/services/certificates/issuance-service.ts';
import { requestHash } from '../../src/services/certificates/idempotency.ts';
import { RELEASE_IDEMPOTENCY_KEYS } from '../../src/services/certificates/issuance-sql.ts';
import { OTHER_DOMAIN, createTestApp } from '../helpers/app.ts';
import { KEY_ARGS, opensslCsr, scratch, seedCa, verifyStrict } from './support.ts';

const QUOTA = 20;
const METRICS_TOKEN = 'metrics-token-for-the-test-0123456789';
const harness = await createTestApp({ env: { CERTIFICATE_QUOTA: String(QUOTA), METRICS_TOKEN } });
t.teardown(() => harness.close());
const { app, database } = harness;
const db = database.prisma;
const dir = await scratch('remembered-issuer');
const root = await seedCa(harness, { commonName: 'ri-root' });
const sub = await seedCa(harness, { commonName: 'ri-sub', parent: root });
const otherRoot = await seedCa(harness, { commonName: 'ri-other-root', domainId: OTHER_DOMAIN });
const { csr } = await opensslCsr(dir, 'leaf', [...KEY_ARGS.p256]);

/**
 * What the issuing path asks of the database: raw transactions opened, and the names of the statements run alone,
 * with the last insert statement run. Faults: `failNextInsert` makes the next insert statement refused as Postgres
 * refuses a deadlock victim (nothing stored); `loseAckOf` runs the next insert statement, or the next transaction, to
 * its commit and then loses the connection before the answer (stored, but the caller cannot know).
 */
const seen = {
  transactions: 0,
  statements: [] as string[],
  lastInsert: undefined as { statement: SqlStatement; values: unknown[] } | undefined,
  failNextInsert: false,
  loseAckOf: undefined as 'insert' | 'transaction' | undefined,
};
const lostConnection = () => new Error('Connection terminated unexpectedly (injected after the commit)');
const { query, transaction } = database;
database.query = async <Row>(statement: SqlStatement, values: unknown[]) => {
  seen.statements.push(statement.name);
  if (statement.name.startsWith('insert-')) {
    seen.lastInsert = { statement, values };
    if (seen.failNextInsert) {
      seen.failNextInsert = false;
      throw Object.assign(new Error('deadlock detected (injected)'), { code: '40P01' });
    }
    if (seen.loseAckOf === 'insert') {
      seen.loseAckOf = undefined;
      await query<Row>(statement, values);
      throw lostConnection();
    }
  }
  return query<Row>(statement, values);
};
database.transaction = async (run) => {
  seen.transactions++;
  const result = await transaction(run);
  if (seen.loseAckOf === 'transaction') {
    seen.loseAckOf = undefined;
    throw lostConnection();
  }
  return result;
};
/** Prisma's interactive transactions (the lone path's), counted as `prismaTransactions`. */
const openPrismaTransaction = db.$transaction.bind(db) as (...args: unknown[]) => Promise<unknown>;
let prismaTransactions = 0;
Object.defineProperty(db, '$transaction', {
  value: (...args: unknown[]) => {
    prismaTransactions++;
    return openPrismaTransaction(...args);
  },
  configurable: true,
  writable: true,
});
function resetSeen() {
  seen.transactions = 0;
  seen.statements = [];
  prismaTransactions = 0;
}

const body = (issuerId: string) => ({ issuer_id: issuerId, csr, validity: { type: 'DAY', value: 30 } });

function issue(issuerId = sub.id, domainId?: string, idempotencyKey?: string) {
  return app.inject({
    method: 'POST',
    url: '/v1/private-certificates/csr',
    headers: { ...harness.auth(domainId), ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}) },
    payload: body(issuerId),
  });
}

const used = async (domainId = harness.config.defaultDomainId) =>
  (await db.domainCertificateUsage.findUnique({ where: { domainId } }))?.used ?? 0;

t.test('after one issuance reads the issuer, the next is one statement: certificate, audit event, CERT_ISSUE record, quota', async (t) => {
  resetSeen();
  const first = await issue();
  t.equal(first.statusCode, 200, first.body);
  t.equal(seen.transactions, 1, 'the first reads its issuer in a transaction');

  resetSeen();
  const second = await issue();
  t.equal(second.statusCode, 200, second.body);
  const id = second.json().certificate_id as string;
  t.equal(seen.transactions, 0, 'no transaction');
  t.equal(seen.statements.filter((name) => name.startsWith('insert-')).length, 1, 'one statement stores it');

  const stored = await db.certificate.findUniqueOrThrow({ where: { id } });
  t.equal(stored.issuerId, sub.id);
  t.equal(stored.status, 'ISSUED');
  const records = await db.billingRecord.findMany({ where: { resourceId: id, usageType: 'CERT_ISSUE' } });
  t.equal(records.length, 1, 'one CERT_ISSUE record');
  t.equal(await db.auditEvent.count({ where: { resourceId: id, action: 'pca:ca:issueCert', outcome: 'SUCCESS' } }), 1);
  t.equal(await used(), 2, 'both counted against the quota');

  const exported = await app.inject({
    method: 'POST',
    url: `/v1/private-certificates/${id}/export`,
    headers: harness.auth(),
    payload: { type: 'OTHER', is_compressed: 'false' },
  });
  const verified = await verifyStrict(dir, exported.json().certificate, root.pem, [sub.pem]);
  t.ok(verified.ok, verified.stderr);
});

t.test('an Idempotency-Key is claimed in the same statement; the repeat answers the same certificate', async (t) => {
  const key = randomUUID();
  resetSeen();
  const first = await issue(sub.id, undefined, key);
  t.equal(first.statusCode, 200, first.body);
  t.equal(seen.transactions, 0, 'no transaction');
  t.equal(seen.statements.filter((name) => name.startsWith('insert-')).length, 1, 'one statement stores it');
  const row = await db.idempotencyKey.findFirstOrThrow({ where: { key } });
  t.equal(row.certificateId, first.json().certificate_id, 'the key names the certificate');
  const usedBefore = await used();
  const repeat = await issue(sub.id, undefined, key);
  t.equal(repeat.json().certificate_id, first.json().certificate_id);
  t.equal(await used(), usedBefore, 'the repeat issues nothing');
});

t.test('the statement claims its keys in key order (as the transaction path does), so overlapping claims cannot deadlock', async (t) => {
  const keys = ['k-3', 'k-1', 'k-2'].map((name) => `${name}-${randomUUID()}`);
  const responses = await Promise.all(keys.map((key) => issue(sub.id, undefined, key)));
  for (const response of responses) t.equal(response.statusCode, 200, response.body);
  const { statement, values } = seen.lastInsert!;
  const plan = await database.query<{ 'QUERY PLAN': string }>(
    { name: 'explain-remembered-batch', text: `EXPLAIN ${statement.text}` },
    values,
  );
  const text = plan.map((row) => row['QUERY PLAN']).join('\n');
  t.match(text, /Insert on idempotency_keys[\s\S]*Sort Key: keys\.domain_id, keys\.endpoint, keys\.key/, text);
});

/** A counter's value from /metrics (`series`: its name and labels as printed), 0 before it first moves. */
async function counter(series: string): Promise<number> {
  const response = await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  const line = response.body.split('\n').find((row) => row.startsWith(`${series} `));
  return line ? Number(line.split(' ').pop()) : 0;
}
const redos = (write: string) => counter(`pca_issuance_batch_redos_total{write="${write}"}`);
const signatures = () => counter('pca_key_store_operations_total{store="software",operation="sign"}');

t.test('a statement Postgres refuses stores nothing, is counted, and the transaction issues the certificate once', async (t) => {
  const certificatesBefore = await db.certificate.count();
  const billedBefore = await db.billingRecord.count({ where: { usageType: 'CERT_ISSUE' } });
  const usedBefore = await used();
  const redosBefore = await redos('statement');
  seen.failNextInsert = true;
  resetSeen();
  const answer = await issue();
  t.equal(answer.statusCode, 200, answer.body);
  t.equal(seen.statements.filter((name) => name.startsWith('insert-')).length, 1, 'the statement was tried');
  t.equal(seen.transactions, 1, 'and the transaction issued');
  t.equal(await redos('statement'), redosBefore + 1, 'counted as a redone statement');
  t.equal(await db.certificate.count(), certificatesBefore + 1, 'one certificate');
  t.equal(await db.billingRecord.count({ where: { usageType: 'CERT_ISSUE' } }), billedBefore + 1, 'one CERT_ISSUE record');
  t.equal(await used(), usedBefore + 1, 'counted once against the quota');
  t.ok(await db.certificate.findUnique({ where: { id: answer.json().certificate_id } }), 'the answered certificate is the stored one');
});

t.test('a commit whose answer is lost is not issued again: 503, stored once; a retry with its key answers it', async (t) => {
  for (const where of ['insert', 'transaction'] as const) {
    for (const key of [undefined, randomUUID()]) {
      const label = `${where}, ${key ? 'with' : 'without'} a key`;
      // The statement path needs a remembered issuer; the transaction path is taken when the statement is refused.
      t.equal((await issue()).statusCode, 200);
      const certificatesBefore = await db.certificate.count();
      const billedBefore = await db.billingRecord.count({ where: { usageType: 'CERT_ISSUE' } });
      const usedBefore = await used();
      seen.loseAckOf = where;
      if (where === 'transaction') seen.failNextInsert = true;
      const lost = await issue(sub.id, undefined, key);
      t.equal(lost.statusCode, 503, `${label}: ${lost.body}`);
      t.match(lost.json(), { error_code: 'PCA.00050002', error_msg: /lost .*Idempotency-Key/ });
      t.equal(lost.headers['retry-after'], '5');
      t.equal(await db.certificate.count(), certificatesBefore + 1, `${label}: stored once, not issued again`);
      t.equal(await db.billingRecord.count({ where: { usageType: 'CERT_ISSUE' } }), billedBefore + 1, `${label}: billed once`);
      t.equal(await used(), usedBefore + 1, `${label}: counted once`);
      if (!key) continue;
      const retried = await issue(sub.id, undefined, key);
      t.equal(retried.statusCode, 200);
      t.equal(await db.certificate.count(), certificatesBefore + 1, `${label}: the retry answers the stored certificate`);
      t.ok(await db.certificate.findUnique({ where: { id: retried.json().certificate_id } }));
    }
  }
});

t.test(
  "a key another request holds: that request is neither stored nor counted, the holder's certificate answers, the rest of its batch is stored",
  async (t) => {
    const key = randomUUID();
    const holder = await db.certificate.findFirstOrThrow({ where: { issuerId: sub.id } });
    await db.idempotencyKey.create({
      data: {
        domainId: harness.config.defaultDomainId,
        endpoint: ENDPOINT.createByCsr,
        key,
        requestHash: requestHash(body(sub.id)),
        certificateId: holder.id,
        createdAt: new Date(),
      },
    });
    const certificatesBefore = await db.certificate.count();
    const billedBefore = await db.billingRecord.count({ where: { usageType: 'CERT_ISSUE' } });
    const usedBefore = await used();
    const redosBefore = await redos('statement');
    resetSeen();
    // Sent together, so that they may share a batch (whether they do or not, the answers below hold).
    const [replay, fresh] = await Promise.all([issue(sub.id, undefined, key), issue(sub.id, undefined, randomUUID())]);
    t.equal(replay!.statusCode, 200, replay!.body);
    t.equal(replay!.json().certificate_id, holder.id, "the holder's certificate");
    t.equal(fresh!.statusCode, 200, fresh!.body);
    t.not(fresh!.json().certificate_id, holder.id);
    t.equal(seen.transactions, 1, 'only the replay went on to the transaction, which answered it');
    t.equal(await redos('statement'), redosBefore, 'no statement failed');
    t.equal(await db.certificate.count(), certificatesBefore + 1, 'the fresh request stored');
    t.ok(await db.certificate.findUnique({ where: { id: fresh!.json().certificate_id } }));
    t.equal(await db.billingRecord.count({ where: { usageType: 'CERT_ISSUE' } }), billedBefore + 1, 'billed once');
    t.equal(await used(), usedBefore + 1, 'counted once against the quota');
    t.equal((await db.idempotencyKey.findFirstOrThrow({ where: { key } })).certificateId, holder.id, 'the key still names the holder');
  },
);

t.test('a key reused with another body: 409, nothing stored', async (t) => {
  const key = randomUUID();
  const first = await issue(sub.id, undefined, key);
  t.equal(first.statusCode, 200, first.body);
  const certificatesBefore = await db.certificate.count();
  const usedBefore = await used();
  const other = await app.inject({
    method: 'POST',
    url: '/v1/private-certificates/csr',
    headers: { ...harness.auth(), 'idempotency-key': key },
    payload: { ...body(sub.id), validity: { type: 'DAY', value: 31 } },
  });
  t.equal(other.statusCode, 409, other.body);
  t.match(other.json(), { error_code: 'PCA.00020001', error_msg: /different request body/ });
  t.equal(await db.certificate.count(), certificatesBefore, 'nothing stored');
  t.equal(await used(), usedBefore, 'no quota taken');
});

t.test('a CA disabled after it was remembered: refused at once, nothing stored; enabled again, it issues', async (t) => {
  const certificatesBefore = await db.certificate.count();
  const usedBefore = await used();
  t.equal(
    (await app.inject({ method: 'POST', url: `/v1/private-certificate-authorities/${sub.id}/disable`, headers: harness.auth() }))
      .statusCode,
    204,
  );
  resetSeen();
  const refused = await issue();
  t.equal(refused.statusCode, 400, refused.body);
  t.match(refused.json(), { error_code: 'PCA.00020001', error_msg: /status DISABLED/ });
  t.equal(seen.transactions, 1, 'the changed row sent it to the transaction, which read the fresh row');
  t.equal(await db.certificate.count(), certificatesBefore, 'no certificate');
  t.equal(await used(), usedBefore, 'no quota taken');

  t.equal(
    (await app.inject({ method: 'POST', url: `/v1/private-certificate-authorities/${sub.id}/enable`, headers: harness.auth() })).statusCode,
    204,
  );
  const again = await issue();
  t.equal(again.statusCode, 200, again.body);
});

t.test('a disable racing a burst: every answered certificate is stored once and billed once, and none is issued after it', async (t) => {
  const certificatesBefore = await db.certificate.count();
  const billedBefore = await db.billingRecord.count({ where: { usageType: 'CERT_ISSUE' } });
  const usedBefore = await used();
  const [disabled, ...responses] = await Promise.all([
    app.inject({ method: 'POST', url: `/v1/private-certificate-authorities/${sub.id}/disable`, headers: harness.auth() }),
    ...Array.from({ length: QUOTA - usedBefore }, () => issue()),
  ]);
  t.equal(disabled!.statusCode, 204);
  const issued = responses.filter((response) => response.statusCode === 200).length;
  for (const response of responses) if (response.statusCode !== 200) t.match(response.json().error_msg, /status DISABLED/);
  t.equal(await db.certificate.count(), certificatesBefore + issued);
  t.equal(await db.billingRecord.count({ where: { usageType: 'CERT_ISSUE' } }), billedBefore + issued);
  t.equal(await used(), usedBefore + issued);
  const after = await issue();
  t.equal(after.statusCode, 400, 'refused once the disable has returned');
  t.equal(
    (await app.inject({ method: 'POST', url: `/v1/private-certificate-authorities/${sub.id}/enable`, headers: harness.auth() })).statusCode,
    204,
  );
});

t.test(
  'a burst past the quota on remembered issuers issues exactly the quota; another domain in the same bursts is unaffected',
  async (t) => {
    t.equal((await issue(otherRoot.id, OTHER_DOMAIN)).statusCode, 200, 'the other domain remembers its issuer too');
    const left = QUOTA - (await used());
    const ours = Array.from({ length: left + 6 }, () => issue());
    const theirs = Array.from({ length: 4 }, () => issue(otherRoot.id, OTHER_DOMAIN));
    const [oursAnswered, theirsAnswered] = await Promise.all([Promise.all(ours), Promise.all(theirs)]);
    t.equal(oursAnswered.filter((response) => response.statusCode === 200).length, left, 'exactly what was left');
    for (const response of oursAnswered.filter((response) => response.statusCode !== 200)) {
      t.match(response.json(), { error_code: 'PCA.00020001', error_msg: `the certificate quota of ${QUOTA} is used up` });
    }
    for (const response of theirsAnswered) t.equal(response.statusCode, 200, response.body);
    t.equal(await used(), QUOTA);
    t.equal(await db.certificate.count({ where: { domainId: harness.config.defaultDomainId } }), QUOTA);
    t.equal(await used(OTHER_DOMAIN), 5);
    t.equal(
      await db.billingRecord.count({ where: { usageType: 'CERT_ISSUE' } }),
      await db.certificate.count(),
      'one CERT_ISSUE record per certificate',
    );
  },
);

t.test('a domain at its quota does not fail its batch mates: no batch transaction is redone for it', async (t) => {
  t.equal(await used(), QUOTA, 'the default domain is at its quota (the burst above)');
  const otherBefore = await used(OTHER_DOMAIN);
  const redosBefore = await redos('transaction');
  // Its requests, keyed and not, sent with another domain's: however they batch, the transaction meets a domain
  // short of quota.
  const [ours, theirs] = await Promise.all([
    Promise.all([...Array.from({ length: 3 }, () => issue(sub.id, undefined, randomUUID())), issue(), issue()]),
    Promise.all(Array.from({ length: 3 }, () => issue(otherRoot.id, OTHER_DOMAIN))),
  ]);
  for (const response of ours) {
    t.match(response.json(), { error_code: 'PCA.00020001', error_msg: `the certificate quota of ${QUOTA} is used up` });
  }
  for (const response of theirs) t.equal(response.statusCode, 200, response.body);
  t.equal(await redos('transaction'), redosBefore, 'no batch transaction failed');
  t.equal(await used(), QUOTA);
  t.equal(await used(OTHER_DOMAIN), otherBefore + 3);
  const certificateIds = (await db.certificate.findMany({ select: { id: true } })).map(({ id }) => id);
  const stranded = await db.idempotencyKey.count({ where: { certificateId: { notIn: certificateIds } } });
  t.equal(stranded, 0, 'no key left without its certificate');
});

t.test('a domain found at its quota is refused before signing until one of its requests issues again', async (t) => {
  const quotaUsedUp = { error_code: 'PCA.00020001', error_msg: `the certificate quota of ${QUOTA} is used up` };
  t.equal(await used(), QUOTA, 'the default domain is at its quota');
  // Room for one: it issues, then the next request finds the domain at its quota again.
  const { id: deletable } = (await db.certificate.findFirst({
    where: { domainId: harness.config.defaultDomainId },
    select: { id: true },
  }))!;
  const deleted = await app.inject({ method: 'DELETE', url: `/v1/private-certificates/${deletable}`, headers: harness.auth() });
  t.equal(deleted.statusCode, 204, deleted.body);
  const key = randomUUID();
  const reissued = await issue(sub.id, undefined, key);
  t.equal(reissued.statusCode, 200, reissued.body);
  t.match((await issue()).json(), quotaUsedUp, 'found at its quota');
  t.equal((await issue(otherRoot.id, OTHER_DOMAIN)).statusCode, 200);

  const signaturesBefore = await signatures();
  const redosBefore = await redos('statement');
  // Keyed and keyless requests at the cap, sent with another domain's: before, each of ours was signed by the
  // one-statement batch and then refused, and a keyed one failed that statement for its batch mates too.
  const [ours, theirs] = await Promise.all([
    Promise.all([...Array.from({ length: 3 }, () => issue(sub.id, undefined, randomUUID())), ...Array.from({ length: 4 }, () => issue())]),
    Promise.all([issue(otherRoot.id, OTHER_DOMAIN, randomUUID()), issue(otherRoot.id, OTHER_DOMAIN)]),
  ]);
  for (const response of ours) t.match(response.json(), quotaUsedUp);
  for (const response of theirs) t.equal(response.statusCode, 200, response.body);
  t.equal(await signatures(), signaturesBefore + theirs.length, "only the other domain's certificates were signed");
  t.equal(await redos('statement'), redosBefore, 'no statement failed');

  // Found at its quota, the domain's requests are answered on its committed count with no transaction at all: a
  // replay with its key's certificate, fresh keys and keyless requests refused.
  resetSeen();
  const [replay, ...refused] = await Promise.all([
    issue(sub.id, undefined, key),
    ...Array.from({ length: 3 }, () => issue(sub.id, undefined, randomUUID())),
    ...Array.from({ length: 4 }, () => issue()),
  ]);
  t.equal(replay!.statusCode, 200, replay!.body);
  t.equal(replay!.json().certificate_id, reissued.json().certificate_id, 'the replay answers its certificate');
  for (const response of refused) t.match(response.json(), quotaUsedUp);
  t.equal(seen.transactions + prismaTransactions, 0, 'no transaction opened for them');
  t.ok(seen.statements.includes('certificates-used'), "the domain's count read instead");
  t.equal(await signatures(), signaturesBefore + theirs.length, 'none was signed');
  t.equal(await used(), QUOTA);
  t.equal(await db.certificate.count({ where: { domainId: harness.config.defaultDomainId, deletedAt: null } }), QUOTA);
});

t.test('among thousands of CAs and keys, the batch reads and writes them by primary key', async (t) => {
  // Tables the planner knows to be large: with the few rows of a test it would rightly scan them. Each CA has a key
  // of its own, as real ones do (the statement looks the CSRs' keys up among the held CA keys).
  await db.$executeRawUnsafe(
    `INSERT INTO certificate_authorities
     SELECT (json_populate_record(ca, json_build_object('id', gen_random_uuid(), 'serial_number', md5(g::text),
                                                        'public_key_spki', '\\x' || md5(g::text)))).*
       FROM certificate_authorities ca, generate_series(1, 3000) g WHERE ca.id = $1::uuid`,
    otherRoot.id,
  );
  await db.$executeRawUnsafe(
    `INSERT INTO idempotency_keys (domain_id, endpoint, key, request_hash, certificate_id, created_at)
     SELECT 'filler-domain', 'POST /filler', 'k-' || g, 'h', gen_random_uuid(), now() FROM generate_series(1, 3000) g`,
  );
  await db.$executeRawUnsafe('ANALYZE certificate_authorities');
  await db.$executeRawUnsafe('ANALYZE idempotency_keys');
  resetSeen();
  seen.lastInsert = undefined;
  const keyed = await issue(otherRoot.id, OTHER_DOMAIN, randomUUID());
  t.equal(keyed.statusCode, 200, keyed.body);
  t.equal(seen.transactions, 0, 'issued by the one-statement batch');
  const { statement, values } = seen.lastInsert!;
  const plan = await database.query<{ 'QUERY PLAN': string }>(
    { name: 'explain-batch-among-many', text: `EXPLAIN ${statement.text}` },
    values,
  );
  const batch = plan.map((row) => row['QUERY PLAN']).join('\n');
  t.match(batch, /Index Cond: \(id = ANY/, batch);
  t.match(batch, /Bitmap Index Scan on certificate_authorities_public_key_spki_idx/, batch);
  t.notMatch(batch, /Seq Scan on (certificate_authorities|idempotency_keys)/, batch);

  // The transaction path's giving back of a refused request's key (a rare path, on the same large table).
  const release = await database.query<{ 'QUERY PLAN': string }>(
    { name: 'explain-release-among-many', text: `EXPLAIN ${RELEASE_IDEMPOTENCY_KEYS.text}` },
    [JSON.stringify([{ domain_id: OTHER_DOMAIN, endpoint: ENDPOINT.createByCsr, key: 'k-1' }])],
  );
  const released = release.map((row) => row['QUERY PLAN']).join('\n');
  t.match(released, /Index Scan using idempotency_keys_pkey/, released);
  t.notMatch(released, /Seq Scan/, released);
});
