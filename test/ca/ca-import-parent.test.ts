/**
 * Import (§4.2.5) under a parent of this service follows the rule of enable: a CA is not made ACTIVED under a deleted
 * issuer, or one whose certificate is revoked, anywhere up to the root; the refusal leaves it PENDING and unbilled.
 * The import holds the issuers' rows FOR SHARE until it commits, so a delete or revoke of the parent that starts
 * meanwhile waits for it and then disables the new CA. That interleaving is forced (a proxied client runs the delete
 * or revoke inside the import's transaction, just before the CA's row is written, and waits until Postgres shows it
 * waiting on a lock or it has finished) on a real Postgres: PGlite serves one connection, nothing races there.
 */
import t, { type Test } from 'tap';
import type { KeyStores } from '../../src/keystore/index.ts';
import { createTestApp, createTestAppOnRealPostgres, type TestApp } from '../helpers/app.ts';
import { realPostgresOrSkipTest } from '../helpers/database.ts';
import { CA, DN, assertError, caServiceOver, client, proxiedTransactions, signedByServiceCa, type Client } from './support.ts';

let keyStores!: KeyStores;
const harness = await createTestApp({ wrapKeyStores: (stores) => (keyStores = stores) });
t.teardown(() => harness.close());

/** A PENDING subordinate and its certificate signed by `parent`'s key, no chain: the parent is found in the service. */
const signedBy = (app: TestApp, stores: KeyStores, parent: string, name: string) => signedByServiceCa(app, stores, parent, name, 0);

/** root → parent (path_length 1), both ACTIVED. */
async function hierarchy(api: Client, name: string): Promise<{ root: string; parent: string }> {
  const root = await api.root({ distinguished_name: { ...DN, common_name: `${name}-root` } });
  const parent = await api.subordinate(root, { path_length: 1, distinguished_name: { ...DN, common_name: `${name}-parent` } });
  return { root, parent };
}

/** The refusal enable gives, and the CA left as it was: PENDING, no certificate, no issuer, nothing billed. */
async function assertRefused(t: Test, id: string, certificate: string, message: RegExp) {
  const api = client(harness);
  assertError(t, await api.call('POST', `${CA}/${id}/import`, { certificate }), 400, 'PCA.00020001', message);
  t.match(await api.show(id), { status: 'PENDING', serial_number: null, not_after: null, issuer_id: null }, 'still PENDING');
  t.equal(await harness.database.prisma.caUsagePeriod.count({ where: { caId: id } }), 0, 'no billing record');
}

t.test('a parent deleted (pending deletion): the import is refused', async (t) => {
  const api = client(harness);
  const { parent } = await hierarchy(api, 'deleted-parent');
  const { id, certificate } = await signedBy(harness, keyStores, parent, 'under-deleted-parent');
  t.equal((await api.call('POST', `${CA}/${parent}/disable`)).status, 204);
  t.equal((await api.call('DELETE', `${CA}/${parent}?pending_days=7`)).status, 204);
  await assertRefused(t, id, certificate, new RegExp(`the issuing CA ${parent} is deleted`));
});

t.test("the parent's root deleted: the import is refused", async (t) => {
  const api = client(harness);
  const { root, parent } = await hierarchy(api, 'deleted-root');
  const { id, certificate } = await signedBy(harness, keyStores, parent, 'under-deleted-root');
  t.equal((await api.call('POST', `${CA}/${root}/disable`)).status, 204);
  t.equal((await api.call('DELETE', `${CA}/${root}?pending_days=7`)).status, 204);
  await assertRefused(t, id, certificate, new RegExp(`the CA ${root} above its issuer is deleted`));
});

t.test("the parent's certificate revoked: the import is refused", async (t) => {
  const api = client(harness);
  const { parent } = await hierarchy(api, 'revoked-parent');
  const { id, certificate } = await signedBy(harness, keyStores, parent, 'under-revoked-parent');
  t.equal((await api.call('POST', `${CA}/${parent}/revoke`, { reason: 'KEY_COMPROMISE' })).status, 204);
  await assertRefused(t, id, certificate, new RegExp(`the certificate of the issuing CA ${parent} is revoked`));
});

t.test('a live parent: the import still links it', async (t) => {
  const api = client(harness);
  const { parent } = await hierarchy(api, 'live-parent');
  const { id, certificate } = await signedBy(harness, keyStores, parent, 'under-live-parent');
  t.equal((await api.call('POST', `${CA}/${id}/import`, { certificate })).status, 204);
  t.match(await api.show(id), { status: 'ACTIVED', issuer_id: parent });
});

t.test('a delete or revoke of the parent started while the import holds it ends with the CA DISABLED', async (t) => {
  const postgres = await realPostgresOrSkipTest(t);
  if (!postgres) return;
  let stores!: KeyStores;
  const app = await createTestAppOnRealPostgres(postgres, { wrapKeyStores: (given) => (stores = given) });
  t.teardown(() => app.close());
  const api = client(app);
  const prisma = app.database.prisma;

  /** Runs once, inside the next transaction the service opens, before it writes a CA row. */
  let beforeCaUpdate: (() => Promise<void>) | undefined;
  const hooked = (tx: object) =>
    new Proxy(tx, {
      get: (target, property, receiver) => {
        const value = Reflect.get(target, property, receiver);
        if (property !== 'certificateAuthority') return value;
        return new Proxy(value, {
          get: (model, method, modelReceiver) => {
            const original = Reflect.get(model, method, modelReceiver);
            if (method !== 'update') return original;
            return async (...args: unknown[]) => {
              const run = beforeCaUpdate;
              beforeCaUpdate = undefined;
              await run?.();
              return original.apply(model, args);
            };
          },
        });
      },
    });
  const db = proxiedTransactions(prisma, (open, body, options) => open((tx) => body(hooked(tx)), options));
  const cas = caServiceOver(app, db, stores);

  /** Until `other` settles or a backend of this database waits on a lock (the other request, behind the import). */
  async function settledOrWaiting(other: Promise<unknown>): Promise<string> {
    let settled = false;
    other.then(
      () => (settled = true),
      () => (settled = true),
    );
    for (let polls = 0; polls < 1000; polls++) {
      if (settled) return 'settled';
      const [{ waiting }] = await prisma.$queryRaw<{ waiting: number }[]>`
        SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`;
      if (waiting > 0) return 'waiting';
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return 'neither';
  }

  /** The request that makes the parent unusable; a delete needs it DISABLED first, done before the import. */
  const cases: [string, (t: Test, parent: string) => Promise<void>, (parent: string) => Promise<{ status: number; body: unknown }>][] = [
    [
      'delete',
      async (t, parent) => {
        t.equal((await api.call('POST', `${CA}/${parent}/disable`)).status, 204, 'the parent DISABLED');
      },
      (parent) => api.call('DELETE', `${CA}/${parent}?pending_days=7`),
    ],
    ['revoke', async () => undefined, (parent) => api.call('POST', `${CA}/${parent}/revoke`, { reason: 'KEY_COMPROMISE' })],
  ];
  for (const [label, prepare, act] of cases) {
    await t.test(label, async (t) => {
      const { parent } = await hierarchy(api, `race-${label}`);
      const { id, certificate } = await signedBy(app, stores, parent, `race-${label}-child`);
      await prepare(t, parent);
      let other: Promise<{ status: number; body: unknown }> | undefined;
      let seen = '';
      beforeCaUpdate = async () => {
        other = act(parent);
        seen = await settledOrWaiting(other);
      };
      await cas.importCertificate({ domainId: app.config.defaultDomainId, actor: 'test', requestId: `race-${label}` }, id, {
        certificate,
      });
      t.not(other, undefined, `the ${label} started inside the import's transaction`);
      t.equal(seen, 'waiting', `the ${label} waited for the import, which holds the parent's row`);
      const answered = await other!;
      t.equal(answered.status, 204, `${label}: ${JSON.stringify(answered.body)}`);
      t.match(await api.show(id), { status: 'DISABLED', issuer_id: parent }, `the ${label} disabled the CA imported under the parent`);
    });
  }
});
