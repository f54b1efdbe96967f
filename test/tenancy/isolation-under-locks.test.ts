/**
 * Domain B's calls naming domain A's CAs and certificate answer 404 at once while A's own transactions hold those
 * rows (a transition, a tag write, a CRL's signing hold them so). A CA's id is public (in its certificates' URLs):
 * were B's request to lock A's row before finding it is not B's, it would wait behind A (503 at its lock timeout, where
 * a missing CA answers 404 at once: the CA's existence told) and hold A's next writer up. A real Postgres: PGlite
 * serves one connection, so a transaction holding rows there stops every other statement.
 */
import t from 'tap';
import { createTestAppOnRealPostgres, OTHER_DOMAIN } from '../helpers/app.ts';
import { realPostgresOrSkipFile } from '../helpers/database.ts';
import { seedDomainA, withoutResourceId } from './domain-a.ts';
import { v1Routes } from './v1-routes.ts';

const postgres = await realPostgresOrSkipFile(t);
const harness = await createTestAppOnRealPostgres(postgres);
t.teardown(() => harness.close());
const { call, rootId, subId, certificateId, operationIds, urlsFor, payloadOf } = await seedDomainA(harness);

t.test("every call of B naming A's CAs or certificate answers 404 while A's transaction holds them", async (t) => {
  const routes = (await v1Routes(harness.app)).filter((route) =>
    route.params.length > 0
      ? route.params.some((param) => param === 'ca_id' || param === 'certificate_id')
      : withoutResourceId[`${route.method} ${route.path}`] === 'not-found',
  );
  const operations = await operationIds();
  let answered = 0;
  await harness.database.prisma.$transaction(
    async (tx) => {
      await tx.$queryRawUnsafe('SELECT 1 FROM certificate_authorities WHERE id = ANY($1::uuid[]) FOR UPDATE', [rootId, subId]);
      await tx.$queryRawUnsafe('SELECT 1 FROM certificates WHERE id = $1::uuid FOR UPDATE', certificateId);
      for (const route of routes) {
        for (const url of route.params.length > 0 ? urlsFor(route) : [route.path]) {
          const response = await call(route.method, url, OTHER_DOMAIN, payloadOf(route, operations));
          t.equal(response.status, 404, `${route.method} ${url}: 404 while A's rows are held (${response.body.slice(0, 200)})`);
          answered++;
        }
      }
    },
    { timeout: 600_000 },
  );
  t.ok(answered >= 30, `${answered} calls answered`);
});
