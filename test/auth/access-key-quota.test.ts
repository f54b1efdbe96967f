/**
 * Access keys per domain are bounded (ACCESS_KEY_QUOTA): each key has a rate-limit budget of its own (within its
 * domain's, DOMAIN_RATE_LIMIT_MAX), and a key is a stored secret and a row. Concurrent creations cannot pass the quota
 * together (the domain's lock), whatever their interleaving; a deleted key frees its place.
 */
import t from 'tap';
import { createTestApp, OTHER_DOMAIN } from '../helpers/app.ts';

const QUOTA = 3;
const harness = await createTestApp({ env: { ACCESS_KEY_QUOTA: String(QUOTA) } });
t.teardown(() => harness.close());
const { app } = harness;

const create = (domainId?: string) =>
  app.inject({ method: 'POST', url: '/v1/access-keys', headers: harness.auth(domainId), payload: { description: 'quota' } });

t.test('eight concurrent creations in a domain with a quota of three: three keys, five 400s naming the quota', async (t) => {
  const answers = await Promise.all(Array.from({ length: 8 }, () => create()));
  const created = answers.filter((answer) => answer.statusCode === 200);
  const refused = answers.filter((answer) => answer.statusCode !== 200);
  t.equal(created.length, QUOTA, 'as many keys as the quota');
  t.equal(refused.length, 8 - QUOTA);
  for (const answer of refused) {
    t.equal(answer.statusCode, 400);
    t.match(answer.json(), { error_code: 'PCA.00020001', error_msg: /access key quota is used up \(3 of 3\)/ });
  }
  const listed = await app.inject({ method: 'GET', url: '/v1/access-keys', headers: harness.auth() });
  t.equal(listed.json().total, QUOTA, 'the list holds exactly the created keys');

  t.equal((await create(OTHER_DOMAIN)).statusCode, 200, "another domain's quota is its own");

  const [first] = created.map((answer) => answer.json().credential.access as string);
  const removed = await app.inject({ method: 'DELETE', url: `/v1/access-keys/${first}`, headers: harness.auth() });
  t.equal(removed.statusCode, 204);
  t.equal((await create()).statusCode, 200, 'a deleted key frees its place');
  t.equal((await create()).statusCode, 400, 'and only its place');
});
