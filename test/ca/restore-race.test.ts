/**
 * A restore judged at the time it holds the CA's row, not the time it asked for it: one that waited behind another
 * transaction until past delete_time finds the CA removed (404), as every caller is told from then on, instead of
 * bringing it back after its removal was announced. Real Postgres: the test holds the row and waits until the
 * restore is seen waiting for it (pg_stat_activity), so the order is forced, not hoped for.
 */
import t from 'tap';
import { ManualClock } from '../../src/clock.ts';
import { CA, DN, assertError, client } from './support.ts';
import { createTestAppOnRealPostgres } from '../helpers/app.ts';
import { realPostgresOrSkipFile } from '../helpers/database.ts';

const postgres = await realPostgresOrSkipFile(t);
const clock = new ManualClock(Date.now());
const harness = await createTestAppOnRealPostgres(postgres, { clock });
t.teardown(() => harness.close());
const api = client(harness);
const prisma = harness.database.prisma;

t.test('a restore that waited for the CA row past delete_time gets 404 and the CA stays deleted', async (t) => {
  const ca = await api.root({ distinguished_name: { ...DN, common_name: 'restore-race' } });
  t.equal((await api.call('POST', `${CA}/${ca}/disable`)).status, 204);
  t.equal((await api.call('DELETE', `${CA}/${ca}?pending_days=7`)).status, 204);
  const { deleteTime } = await prisma.certificateAuthority.findUniqueOrThrow({ where: { id: ca } });
  clock.set(deleteTime!.getTime() - 1000);

  let restore: ReturnType<typeof api.call> | undefined;
  await prisma.$transaction(
    async (tx) => {
      await tx.$queryRawUnsafe('SELECT id FROM certificate_authorities WHERE id = $1::uuid FOR UPDATE', ca);
      restore = api.call('POST', `${CA}/${ca}/restore`);
      // Until the restore's transaction waits for this row (a statement of another connection waiting on a lock).
      for (;;) {
        const [{ waiting }] = await prisma.$queryRawUnsafe<{ waiting: number }[]>(
          `SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
        );
        if (waiting > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      clock.set(deleteTime!.getTime() + 1000);
    },
    { timeout: 60_000 },
  );
  assertError(t, await restore!, 404, 'PCA.10010002');
  t.equal((await prisma.certificateAuthority.findUniqueOrThrow({ where: { id: ca } })).status, 'DELETED', 'not restored');
});
