/**
 * Each revocation's CRL entry is encoded by Postgres when the row is written (`revocations.entry_der`, a
 * generated column): it must be exactly what the CRL codec's encodeRevokedEntry writes, for every serial shape,
 * date range and reason, and for rows written by any path.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { Prisma } from '../../src/db/generated/client.ts';
import { CRL_REASON_CODES, encodeRevokedEntry } from '../../src/x509/crl.ts';
import { testDatabase } from '../helpers/database.ts';

const database = await testDatabase();
t.teardown(() => database.close());
const prisma = database.prisma;

const hex = (bytes: Uint8Array | null) => (bytes ? Buffer.from(bytes).toString('hex') : 'null');

t.test('the SQL encoding equals encodeRevokedEntry', async (t) => {
  const serials = ['01', '00', '7f', '80', 'ff', '0080', '00ff01', 'abc', 'f'.repeat(40), '7'.repeat(40), `${'0'.repeat(6)}12`];
  const dates = [
    new Date('2026-12-02T10:20:30.999Z'), // milliseconds are dropped, not rounded
    new Date('1950-01-01T00:00:00Z'),
    new Date('2049-12-31T23:59:59.500Z'),
    new Date('2050-01-01T00:00:00Z'), // GeneralizedTime from 2050
    new Date('1949-12-31T23:59:59Z'),
  ];
  let compared = 0;
  for (const serialNumber of serials) {
    for (const revocationDate of dates) {
      for (const reasonCode of CRL_REASON_CODES) {
        const [row] = await prisma.$queryRaw<{ der: Uint8Array }[]>`
          SELECT crl_entry_der(${serialNumber}, ${revocationDate}::timestamptz(3), ${reasonCode}) AS der`;
        const expected = hex(encodeRevokedEntry({ serialNumber, revocationDate, reasonCode }));
        if (hex(row!.der) !== expected)
          t.fail(`${serialNumber} ${revocationDate.toISOString()} reason ${reasonCode}: ${hex(row!.der)}, want ${expected}`);
        compared++;
      }
    }
  }
  t.equal(compared, serials.length * dates.length * CRL_REASON_CODES.length, `${compared} entries compared`);
});

t.test('rows get their entry whoever writes them, and cannot be given another', async (t) => {
  const issuerId = randomUUID();
  const revokedAt = new Date('2026-03-04T05:06:07.123Z');
  const notAfter = new Date('2027-01-01T00:00:00Z');
  const created = await prisma.revocation.create({ data: { issuerId, serialNumber: '8badf00d', revokedAt, reasonCode: 1, notAfter } });
  t.equal(
    hex(created.entryDer),
    hex(encodeRevokedEntry({ serialNumber: '8badf00d', revocationDate: revokedAt, reasonCode: 1 })),
    'Prisma create',
  );
  await prisma.$executeRaw`
    INSERT INTO revocations (issuer_id, serial_number, revoked_at, reason_code, not_after)
    VALUES (${issuerId}::uuid, '01', ${revokedAt}::timestamptz, 0, ${notAfter}::timestamptz)`;
  const raw = await prisma.revocation.findUniqueOrThrow({ where: { issuerId_serialNumber: { issuerId, serialNumber: '01' } } });
  t.equal(hex(raw.entryDer), hex(encodeRevokedEntry({ serialNumber: '01', revocationDate: revokedAt, reasonCode: 0 })), 'raw SQL insert');

  await t.rejects(
    prisma.$executeRaw`UPDATE revocations SET entry_der = '\\x3000'::bytea WHERE issuer_id = ${issuerId}::uuid`,
    'the column is generated: no writer can store another encoding',
  );
  await t.rejects(
    prisma.$executeRaw(Prisma.sql`
      INSERT INTO revocations (issuer_id, serial_number, revoked_at, reason_code, not_after)
      VALUES (${issuerId}::uuid, '02', now(), 7, now())`),
    'a reason no CRL may carry is refused by the table',
  );
});
