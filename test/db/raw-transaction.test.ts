/**
 * The prepared-statement path the issuance batch runs on (`database.transaction`, `database.query`): on Postgres its
 * own connection and BEGIN/COMMIT, on PGlite a Prisma transaction. What it writes and reads equals what Prisma's
 * model queries write and read; a failure rolls everything back; its statements reach their rows by key, as do the
 * ones every AK/SK-signed request runs on the same path.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import t from 'tap';
import { insertRows } from '../../src/db/bulk-insert.ts';
import type { SqlStatement } from '../../src/db/database.ts';
import { CLAIM_SIGNATURE, USABLE_KEY } from '../../src/services/access-keys/access-keys-sql.ts';
import { shareLockCas } from '../../src/services/ca/ca-store.ts';
import { LOCK_EXISTING_CAS_FOR_SHARE, OWN_EXISTING_CA } from '../../src/services/ca/ca-sql.ts';
import { claimIdempotencyKeys, lookUpIdempotencyKey, releaseIdempotencyKeys } from '../../src/services/certificates/idempotency.ts';
import {
  CERTIFICATES_USED,
  CLAIM_IDEMPOTENCY_KEYS,
  HELD_CA_KEYS,
  keysAsJson,
  LOOK_UP_IDEMPOTENCY_KEY,
  TAKE_CERTIFICATE_QUOTA,
} from '../../src/services/certificates/issuance-sql.ts';
import { takeCertificateQuota } from '../../src/services/certificates/certificate-usage.ts';
import { errors } from '../../src/errors.ts';
import { testDatabase } from '../helpers/database.ts';

const database = await testDatabase();
t.teardown(() => database.close());
const { prisma } = database;

async function caRow(fields: { domainId: string; removedAt?: Date; crlPublishedNumber?: bigint }) {
  return prisma.certificateAuthority.create({
    data: {
      id: randomUUID(),
      domainId: fields.domainId,
      type: 'ROOT',
      status: 'ACTIVED',
      chargingMode: 1,
      freeQuota: 3,
      commonName: 'raw path',
      keyUsages: ['keyCertSign', 'cRLSign'],
      certificateDer: new Uint8Array(randomBytes(40)),
      notAfter: new Date('2030-01-02T03:04:05.678Z'),
      issuancePolicy: { allowed: { dns: ['*.example.com'] } },
      crlPublishedNumber: fields.crlPublishedNumber ?? null,
      removedAt: fields.removedAt ?? null,
    },
  });
}

t.test('the issuers read under the share lock equal the model rows, field for field; removed ones are left out', async (t) => {
  const a = await caRow({ domainId: 'raw-a', crlPublishedNumber: 9_007_199_254_740_993n });
  const b = await caRow({ domainId: 'raw-b' });
  const removed = await caRow({ domainId: 'raw-a', removedAt: new Date('2026-01-01T00:00:00Z') });
  const other = await caRow({ domainId: 'raw-z' });
  const read = await database.transaction((sql) =>
    shareLockCas(sql, [b.id, a.id, removed.id, a.id, other.id], ['raw-a', 'raw-b'], new Date('2026-06-01T00:00:00Z')),
  );
  t.same([...read.keys()].sort(), [a.id, b.id].sort(), "neither the removed CA nor another domain's");
  for (const expected of [a, b]) {
    const { row, version } = read.get(expected.id)!;
    t.match(version, /^[1-9][0-9]*$/, 'with its row version (xmin)');
    t.same(
      { ...row, certificateDer: Buffer.from(row.certificateDer!) },
      { ...expected, certificateDer: Buffer.from(expected.certificateDer!) },
    );
  }
  t.equal(read.get(a.id)!.row.crlPublishedNumber, 9_007_199_254_740_993n, 'a bigint past 2^53 exactly');
});

t.test('a certificate written on the raw path reads back as written; a failing statement rolls the whole transaction back', async (t) => {
  const issuer = await caRow({ domainId: 'raw-c' });
  const row = {
    id: randomUUID(),
    domainId: 'raw-c',
    issuerId: issuer.id,
    type: 'ENTITY_CERT',
    status: 'ISSUED',
    genMode: 'CSR',
    keyAlgorithm: 'EC256',
    signatureAlgorithm: 'SHA256',
    commonName: 'raw.example.com',
    serialNumber: randomBytes(16).toString('hex'),
    notBefore: new Date('2026-11-23T16:01:02.345Z'),
    notAfter: new Date('2026-12-23T16:01:02.345Z'),
    certificateDer: new Uint8Array(randomBytes(300)),
    createdAt: new Date('2026-11-23T16:01:02.345Z'),
  };
  await database.transaction((sql) => insertRows(sql, ['certificates', [row]]));
  const stored = await prisma.certificate.findUniqueOrThrow({ where: { id: row.id } });
  t.same(Buffer.from(stored.certificateDer), Buffer.from(row.certificateDer));
  t.same(stored.notBefore, row.notBefore);
  t.equal(stored.serialNumber, row.serialNumber);

  const second = { ...row, id: randomUUID(), serialNumber: randomBytes(16).toString('hex') };
  const failing = database.transaction(async (sql) => {
    await insertRows(sql, ['certificates', [second]]);
    await sql({ name: 'raw-test-fails', text: 'SELECT 1 / 0' }, []);
  });
  await t.rejects(failing);
  t.equal(await prisma.certificate.count({ where: { id: second.id } }), 0, 'the insert before the failure is gone');
  t.equal(
    (await database.query<{ one: number }>({ name: 'raw-test-one', text: 'SELECT 1::int AS one' }, []))[0]!.one,
    1,
    'the path still answers',
  );
});

t.test('idempotency keys and the quota counter on the raw path', async (t) => {
  const now = new Date('2026-11-23T16:00:00Z');
  const scope = { domainId: 'raw-d', endpoint: 'POST /x', key: 'k1' };
  const certificateId = randomUUID();
  const claimed = await database.transaction((sql) => claimIdempotencyKeys(sql, [{ scope, hash: 'h1', certificateId }], now));
  t.same([...claimed], [certificateId]);
  t.equal(await lookUpIdempotencyKey(database.query, scope, 'h1', now), certificateId);
  await t.rejects(
    lookUpIdempotencyKey(database.query, scope, 'h2', now),
    errors.idempotencyConflict('Idempotency-Key was already used with a different request body'),
  );
  t.equal(await lookUpIdempotencyKey(database.query, scope, 'h1', new Date(now.getTime() + 25 * 3_600_000)), undefined, 'past the window');
  await database.transaction((sql) => releaseIdempotencyKeys(sql, [scope]));
  t.equal(await lookUpIdempotencyKey(database.query, scope, 'h1', now), undefined, 'released');

  t.ok(await database.transaction((sql) => takeCertificateQuota(sql, 'raw-d', 2, 3)));
  t.notOk(await database.transaction((sql) => takeCertificateQuota(sql, 'raw-d', 2, 3)), 'would exceed the quota: nothing taken');
  t.ok(await database.transaction((sql) => takeCertificateQuota(sql, 'raw-d', 1, 3)));
  t.equal((await prisma.domainCertificateUsage.findUniqueOrThrow({ where: { domainId: 'raw-d' } })).used, 3);
});

t.test('the batch statements reach their rows by key (no scan)', async (t) => {
  const planOf = (statement: SqlStatement, values: unknown[]) =>
    prisma.$transaction(async (tx) => {
      await tx.$executeRaw`SET LOCAL enable_seqscan = off`;
      const rows = await tx.$queryRawUnsafe<{ 'QUERY PLAN': string }[]>(`EXPLAIN ${statement.text}`, ...values);
      return rows.map((row) => row['QUERY PLAN']).join('\n');
    });
  const now = new Date();
  const lock = await planOf(LOCK_EXISTING_CAS_FOR_SHARE, [`{${randomUUID()},${randomUUID()}}`, now, now, ['d', 'e']]);
  // On these empty tables the planner may pick the domain's index as well as the key's (as for OWN_EXISTING_CA below).
  t.match(lock, /(Bitmap Index Scan on|Index Scan using) certificate_authorities_(pkey|domain_id_)/, lock);
  t.match(lock, /LockRows/, lock);
  const lookUp = await planOf(LOOK_UP_IDEMPOTENCY_KEY, ['d', 'e', 'k']);
  t.match(lookUp, /Index Scan using idempotency_keys_pkey/, lookUp);
  const quota = await planOf(TAKE_CERTIFICATE_QUOTA, ['d', 1, 10]);
  t.match(quota, /Conflict Arbiter Indexes: domain_certificate_usage_pkey/, quota);
  const ownCa = await planOf(OWN_EXISTING_CA, [randomUUID(), 'd', now, now]);
  // On these empty tables the planner may pick the domain's index as well as the key's: both reach the row by index.
  t.match(ownCa, /Index Scan using certificate_authorities_(pkey|domain_id_)/, ownCa);
  const used = await planOf(CERTIFICATES_USED, ['d']);
  t.match(used, /Index Scan using domain_certificate_usage_pkey/, used);
  // Create-by-CSR's look-up of held CA keys: a probe of the hash index per key, whatever the number of CAs.
  const heldKeys = await planOf(HELD_CA_KEYS, [keysAsJson([randomBytes(91), randomBytes(91)])]);
  t.match(heldKeys, /(Bitmap Index Scan on|Index Scan using) certificate_authorities_public_key_spki_idx/, heldKeys);
  // Every AK/SK-signed request's look-up of its key, and the claim of a signed mutation's signature.
  const signingKey = await planOf(USABLE_KEY, ['AK']);
  t.match(signingKey, /Index Scan using access_keys_pkey/, signingKey);
  const signatureClaim = await planOf(CLAIM_SIGNATURE, [randomBytes(32), now]);
  t.match(signatureClaim, /Conflict Arbiter Indexes: seen_signatures_pkey/, signatureClaim);
  for (const plan of [lock, lookUp, quota, ownCa, used, heldKeys, signingKey, signatureClaim]) t.notMatch(plan, /Seq Scan/, plan);
  // Claims in key order, whatever order the batch lists them in: two claims of overlapping keys cannot deadlock.
  const claim = await planOf(CLAIM_IDEMPOTENCY_KEYS, ['[]', now]);
  t.match(claim, /Insert on idempotency_keys[\s\S]*Sort Key: [^\n]*domain_id, [^\n]*endpoint, [^\n]*key\b/, claim);
});
