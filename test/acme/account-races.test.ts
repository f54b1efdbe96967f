/**
 * Account requests racing each other, whatever the interleaving: an EAB key revoked while an account registers with
 * it leaves no valid account under the revoked key; two accounts rolling over to one new key (RFC 8555 §7.3.5) get
 * one 200 and one 409 naming the account that holds the key, never a 500.
 */
import t from 'tap';
import { CA } from '../ca/support.ts';
import { RawAcme, accountKey, eabJws, replies, signJws, type AccountKey } from './jws-client.ts';
import { acmeCa, eabKey, startAcmeServer } from './support.ts';

const ROUNDS = 24;
const server = await startAcmeServer();
t.teardown(() => server.close());
const { api } = server;
const prisma = server.harness.database.prisma;
const caId = await acmeCa(server.api);
const directoryUrl = `${server.baseUrl}/acme/${caId}/directory`;
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

t.test('an EAB key revoked while an account registers with it: no valid account under a revoked key', async (t) => {
  for (let round = 0; round < ROUNDS; round++) {
    const eab = await eabKey(api, caId);
    const client = await new RawAcme(directoryUrl, accountKey('ES256')).init();
    const url = client.directory.newAccount!;
    const body = signJws(
      client.key,
      { nonce: await client.nonce(), url, jwk: client.key.jwk },
      { termsOfServiceAgreed: true, externalAccountBinding: eabJws(eab, client.key.jwk, url) },
    );
    // The revocation starts a little later each round, to land anywhere in the registration.
    const [registered, revoked] = await Promise.all([
      client.postBody(url, body),
      pause(round % 12).then(() => api.call('DELETE', `${CA}/${caId}/acme/eab/${eab.kid}`)),
    ]);
    t.equal(revoked.status, 204, 'the key is revoked');
    t.ok([201, 403].includes(registered.status), `registered ${registered.status} (${JSON.stringify(registered.body)})`);
  }
  const revokedKids = (await prisma.acmeEabKey.findMany({ where: { caId, revokedAt: { not: null } } })).map(({ kid }) => kid);
  t.equal(revokedKids.length, ROUNDS);
  const valid = await prisma.acmeAccount.findMany({ where: { caId, eabKid: { in: revokedKids }, status: 'valid' } });
  t.same(
    valid.map(({ id, eabKid }) => ({ id, eabKid })),
    [],
    'no valid account under a revoked key',
  );
});

/** A key-change request of `client` to `newKey`, signed now and sent later. */
async function keyChangeBody(client: RawAcme, newKey: AccountKey) {
  const url = client.directory.keyChange!;
  const inner = signJws(newKey, { url, jwk: newKey.jwk }, { account: client.kid, oldKey: client.key.jwk });
  return signJws(client.key, { nonce: await client.nonce(), url, kid: client.kid }, inner);
}

t.test('two accounts rolling over to one new key at once: one 200, one 409 naming the holder, never a 500', async (t) => {
  const accounts: RawAcme[] = [];
  for (const _ of [1, 2]) {
    const client = await new RawAcme(directoryUrl, accountKey('ES256')).init();
    t.equal((await client.newAccount(await eabKey(api, caId))).status, 201);
    accounts.push(client);
  }
  for (let round = 0; round < ROUNDS / 2; round++) {
    const newKey = accountKey('ES256');
    const bodies = await Promise.all(accounts.map((client) => keyChangeBody(client, newKey)));
    const answers = await Promise.all(accounts.map((client, index) => client.postBody(client.directory.keyChange!, bodies[index])));
    t.same(
      answers.map(({ status }) => status).sort(),
      [200, 409],
      `round ${round}: ${answers.map(({ status, body }) => `${status} ${JSON.stringify(body)}`).join(', ')}`,
    );
    const winner = answers.findIndex(({ status }) => status === 200);
    const loser = answers.findIndex(({ status }) => status === 409);
    if (winner >= 0) accounts[winner]!.key = newKey;
    if (winner >= 0 && loser >= 0)
      t.equal(answers[loser]!.headers.get('location'), accounts[winner]!.kid, 'the 409 names the account holding the key');
  }
  t.same(
    replies.filter(({ status }) => status >= 500).map(({ status, body }) => [status, body]),
    [],
    'no reply of this file was a 5xx',
  );
});
