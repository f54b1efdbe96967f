// openDatabase on both backends: interactive transactions, advisory locks, row locks and unique violations
// behave as the services rely on. Postgres comes from DATABASE_URL, else from a throwaway local cluster.
import t from 'tap';
import { isUniqueViolation } from '../../src/db/errors.ts';
import { readMigrationList } from '../../src/db/migrate.ts';
import { Prisma } from '../../src/db/generated/client.ts';
import { pgliteTestDatabase, postgresTestDatabase, startTestPostgres, type TestDatabase } from '../helpers/database.ts';

const MIGRATIONS = (await readMigrationList('prisma/migrations')).migrationDirectories.length;

async function postgresServerUrl(): Promise<string | undefined> {
  if (process.env.DATABASE_URL) return process.env.DATABASE_URL;
  const server = await startTestPostgres();
  if (server) t.teardown(server.stop);
  return server?.url;
}

const serverUrl = await postgresServerUrl();
const backends: Array<{ kind: 'pglite' | 'postgres'; open: () => Promise<TestDatabase> }> = [{ kind: 'pglite', open: pgliteTestDatabase }];
if (serverUrl) backends.push({ kind: 'postgres', open: () => postgresTestDatabase(serverUrl) });
else t.comment('no DATABASE_URL and no Postgres binaries: Postgres cases not run');

const revocation = (serialNumber: string) => ({
  issuerId: '00000000-0000-4000-8000-000000000001',
  serialNumber,
  revokedAt: new Date(),
  reasonCode: 1,
  notAfter: new Date(Date.now() + 86_400_000),
});

for (const { kind, open } of backends) {
  t.test(kind, async (t) => {
    const started = Date.now();
    const db = await open();
    t.comment(`${kind}: fresh migrated database in ${Date.now() - started} ms`);
    t.teardown(() => db.close());
    const { prisma } = db;

    t.test('answers and starts empty', async (t) => {
      t.equal(db.kind, kind);
      await db.ping();
      t.equal(await prisma.domain.count(), 0);
      const [{ count }] = await prisma.$queryRaw<Array<{ count: bigint }>>`SELECT count(*) AS count FROM _prisma_migrations`;
      t.equal(Number(count), MIGRATIONS, 'migrated');
    });

    t.test('a failed interactive transaction leaves nothing behind', async (t) => {
      await t.rejects(
        prisma.$transaction(async (tx) => {
          await tx.domain.create({ data: { id: 'rolled-back', name: 'x' } });
          await tx.revocation.create({ data: revocation('01') });
          t.equal(await tx.domain.count(), 1, 'visible inside the transaction');
          throw new Error('abort');
        }),
        /abort/,
      );
      t.equal(await prisma.domain.count(), 0);
      t.equal(await prisma.revocation.count(), 0);
    });

    t.test('a transaction-scoped advisory lock excludes a second transaction', async (t) => {
      // On Postgres the holder keeps the lock until the other attempt has been answered, so the second attempt meets
      // a held lock whichever starts first and however slowly; PGlite runs one transaction at a time.
      let holders = 0;
      let overlapped = false;
      let answered!: () => void;
      const otherAnswered = new Promise<void>((resolve) => (answered = resolve));
      const attempt = () =>
        prisma.$transaction(async (tx) => {
          const [{ locked }] = await tx.$queryRaw<Array<{ locked: boolean }>>`SELECT pg_try_advisory_xact_lock(4242) AS locked`;
          if (!locked) {
            answered();
            return false;
          }
          overlapped ||= holders > 0;
          holders++;
          if (overlapped) answered(); // a broken lock: let both finish so the assertion below reports it
          if (kind === 'postgres') await otherAnswered;
          holders--;
          return true;
        });
      const outcomes = await Promise.all([attempt(), attempt()]);
      t.notOk(overlapped, 'never two holders at once');
      if (kind === 'postgres') t.same(outcomes.sort(), [false, true], 'the second was turned away');
      else t.same(outcomes, [true, true], 'PGlite runs one transaction at a time: the second came after');
      t.equal(await attempt(), true, 'released at commit');
    });

    t.test('SELECT ... FOR UPDATE serialises read-modify-write', async (t) => {
      // Three increments at once. Without the row lock each writes only once all three have read (the control always
      // interleaves); with it, once the other two have sent their read, which then waits for the commit. On PGlite
      // (one transaction at a time) nobody waits.
      const gate = (parties: number) => {
        let arrived = 0;
        let open!: () => void;
        const opened = new Promise<void>((resolve) => (open = resolve));
        return () => {
          arrived += 1;
          if (arrived === parties) open();
          return opened;
        };
      };
      const increment = (id: string, lock: boolean, arrive: () => Promise<void>) =>
        prisma.$transaction(async (tx) => {
          const othersSent = lock ? arrive() : undefined;
          const [row] = lock
            ? await tx.$queryRaw<Array<{ name: string }>>`SELECT name FROM domains WHERE id = ${id} FOR UPDATE`
            : await tx.$queryRaw<Array<{ name: string }>>`SELECT name FROM domains WHERE id = ${id}`;
          await (othersSent ?? arrive());
          await tx.domain.update({ where: { id }, data: { name: String(Number(row.name) + 1) } });
        });
      const three = (id: string, lock: boolean) => {
        const arrive = gate(kind === 'postgres' ? 3 : 1);
        return Promise.all([increment(id, lock, arrive), increment(id, lock, arrive), increment(id, lock, arrive)]);
      };
      await prisma.domain.create({ data: { id: 'locked', name: '0' } });
      await three('locked', true);
      t.equal((await prisma.domain.findUniqueOrThrow({ where: { id: 'locked' } })).name, '3');
      if (kind === 'postgres') {
        // The control: the same transactions without the row lock, all three having read 0, each write 1.
        await prisma.domain.create({ data: { id: 'unlocked', name: '0' } });
        await three('unlocked', false);
        t.equal((await prisma.domain.findUniqueOrThrow({ where: { id: 'unlocked' } })).name, '1', 'two updates lost without FOR UPDATE');
      }
    });

    t.test('unique violations are P2002 Prisma errors', async (t) => {
      await prisma.domain.create({ data: { id: 'dup', name: 'x' } });
      const single = await prisma.domain.create({ data: { id: 'dup', name: 'y' } }).catch((error: unknown) => error);
      t.type(single, Prisma.PrismaClientKnownRequestError);
      const known = single as Prisma.PrismaClientKnownRequestError;
      t.equal(known.code, 'P2002');
      t.equal(known.meta?.modelName, 'Domain');
      const cause = (known.meta?.driverAdapterError as { cause: Record<string, unknown> } | undefined)?.cause;
      t.match(cause, { kind: 'UniqueConstraintViolation', originalCode: '23505' });
      // The adapters describe the constraint differently: PGlite by fields, pg by index name.
      t.same(cause?.constraint, kind === 'pglite' ? { fields: ['id'] } : { index: 'domains_pkey' });
      t.ok(isUniqueViolation(single));

      await prisma.revocation.create({ data: revocation('02') });
      const composite = await prisma
        .$transaction(async (tx) => {
          await tx.domain.create({ data: { id: 'in-failed-transaction', name: 'x' } });
          await tx.revocation.create({ data: revocation('02') });
        })
        .catch((error: unknown) => error);
      t.equal((composite as Prisma.PrismaClientKnownRequestError).code, 'P2002', 'composite key, inside a transaction');
      t.equal(await prisma.domain.count({ where: { id: 'in-failed-transaction' } }), 0, 'rolled back');

      const raw = await prisma.$executeRaw`INSERT INTO domains (id, name) VALUES ('dup', 'z')`.catch((error: unknown) => error);
      t.equal((raw as Prisma.PrismaClientKnownRequestError).code, 'P2010', 'raw queries report P2010');
      t.ok(isUniqueViolation(raw), 'isUniqueViolation sees through P2010');

      const notFound = await prisma.domain.findUniqueOrThrow({ where: { id: 'absent' } }).catch((error: unknown) => error);
      t.notOk(isUniqueViolation(notFound));
      t.notOk(isUniqueViolation(new Error('Unique constraint failed')));
    });
  });
}

t.test('a closed test database comes back empty, without session state', async (t) => {
  const first = await pgliteTestDatabase();
  await first.prisma.domain.create({ data: { id: 'left-over', name: 'x' } });
  await first.prisma.$executeRaw`SELECT pg_advisory_lock(77)`;
  await first.close();
  const started = Date.now();
  const second = await pgliteTestDatabase();
  t.comment(`pglite: recycled database in ${Date.now() - started} ms`);
  t.teardown(() => second.close());
  t.equal(await second.prisma.domain.count(), 0);
  const [{ locked }] = await second.prisma.$queryRaw<Array<{ locked: boolean }>>`SELECT pg_try_advisory_xact_lock(77) AS locked`;
  t.equal(locked, true, 'session advisory lock released');
});
