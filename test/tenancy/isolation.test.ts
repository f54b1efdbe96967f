/**
 * Tenancy matrix (§10.2): domain A owns a root CA, a subordinate, a certificate, a tag, an access key and an ACME EAB
 * key; domain B's admin then calls EVERY /v1 route of the app (from its OpenAPI document, so routes added later are
 * swept too) with A's ids (domain-a.ts). Routes naming a resource answer 404 PCA.10010002; the routes without a
 * resource id are listed in domain-a.ts, each with its own expectation, and none of their answers may contain A's data. Quota counters are
 * checked per domain too: one domain's issues and deletes never move the other's numbers.
 */
import t from 'tap';
import { createTestApp, OTHER_DOMAIN, TEST_DOMAIN } from '../helpers/app.ts';
import { CA, CERT, dn, type Expectation, seedDomainA, validity, withoutResourceId } from './domain-a.ts';
import { v1Routes } from './v1-routes.ts';

const harness = await createTestApp();
t.teardown(() => harness.close());
const { app } = harness;
const { call, rootId, subId, certificateId, access, secretsOfA, operationIds, answerOf, urlsFor, payloadOf } = await seedDomainA(harness);

t.test("domain B sees none of domain A's resources on any /v1 route", async (t) => {
  const routes = await v1Routes(app);
  const operations = await operationIds();
  t.ok(routes.length >= 50, `${routes.length} /v1 routes swept`);
  const unlisted = routes.filter((route) => route.params.length === 0 && !(`${route.method} ${route.path}` in withoutResourceId));
  t.same(
    unlisted.map((route) => `${route.method} ${route.path}`),
    [],
    'every route without a resource id has an expectation',
  );

  for (const route of routes) {
    const name = `${route.method} ${route.path}`;
    const payload = payloadOf(route, operations);
    const expectation: Expectation = route.params.length > 0 ? 'not-found' : withoutResourceId[name];
    for (const url of route.params.length > 0 ? urlsFor(route) : [route.path]) {
      const response = await call(route.method, url, OTHER_DOMAIN, payload);
      const label = `${route.method} ${url.replace(/[0-9a-f-]{36}|[A-Z0-9]{20}/g, (id) => (id === rootId ? '<root>' : id === subId ? '<sub>' : id === certificateId ? '<cert>' : '<key>'))}`;
      if (expectation === 'not-found') {
        t.equal(response.status, 404, `${label}: 404 (${response.body.slice(0, 200)})`);
        t.equal(response.json?.error_code, 'PCA.10010002', `${label}: PCA.10010002`);
      } else if (expectation === 'unauthenticated') {
        t.equal(response.status, 401, `${label}: 401 (a token cannot exchange)`);
      } else {
        t.ok(response.status < 300, `${label}: ${response.status} (${response.body.slice(0, 200)})`);
      }
      // An error message may echo the id B asked for; anything else of A's is a leak.
      const sent = `${url} ${JSON.stringify(payload ?? null)}`;
      const leaked = secretsOfA.filter((secret) => answerOf(name, response).includes(secret) && !sent.includes(secret));
      t.same(leaked, [], `${label}: none of A's data in the answer`);
    }
  }
});
t.test("A's resources are untouched and still visible to A", async (t) => {
  t.equal((await call('GET', `${CA}/${rootId}`, TEST_DOMAIN)).json.status, 'ACTIVED');
  t.equal((await call('GET', `${CA}/${subId}`, TEST_DOMAIN)).json.status, 'ACTIVED');
  t.equal((await call('GET', `${CERT}/${certificateId}`, TEST_DOMAIN)).json.status, 'ISSUED');
  t.same((await call('GET', `${CA}/${rootId}/tags`, TEST_DOMAIN)).json.tags, [{ key: 'tenant-a-tag', value: 'tenant-a-value' }]);
  t.ok((await call('GET', '/v1/access-keys', TEST_DOMAIN)).json.credentials.some((key: { access: string }) => key.access === access));
  t.equal((await call('GET', `${CA}/quotas`, OTHER_DOMAIN)).status, 200);
});

t.test("quota counters are per domain: one domain's issues and deletes never move the other's numbers", async (t) => {
  const used = async (domainId: string, url: string, type: string) => {
    const response = await call('GET', url, domainId);
    t.equal(response.status, 200, `${url} for ${domainId}`);
    const resources = (response.json as { quotas: { resources: { type: string; used: number }[] } }).quotas.resources;
    return resources.find((resource) => resource.type === type)!.used;
  };
  const certificatesUsed = (domainId: string) => used(domainId, `${CERT}/quotas`, 'CERTIFICATE');
  const casUsed = (domainId: string) => used(domainId, `${CA}/quotas`, 'CERTIFICATE_AUTHORITY');
  const issueIn = async (domainId: string, issuerId: string) => {
    const response = await call('POST', CERT, domainId, {
      issuer_id: issuerId,
      distinguished_name: { common_name: 'quota-leaf' },
      validity,
    });
    t.equal(response.status, 200, response.body);
    return response.json.certificate_id as string;
  };
  const remove = async (domainId: string, id: string) => t.equal((await call('DELETE', `${CERT}/${id}`, domainId)).status, 204);

  const bRoot = await call('POST', CA, OTHER_DOMAIN, {
    type: 'ROOT',
    distinguished_name: { ...dn, common_name: 'tenant-b-quota-root' },
    key_algorithm: 'EC256',
    signature_algorithm: 'SHA256',
    validity: { type: 'YEAR', value: 5 },
  });
  t.equal(bRoot.status, 200, bRoot.body);
  const bSub = await call('POST', CA, OTHER_DOMAIN, {
    type: 'SUBORDINATE',
    issuer_id: bRoot.json.ca_id,
    distinguished_name: { ...dn, common_name: 'tenant-b-quota-sub' },
    key_algorithm: 'EC256',
    signature_algorithm: 'SHA256',
    validity: { type: 'YEAR', value: 1 },
  });
  t.equal(bSub.status, 200, bSub.body);
  const bIds = [await issueIn(OTHER_DOMAIN, bSub.json.ca_id), await issueIn(OTHER_DOMAIN, bSub.json.ca_id)];

  const start = { a: await certificatesUsed(TEST_DOMAIN), b: await certificatesUsed(OTHER_DOMAIN) };
  const cas = { a: await casUsed(TEST_DOMAIN), b: await casUsed(OTHER_DOMAIN) };
  t.ok(start.b >= 2 && start.a >= 1, `both domains count their own certificates (A ${start.a}, B ${start.b})`);

  const aId = await issueIn(TEST_DOMAIN, subId);
  t.same(
    [await certificatesUsed(TEST_DOMAIN), await certificatesUsed(OTHER_DOMAIN)],
    [start.a + 1, start.b],
    "A's issue counts for A only",
  );
  await remove(TEST_DOMAIN, aId);
  t.same(
    [await certificatesUsed(TEST_DOMAIN), await certificatesUsed(OTHER_DOMAIN)],
    [start.a, start.b],
    "A's delete releases A's count only",
  );
  await remove(OTHER_DOMAIN, bIds[0]);
  t.same(
    [await certificatesUsed(TEST_DOMAIN), await certificatesUsed(OTHER_DOMAIN)],
    [start.a, start.b - 1],
    "B's delete releases B's count only",
  );
  t.same([await casUsed(TEST_DOMAIN), await casUsed(OTHER_DOMAIN)], [cas.a, cas.b], 'CA counts unmoved by certificates');
});
