/**
 * Expiry jobs delete in bounded statements (src/db/batched-delete.ts): every matching row goes, over as many
 * statements as it takes, and no other row does.
 */
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { deleteInBatches } from '../../src/db/batched-delete.ts';
import { Prisma } from '../../src/db/generated/client.ts';
import { signatureExpiryJob } from '../../src/services/access-keys/signature-replay.ts';
import { createTestApp } from '../helpers/app.ts';

const harness = await createTestApp();
t.teardown(() => harness.close());
const db = harness.database.prisma;

const expired = new Date('2026-01-01T00:00:00Z');
const fresh = new Date('2099-01-01T00:00:00Z');
async function seed(count: number, expiresAt: Date) {
  await db.seenSignature.createMany({ data: Array.from({ length: count }, () => ({ fingerprint: randomBytes(32), expiresAt })) });
}

/** The database, with the rows each of its DELETE statements removed noted in `deleted`. */
function counting() {
  const deleted: number[] = [];
  const counted = {
    $executeRaw: async (...args: Parameters<typeof db.$executeRaw>) => {
      const count = await db.$executeRaw(...args);
      deleted.push(count);
      return count;
    },
  } as unknown as typeof db;
  return { counted, deleted };
}

t.test('25 matching rows in statements of 10 (a full statement is followed by another): all 25 go, the others stay', async (t) => {
  await seed(25, expired);
  await seed(3, fresh);
  const { counted, deleted } = counting();
  t.equal(await deleteInBatches(counted, 'seen_signatures', Prisma.sql`expires_at < ${new Date('2027-01-01T00:00:00Z')}`, 10), 25);
  t.same(deleted, [10, 10, 5], 'three statements, none over 10 rows');
  t.equal(await db.seenSignature.count({ where: { expiresAt: expired } }), 0);
  t.equal(await db.seenSignature.count({ where: { expiresAt: fresh } }), 3);
  t.equal(await deleteInBatches(db, 'seen_signatures', Prisma.sql`expires_at < ${new Date('2027-01-01T00:00:00Z')}`, 10), 0, 'none left');
});

t.test('exactly a statement full (20 rows, statements of 10): the third statement finds none and the loop ends', async (t) => {
  await seed(20, expired);
  const job = signatureExpiryJob({ db }, 300, 10);
  t.same(await job.run({ now: new Date('2027-01-01T00:00:00Z'), log: harness.app.log }), { deleted: 20 });
  t.equal(await db.seenSignature.count(), 3);
});
