/**
 * insertRows (the issuance batch's multi-row insert) stores every value type the batch writes exactly as Prisma's
 * own create does: bytea, timestamps to the millisecond, bigint, decimals, JSON, nulls, column defaults.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import t from 'tap';
import { insertRows } from '../../src/db/bulk-insert.ts';
import { Prisma } from '../../src/db/generated/client.ts';
import { testDatabase } from '../helpers/database.ts';

const database = await testDatabase();
t.teardown(() => database.close());
const { prisma } = database;

t.test('audit events and billing records read back field for field', async (t) => {
  const at = new Date('2026-11-23T16:01:02.345Z');
  const events = [0, 1, 2].map((index) => ({
    id: randomUUID(),
    domainId: 'domain-a',
    actor: `actor-${index}`,
    action: 'pca:ca:issueCert',
    resourceType: index === 2 ? null : 'CERTIFICATE',
    resourceId: randomUUID(),
    outcome: 'SUCCESS',
    requestId: `req-${index}`,
    detail: { serial_number: 'ab'.repeat(16), nested: { quote: 'a "quoted" \\ value', list: [1, null, true] } },
  }));
  await prisma.$transaction((tx) => insertRows(tx, ['audit_events', events]));
  const stored = await prisma.auditEvent.findMany({ where: { domainId: 'domain-a' }, orderBy: { actor: 'asc' } });
  t.same(
    stored.map(({ createdAt: _createdAt, ...rest }) => rest),
    events,
    'every column as given, JSON included',
  );
  t.ok(
    stored.every((event) => Math.abs(event.createdAt.getTime() - Date.now()) < 60_000),
    'created_at took its default',
  );

  const record = {
    id: randomUUID(),
    uniqueKey: `CERT_ISSUE:${randomUUID()}`,
    domainId: 'domain-a',
    resourceType: 'CERTIFICATE',
    resourceId: randomUUID(),
    chargingMode: 1,
    usageType: 'CERT_ISSUE',
    usageStart: at,
    usageEnd: at,
    usageAmount: 9_007_199_254_740_993n, // above 2^53: must not pass through a JS number
    unitPrice: new Prisma.Decimal('0.12345678'),
    amount: new Prisma.Decimal('12345678901234567890.12345678'),
    currency: 'CNY',
  };
  await prisma.$transaction((tx) => insertRows(tx, ['billing_records', [record]]));
  const billed = await prisma.billingRecord.findUniqueOrThrow({ where: { id: record.id } });
  t.equal(billed.usageAmount, record.usageAmount);
  t.equal(billed.unitPrice.toString(), '0.12345678');
  t.equal(billed.amount.toFixed(8), '12345678901234567890.12345678');
  t.equal(billed.usageStart.toISOString(), at.toISOString(), 'milliseconds kept');
});

t.test('certificate rows keep their DER bytes, whether given as Uint8Array or Buffer', async (t) => {
  const issuerId = randomUUID();
  const row = (der: Uint8Array) => ({
    id: randomUUID(),
    domainId: 'domain-b',
    issuerId,
    type: 'ENTITY_CERT',
    status: 'ISSUED',
    genMode: 'CSR',
    pathLength: null,
    keyAlgorithm: 'EC256',
    signatureAlgorithm: 'SHA384',
    commonName: 'svc.example.com',
    country: null,
    state: null,
    locality: null,
    organization: "O'Brien & Co",
    organizationalUnit: null,
    serialNumber: randomBytes(16).toString('hex'),
    notBefore: new Date('2026-01-01T00:00:00.000Z'),
    notAfter: new Date('2027-01-01T00:00:00.999Z'),
    certificateDer: der,
    sealedPrivateKey: null,
    enterpriseProjectId: '0',
    createdAt: new Date(),
  });
  const bytes = new Uint8Array(randomBytes(300));
  const fromView = row(bytes.subarray(10, 200)); // a view with an offset into a larger buffer
  const fromBuffer = row(Buffer.from(bytes));
  await prisma.$transaction((tx) => insertRows(tx, ['certificates', [fromView, fromBuffer]]));
  const stored = await prisma.certificate.findMany({ where: { issuerId } });
  const byId = new Map(stored.map((certificate) => [certificate.id, certificate]));
  t.same(Buffer.from(byId.get(fromView.id)!.certificateDer), Buffer.from(bytes.subarray(10, 200)));
  t.same(Buffer.from(byId.get(fromBuffer.id)!.certificateDer), Buffer.from(bytes));
  t.equal(byId.get(fromView.id)!.organization, "O'Brien & Co");
  t.equal(byId.get(fromView.id)!.notAfter.toISOString(), '2027-01-01T00:00:00.999Z');
});

t.test('timestamps: each row keeps its own, when a batch mixes moments and repeats them', async (t) => {
  const moments = ['2026-12-05T07:00:00.001Z', '2026-12-05T07:00:00.002Z', '1999-12-31T23:59:59.999Z'].map((iso) => new Date(iso));
  // Pairs that repeat a moment, alternate two, and return to an earlier one: a text kept for the wrong moment shows.
  const pairs: [number, number][] = [
    [0, 0],
    [0, 1],
    [1, 0],
    [2, 2],
    [0, 2],
    [1, 1],
  ];
  const records = pairs.map(([start, end]) => ({
    id: randomUUID(),
    uniqueKey: `CERT_ISSUE:${randomUUID()}`,
    domainId: 'domain-t',
    resourceType: 'CERTIFICATE',
    resourceId: randomUUID(),
    chargingMode: 1,
    usageType: 'CERT_ISSUE',
    usageStart: new Date(moments[start]!), // distinct Date objects of equal moments
    usageEnd: new Date(moments[end]!),
    usageAmount: 1n,
    unitPrice: new Prisma.Decimal('0.1'),
    amount: new Prisma.Decimal('0.1'),
    currency: 'CNY',
  }));
  await prisma.$transaction((tx) => insertRows(tx, ['billing_records', records]));
  const stored = new Map(
    (await prisma.billingRecord.findMany({ where: { domainId: 'domain-t' } })).map((record) => [
      record.id,
      [record.usageStart.toISOString(), record.usageEnd.toISOString()],
    ]),
  );
  t.same(
    records.map((record) => stored.get(record.id)),
    pairs.map(([start, end]) => [moments[start]!.toISOString(), moments[end]!.toISOString()]),
  );
});

t.test('a failing row fails the whole statement and the transaction writes nothing', async (t) => {
  const good = { id: randomUUID(), domainId: 'domain-c', actor: 'a', action: 'x', outcome: 'SUCCESS', requestId: 'r' };
  const missingActor = { ...good, id: randomUUID(), actor: null };
  await t.rejects(prisma.$transaction((tx) => insertRows(tx, ['audit_events', [good, missingActor]])));
  t.equal(await prisma.auditEvent.count({ where: { domainId: 'domain-c' } }), 0);
  await t.resolves(
    prisma.$transaction((tx) => insertRows(tx, ['audit_events', []])),
    'no rows, no statement',
  );
});

t.test('several tables in one statement: every row lands, or none in any table when one row fails', async (t) => {
  const event = (domainId: string, actor: string | null) => ({
    id: randomUUID(),
    domainId,
    actor,
    action: 'pca:ca:issueCert',
    outcome: 'SUCCESS',
    requestId: 'r',
  });
  const record = (domainId: string) => ({
    id: randomUUID(),
    uniqueKey: `CERT_ISSUE:${randomUUID()}`,
    domainId,
    resourceType: 'CERTIFICATE',
    resourceId: randomUUID(),
    chargingMode: 1,
    usageType: 'CERT_ISSUE',
    usageStart: new Date(),
    usageEnd: new Date(),
    usageAmount: 1n,
    unitPrice: new Prisma.Decimal('0.1'),
    amount: new Prisma.Decimal('0.1'),
    currency: 'CNY',
  });
  await prisma.$transaction((tx) =>
    insertRows(
      tx,
      ['audit_events', [event('domain-d', 'a'), event('domain-d', 'b')]],
      ['billing_records', []],
      ['billing_records', [record('domain-d')]],
    ),
  );
  t.equal(await prisma.auditEvent.count({ where: { domainId: 'domain-d' } }), 2);
  t.equal(await prisma.billingRecord.count({ where: { domainId: 'domain-d' } }), 1, 'an empty table in the list is skipped');

  await t.rejects(
    prisma.$transaction((tx) => insertRows(tx, ['billing_records', [record('domain-e')]], ['audit_events', [event('domain-e', null)]])),
  );
  t.equal(await prisma.billingRecord.count({ where: { domainId: 'domain-e' } }), 0, 'the other table rolled back with the statement');
  t.equal(await prisma.auditEvent.count({ where: { domainId: 'domain-e' } }), 0);
});
