// Every session the service opens is in UTC, whatever the server's or the database's TimeZone: Prisma's adapter sends
// a Date as a timestamp without zone, which a session elsewhere reads as its local time, while the raw statements of
// the hot paths send the zone; and date arithmetic in SQL (a month) is reckoned in the session's zone. On Postgres
// with the database's TimeZone set to New York, and on a PGlite whose session was moved there before it was opened.
import { randomUUID } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import t, { type Test } from 'tap';
import { type DatabaseHandle, openDatabase } from '../../src/db/database.ts';
import { Prisma } from '../../src/db/generated/client.ts';
import { postgresTestDatabase, realPostgresOrSkipFile } from '../helpers/database.ts';

const NEW_YORK = 'America/New_York';
const server = await realPostgresOrSkipFile(t);
t.teardown(() => server.stop());
const noon = new Date('2026-03-30T12:00:00Z');

async function checkSessionsInUtc(t: Test, db: DatabaseHandle) {
  const setting = { name: 'time-zone-setting', text: "SELECT current_setting('timezone') AS zone" };
  t.same(await db.query(setting, []), [{ zone: 'UTC' }], 'a statement');
  t.same(await db.transaction((run) => run(setting, [])), [{ zone: 'UTC' }], 'a raw transaction');
  const [viaPrisma] = await db.prisma.$queryRawUnsafe<{ utc: string }[]>("SELECT ($1::timestamptz AT TIME ZONE 'UTC')::text AS utc", noon);
  t.equal(viaPrisma!.utc, '2026-03-30 12:00:00', "a Date sent by Prisma's adapter is the instant it names");
  const [month] = await db.query<{ end: string }>(
    { name: 'month-later', text: "SELECT (($1::timestamptz + interval '1 month') AT TIME ZONE 'UTC')::text AS end" },
    [new Date('2026-03-01T00:00:00Z')],
  );
  t.equal(month!.end, '2026-04-01 00:00:00', 'a month after 1 March (UTC) is 1 April (UTC)');
}

t.test(`Postgres, the database's TimeZone ${NEW_YORK}`, async (t) => {
  const created = await postgresTestDatabase(server.url);
  t.teardown(() => created.close());
  const admin = new pg.Client({ connectionString: created.url });
  await admin.connect();
  await admin.query(`ALTER DATABASE "${new URL(created.url!).pathname.slice(1)}" SET timezone TO '${NEW_YORK}'`);
  await admin.end();
  // Sessions opened after the change.
  const db = await openDatabase({ url: created.url! });
  t.teardown(() => db.close());
  await checkSessionsInUtc(t, db);
  const id = randomUUID();
  await db.prisma.billingRecord.create({
    data: {
      id,
      uniqueKey: `CERT_ISSUE:${id}`,
      domainId: 'time-zone-domain',
      resourceType: 'CERTIFICATE',
      resourceId: id,
      chargingMode: 1,
      usageType: 'CERT_ISSUE',
      usageStart: noon,
      usageEnd: noon,
      usageAmount: 1n,
      unitPrice: new Prisma.Decimal('0.05'),
      amount: new Prisma.Decimal('0.05'),
      currency: 'CNY',
    },
  });
  const [stored] = await db.query<{ matches: boolean }>(
    { name: 'stored-instant', text: 'SELECT usage_start = $2::timestamptz AS matches FROM billing_records WHERE id = $1::uuid' },
    [id, noon],
  );
  t.equal(stored!.matches, true, 'a row Prisma wrote holds the instant that raw statements compare with');
});

t.test(`PGlite, its session moved to ${NEW_YORK} before it is opened`, async (t) => {
  const pglite = await PGlite.create();
  t.teardown(() => pglite.close());
  await pglite.exec(`SET TIME ZONE '${NEW_YORK}'`);
  const db = await openDatabase({ pglite });
  t.teardown(() => db.close());
  await checkSessionsInUtc(t, db);
});
