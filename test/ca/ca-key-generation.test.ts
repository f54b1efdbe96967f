/**
 * CA key generation per domain: a tenant's burst of creations makes keys one at a time and only as many as its quota
 * can take, so on a PKCS#11 token (where a generation runs alone and every signature of the process waits for it)
 * one tenant cannot stall the others' signing. The key store is wrapped to count its calls and to order them through
 * a read-write lock as the PKCS#11 store does; with KEY_STORE=pkcs11 (CI's second pass) the token is behind it.
 */
import t from 'tap';
import type { KeyStores } from '../../src/keystore/index.ts';
import { signerOver } from '../../src/keystore/index.ts';
import type { KeyStore, KeyStoreKind } from '../../src/keystore/key-store.ts';
import { createReadWriteLock } from '../../src/keystore/read-write-lock.ts';
import { createTestApp, OTHER_DOMAIN, TEST_DOMAIN } from '../helpers/app.ts';
import { gate, settle } from '../unit/support.ts';
import { CA, DN, client } from './support.ts';

const QUOTA = 6;
const BURST_DOMAIN = '0123456789abcdef0123456789abcdef';

/** What the store was asked, in the order the lock admitted it; `queued` marks a signature's arrival. */
const events: string[] = [];
let generateCalls = 0;
let holdNextGeneration: ReturnType<typeof gate> | undefined;
const tokenObjects = createReadWriteLock();

function wrap(stores: KeyStores, kind: KeyStoreKind): KeyStores {
  const real = stores.get(kind);
  const store: KeyStore = {
    ...real,
    generate: (alg, record) => {
      generateCalls++;
      const held = holdNextGeneration;
      holdNextGeneration = undefined;
      return tokenObjects.exclusive(async () => {
        events.push('generate');
        await held?.opened;
        return real.generate(alg, record);
      });
    },
    sign: (keyRef, alg, hash, data) => {
      events.push(`queued ${keyRef}`);
      return tokenObjects.shared(() => {
        events.push(`sign ${keyRef}`);
        return real.sign(keyRef, alg, hash, data);
      });
    },
  };
  const get = (asked: KeyStoreKind) => (asked === kind ? store : stores.get(asked));
  return {
    software: kind === 'software' ? store : stores.software,
    pkcs11: kind === 'pkcs11' ? store : stores.pkcs11,
    get,
    signerOf: signerOver(get),
  };
}

const harness = await createTestApp({
  env: { CA_QUOTA: String(QUOTA) },
  wrapKeyStores: (stores) => wrap(stores, (process.env.KEY_STORE as KeyStoreKind | undefined) ?? 'software'),
});
t.teardown(() => harness.close());
const api = client(harness);
const rootPayload = (commonName: string) => ({
  type: 'ROOT',
  key_algorithm: 'EC256',
  signature_algorithm: 'SHA256',
  distinguished_name: { ...DN, common_name: commonName },
  validity: { type: 'YEAR', value: 1 },
});

t.test(`20 parallel creations with 1 free CA slot make exactly 1 key; the others are the quota's refusal`, async (t) => {
  for (let i = 0; i < QUOTA - 1; i++) await api.root({ distinguished_name: { ...DN, common_name: `filler-${i}` } }, BURST_DOMAIN);
  generateCalls = 0;
  const responses = await Promise.all(Array.from({ length: 20 }, (_, i) => api.call('POST', CA, rootPayload(`burst-${i}`), BURST_DOMAIN)));
  t.equal(generateCalls, 1, 'one key generated');
  t.equal(responses.filter((response) => response.status === 200).length, 1, 'one CA created');
  const refused = responses.filter((response) => response.status !== 200);
  t.equal(refused.length, 19);
  for (const response of refused) {
    t.match(response, { status: 400, body: { error_code: 'PCA.00020001', error_msg: /CA quota is used up/ } });
  }
  const stored = await harness.database.prisma.certificateAuthority.count({ where: { domainId: BURST_DOMAIN } });
  t.equal(stored, QUOTA, 'the quota is filled, not exceeded');
});

t.test('a signature asked while another domain has many creations queued waits for at most one generation', async (t) => {
  const issuer = await api.root({ distinguished_name: { ...DN, common_name: 'other-tenant' } }, OTHER_DOMAIN);
  const issuerKey = (await harness.database.prisma.certificateAuthority.findUniqueOrThrow({ where: { id: issuer } })).keyRef!;
  const held = gate();
  holdNextGeneration = held;
  generateCalls = 0;
  events.length = 0;
  const creations = Array.from({ length: 5 }, (_, i) => api.call('POST', CA, rootPayload(`queued-${i}`), TEST_DOMAIN));
  while (generateCalls === 0) await settle();
  // Time for the other creations to get as far as they can (without per-domain turns: into the token's queue); what is
  // asserted below does not depend on how far they got.
  for (let i = 0; i < 50; i++) await settle();
  const issued = api.call(
    'POST',
    '/v1/private-certificates',
    { issuer_id: issuer, key_algorithm: 'EC256', distinguished_name: { common_name: 'leaf' }, validity: { type: 'DAY', value: 1 } },
    OTHER_DOMAIN,
  );
  while (!events.includes(`queued ${issuerKey}`)) await settle();
  held.open();
  t.equal((await issued).status, 200, 'the other tenant issued');
  t.same(
    (await Promise.all(creations)).map((response) => response.status),
    [200, 200, 200, 200, 200],
    'every creation went through, in its turn',
  );
  const queuedAt = events.indexOf(`queued ${issuerKey}`);
  const signedAt = events.indexOf(`sign ${issuerKey}`);
  const generationsBetween = events.slice(queuedAt, signedAt).filter((event) => event === 'generate').length;
  t.equal(generationsBetween, 0, 'no generation admitted between its arrival and its turn: only the running one went first');
  t.equal(events.filter((event) => event === 'generate').length, 5, 'each creation made its one key');
});

t.test(
  'one ordered CA configured by 3 requests at once: one configures it, one key is made, the others are refused (no 500)',
  async (t) => {
    const caId = await api.order({ period_type: 2, period_num: 1, is_auto_renew: 0 });
    generateCalls = 0;
    const responses = await Promise.all(
      Array.from({ length: 3 }, (_, i) => api.call('POST', CA, { ...rootPayload(`configured-twice-${i}`), ca_id: caId })),
    );
    t.same(
      responses.map((response) => response.status).sort(),
      [200, 400, 400],
      responses.map((response) => JSON.stringify(response.body)).join(' '),
    );
    t.equal(generateCalls, 1, 'one key made');
    t.equal((await api.call('GET', `${CA}/${caId}`)).body.status, 'ACTIVED');
  },
);
