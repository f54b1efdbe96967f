/**
 * AUDIT_RETENTION_DAYS (src/services/audit/audit-retention.ts): the audit-retention job deletes the events older than
 * the retention, of every domain, and nothing else; unset, it deletes nothing. Runs on the test database (PGlite, or
 * DATABASE_URL's Postgres).
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { AUDIT_RETENTION_JOB, auditRetentionJob } from '../../src/services/audit/audit-retention.ts';
import { createTestApp, OTHER_DOMAIN, TEST_DOMAIN, testConfig } from '../helpers/app.ts';

const DAY_MS = 86_400_000;
const now = new Date();
const daysAgo = (days: number, extraMs = 0) => new Date(now.getTime() - days * DAY_MS - extraMs);

const harness = await createTestApp({ env: { AUDIT_RETENTION_DAYS: '30' } });
t.teardown(() => harness.close());
const { prisma } = harness.database;

type Prisma = typeof harness.database.prisma;

/** Events made at the given moments, in both domains alternately; their ids. */
async function eventsAt(moments: Date[], action: string, db: Prisma = prisma): Promise<string[]> {
  const rows = moments.map((createdAt, at) => ({
    id: randomUUID(),
    domainId: at % 2 === 0 ? TEST_DOMAIN : OTHER_DOMAIN,
    actor: 'retention-test',
    action,
    outcome: 'SUCCESS',
    requestId: randomUUID(),
    createdAt,
  }));
  await db.auditEvent.createMany({ data: rows });
  return rows.map(({ id }) => id);
}

const remaining = async (action: string, db: Prisma = prisma) =>
  (await db.auditEvent.findMany({ where: { action }, select: { id: true } })).map(({ id }) => id).sort();

t.test('events older than AUDIT_RETENTION_DAYS go, of every domain; younger ones stay', async (t) => {
  const [older, justOver] = await eventsAt([daysAgo(31), daysAgo(30, 1)], 'test:old');
  const kept = await eventsAt([daysAgo(30), daysAgo(29), now], 'test:young');
  t.ok(older && justOver);
  const before = await prisma.auditEvent.count();

  const job = harness.app.jobRunner.job(AUDIT_RETENTION_JOB);
  t.equal(job.intervalSeconds, 3600, 'hourly');
  const result = (await job.run({ now, log: harness.app.log })) as { deleted: number; before: string };
  t.equal(result.deleted, 2, 'the two past the cutoff');
  t.equal(result.before, daysAgo(30).toISOString(), 'the cutoff: 30 days before the run');
  t.same(await remaining('test:old'), [], 'older than 30 days, in both domains: gone');
  t.same(await remaining('test:young'), [...kept].sort(), '30 days old exactly and younger: kept');
  t.equal(await prisma.auditEvent.count(), before - 2, 'nothing else deleted');
});

t.test('a backlog goes domain by domain, in bounded statements, until none is left', async (t) => {
  await eventsAt(
    Array.from({ length: 7 }, (_, at) => daysAgo(40 + at)),
    'test:backlog',
  );
  // The deletes counted: 4 expired events in one domain and 3 in the other, at most 3 a statement.
  let deletes = 0;
  const counting = new Proxy(prisma, {
    get: (target, name) =>
      name === '$executeRaw'
        ? (...args: Parameters<typeof prisma.$executeRaw>) => {
            deletes += 1;
            return target.$executeRaw(...args);
          }
        : Reflect.get(target, name),
  });
  const job = auditRetentionJob({ db: counting, retentionDays: 30 }, 3600, 3);
  t.same(await job.run({ now, log: harness.app.log }), { deleted: 7, before: daysAgo(30).toISOString() });
  t.equal(deletes, 4, 'per domain: 3 then 1, and 3 then 0 (a statement that deletes fewer than 3 ends the domain)');
  t.same(await remaining('test:backlog'), []);
});

t.test('AUDIT_RETENTION_DAYS: whole days from 1, or unset', async (t) => {
  t.equal(testConfig({ AUDIT_RETENTION_DAYS: '90' }).auditRetentionDays, 90);
  t.equal(testConfig({ AUDIT_RETENTION_DAYS: '' }).auditRetentionDays, undefined, 'empty: kept');
  t.equal(testConfig().auditRetentionDays, undefined);
  for (const wrong of ['0', '1.5', 'a month', '36501'])
    t.throws(
      () => testConfig({ AUDIT_RETENTION_DAYS: wrong }),
      { name: 'ConfigError', message: /AUDIT_RETENTION_DAYS must be an integer from 1 to 36500/ },
      wrong,
    );
});

t.test('without AUDIT_RETENTION_DAYS events are kept, however old', async (t) => {
  const keeping = await createTestApp();
  t.teardown(() => keeping.close());
  const ids = await eventsAt([daysAgo(3650), daysAgo(400)], 'test:ancient', keeping.database.prisma);
  const result = await keeping.app.jobRunner.job(AUDIT_RETENTION_JOB).run({ now, log: keeping.app.log });
  t.same(result, { deleted: 0, kept: 'AUDIT_RETENTION_DAYS is not set' });
  t.same(await remaining('test:ancient', keeping.database.prisma), [...ids].sort());
});
