/**
 * Domain B's calls naming domain A's CAs and certificate answer 404 at once while A's own transactions hold those
 * rows (a transition, a tag write, a CRL's signing hold them so). A CA's id is public (in its certificates' URLs):
 * were B's request to lock A's row before finding it is not B's, it would wait behind A (503 at its lock timeout, where
 * a missing CA answers 404 at once: the CA's existence told) and hold A's next writer up. Nor may a one-statement
 * issuance batch lock A's CA for B's request in it, which would hold B's other requests of that batch too. A real
 * Postgres: PGlite serves one connection, so a transaction holding rows there stops every other statement.
 */
import t from 'tap';
import { client } from '../ca/support.ts';
import { KEY_ARGS, opensslCsr, scratch } from '../certificates/support.ts';
import { createTestAppOnRealPostgres, OTHER_DOMAIN, TEST_DOMAIN } from '../helpers/app.ts';
import { realPostgresOrSkipFile } from '../helpers/database.ts';
import { signerOver } from '../../src/keystore/index.ts';
import type { KeyStore } from '../../src/keystore/key-store.ts';
import { CERT, seedDomainA, validity, withoutResourceId } from './domain-a.ts';
import { v1Routes } from './v1-routes.ts';

/**
 * Signatures held back: while `held.room` > 0, each signature waits (counted in `held.waiting`) until `held.open()`.
 * A batch of issuances signs before it stores, so a held signature keeps its batch in flight.
 */
const held = { room: 0, waiting: 0, open: () => {}, opened: Promise.resolve() };
function holdSignatures(count: number): void {
  let open = () => {};
  held.opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  Object.assign(held, { room: count, waiting: 0, open });
}

const postgres = await realPostgresOrSkipFile(t);
const harness = await createTestAppOnRealPostgres(postgres, {
  // Whichever store signs (software, or the PKCS#11 token CI's Postgres pass makes new CA keys on).
  wrapKeyStores: (stores) => {
    const holding = (store: KeyStore): KeyStore => ({
      ...store,
      async sign(...args) {
        if (held.room > 0) {
          held.room--;
          held.waiting++;
          await held.opened;
        }
        return store.sign(...args);
      },
    });
    const software = holding(stores.software);
    const pkcs11 = stores.pkcs11 && holding(stores.pkcs11);
    const get: typeof stores.get = (kind) => (kind === 'software' ? software : kind === 'pkcs11' && pkcs11 ? pkcs11 : stores.get(kind));
    return { ...stores, software, pkcs11, get, signerOf: signerOver(get) };
  },
});
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

t.test("a batch mixing B's request for A's CA with B's own requests is stored at once: A's row is not locked for it", async (t) => {
  const { csr } = await opensslCsr(await scratch('tenancy-batch'), 'batch', [...KEY_ARGS.p256]);
  const byCsr = (issuerId: string, domainId: string) => call('POST', `${CERT}/csr`, domainId, { issuer_id: issuerId, csr, validity });
  const ownRoot = await client(harness).root({}, OTHER_DOMAIN);
  // Both issuers remembered by this process, so that the batch takes the one-statement path.
  for (const [issuerId, domainId] of [
    [subId, TEST_DOMAIN],
    [ownRoot, OTHER_DOMAIN],
  ] as const) {
    const first = await byCsr(issuerId, domainId);
    t.equal(first.status, 200, first.body);
  }
  await harness.database.prisma.$transaction(
    async (tx) => {
      await tx.$queryRawUnsafe('SELECT 1 FROM certificate_authorities WHERE id = $1::uuid FOR UPDATE', subId);
      // Four batches (the most in flight) held while signing: the requests sent next queue and form one batch when
      // the first of them is let go. The pause lets them all reach the queue; the answers checked below hold whether
      // or not they share a batch.
      holdSignatures(4);
      const filling: Promise<{ status: number; body: string }>[] = [];
      for (let sent = 1; sent <= 4; sent++) {
        filling.push(byCsr(ownRoot, OTHER_DOMAIN));
        // Bounded: a signature that never reaches the hold (a store not wrapped) fails here rather than hanging.
        for (let tries = 0; held.waiting < sent; tries++) {
          if (tries > 2_000) throw new Error(`${sent} batches expected at the held signature, ${held.waiting} there`);
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      }
      const naming = byCsr(subId, OTHER_DOMAIN);
      const own = Array.from({ length: 3 }, () => byCsr(ownRoot, OTHER_DOMAIN));
      await new Promise((resolve) => setTimeout(resolve, 200));
      held.open();
      const refused = await naming;
      t.equal(refused.status, 404, `B naming A's CA: 404 (${refused.body.slice(0, 200)})`);
      for (const answer of await Promise.all([...filling, ...own]))
        t.equal(answer.status, 200, `B's own: 200 (${answer.body.slice(0, 200)})`);
    },
    { timeout: 120_000 },
  );
});
