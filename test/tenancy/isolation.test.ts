/**
 * Tenancy matrix (§10.2): domain A owns a root CA, a subordinate, a certificate, a tag, an access key and an ACME EAB
 * key; domain B's admin then calls EVERY /v1 route of the app (from its OpenAPI document, so routes added later are
 * swept too) with A's ids. Routes naming a resource answer 404 PCA.10010002; the routes without a resource id are
 * listed below, each with its own expectation, and none of their answers may contain A's data. Quota counters are
 * checked per domain too: one domain's issues and deletes never move the other's numbers.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { createTestApp, OTHER_DOMAIN, TEST_DOMAIN } from '../helpers/app.ts';
import { fillPath, v1Routes, type V1Route } from './v1-routes.ts';

const run = promisify(execFile);
const harness = await createTestApp();
t.teardown(() => harness.close());
const { app } = harness;
const CA = '/v1/private-certificate-authorities';
const CERT = '/v1/private-certificates';
const validity = { type: 'DAY', value: 30 };

async function call(method: string, url: string, domainId: string, payload?: unknown) {
  const response = await app.inject({
    method: method as 'GET',
    url,
    headers: harness.auth(domainId),
    ...(payload === undefined ? {} : { payload: payload as object }),
  });
  const json = response.headers['content-type']?.toString().startsWith('application/json') && response.body ? response.json() : undefined;
  return { status: response.statusCode, body: response.body, json };
}

async function created(method: string, url: string, payload: unknown, field: string): Promise<string> {
  const response = await call(method, url, TEST_DOMAIN, payload);
  if (response.status !== 200) throw new Error(`${method} ${url}: ${response.status} ${response.body}`);
  return response.json[field] as string;
}

async function opensslCsr(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pca-tenancy-'));
  try {
    await run('openssl', [
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      '/CN=tenant-b',
      '-keyout',
      path.join(dir, 'k.pem'),
      '-out',
      path.join(dir, 'r.csr'),
    ]);
    return await readFile(path.join(dir, 'r.csr'), 'utf8');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// Domain A's resources.
const dn = {
  common_name: 'tenant-a-root',
  country: 'CN',
  state: 'zhejiang',
  locality: 'hangzhou',
  organization: 'tenant-a',
  organizational_unit: 'pki',
};
const rootId = await created(
  'POST',
  CA,
  { type: 'ROOT', distinguished_name: dn, key_algorithm: 'EC256', signature_algorithm: 'SHA256', validity: { type: 'YEAR', value: 5 } },
  'ca_id',
);
const subId = await created(
  'POST',
  CA,
  {
    type: 'SUBORDINATE',
    issuer_id: rootId,
    distinguished_name: { ...dn, common_name: 'tenant-a-sub' },
    key_algorithm: 'EC256',
    signature_algorithm: 'SHA256',
    validity: { type: 'YEAR', value: 1 },
  },
  'ca_id',
);
const certificateId = await created(
  'POST',
  CERT,
  { issuer_id: subId, distinguished_name: { common_name: 'tenant-a-leaf' }, validity },
  'certificate_id',
);
const access = await created('POST', '/v1/access-keys', { description: 'tenant-a key' }, 'credential').then(
  (credential) => (credential as unknown as { access: string }).access,
);
const tagged = await call('POST', `${CA}/${rootId}/tags`, TEST_DOMAIN, { tag: { key: 'tenant-a-tag', value: 'tenant-a-value' } });
if (tagged.status !== 204) throw new Error(`tag: ${tagged.status} ${tagged.body}`);
const acmeEnabled = await call('PUT', `${CA}/${rootId}/acme-policy`, TEST_DOMAIN, { enabled: true });
if (acmeEnabled.status !== 200) throw new Error(`acme-policy: ${acmeEnabled.status} ${acmeEnabled.body}`);
const kid = await created('POST', `${CA}/${rootId}/acme/eab`, undefined, 'kid');
const subPem = (await call('POST', `${CA}/${subId}/export`, TEST_DOMAIN)).json.certificate as string;
const csr = await opensslCsr();

/** Strings that would betray A's data in B's answers. */
const secretsOfA = [rootId, subId, certificateId, access, kid, TEST_DOMAIN, 'tenant-a'];

/** Each path parameter, and the ids of A to try in it. */
const idsOfA: Record<string, string[]> = { ca_id: [rootId, subId], certificate_id: [certificateId], access: [access], kid: [kid] };

/** Valid bodies, so that no 400 (syntax comes before existence) hides the existence check. */
const bodies: Record<string, unknown> = {
  importCertificateAuthorityCertificate: { certificate: subPem },
  activate: {},
  createCaTag: { tag: { key: 'k', value: 'v' } },
  batchCreateCaTags: { tags: [{ key: 'k', value: 'v' }] },
  batchDeleteCaTags: { tags: [{ key: 'tenant-a-tag', value: 'tenant-a-value' }] },
  createCertTag: { tag: { key: 'k', value: 'v' } },
  batchCreateCertTags: { tags: [{ key: 'k', value: 'v' }] },
  batchDeleteCertTags: { tags: [{ key: 'k', value: 'v' }] },
  exportCertificate: { is_compressed: 'false', type: 'APACHE' },
  revokeCertificate: {},
  revokeCertificateAuthority: {},
  enableCertificateAuthorityCrl: { obs_bucket_name: 'bucket', valid_days: 7 },
  updateOcspSwitch: { ocsp_switch: true },
  updateIssuancePolicy: { max_validity_days: 30 },
  updateAcmePolicy: { enabled: true, allowed_identifiers: ['*.example.internal'], max_validity_days: 30 },
  createCertificateAuthority: {
    type: 'SUBORDINATE',
    issuer_id: rootId,
    distinguished_name: dn,
    key_algorithm: 'EC256',
    signature_algorithm: 'SHA256',
    validity,
  },
  createCertificate: { issuer_id: subId, distinguished_name: { common_name: 'b' }, validity },
  createCertificateByCsr: { issuer_id: subId, csr, validity },
  parseCertificateSigningRequest: { csr },
  createCertificateAuthorityOrder: {
    cloud_service_type: 'hws.service.type.ccm',
    charging_mode: 0,
    period_type: 2,
    period_num: 1,
    is_auto_renew: 0,
    subscription_num: 1,
    product_infos: [
      {
        cloud_service_type: 'hws.service.type.ccm',
        resource_type: 'hws.resource.type.pca.duration',
        resource_spec_code: 'ca.duration',
        product_id: 'x',
        resource_size: 1,
        resource_size_measure_id: 1,
        usage_factor: 'duration',
        usage_value: 1,
        usage_measure_id: 4,
      },
    ],
  },
  listCaResourceInstances: { action: 'filter', limit: 50, offset: 0 },
  countCaResourceInstances: { action: 'count' },
  listCertResourceInstances: { action: 'filter', limit: 50, offset: 0 },
  countCertResourceInstances: { action: 'count' },
  createAccessKey: {},
  createAgency: {},
  createCertificateAuthorityObsAgency: {},
};

type Expectation = 'not-found' | 'no-data-of-A' | 'unauthenticated';

/**
 * Routes without a resource id, each with its expectation. A create that names A's CA in its body must not find
 * it; a list, quota, lookup or create of B's own must not show A's data. A new such route fails the test until
 * it is listed here.
 */
const withoutResourceId: Record<string, Expectation> = {
  'GET /v1/pca/config/console': 'no-data-of-A',
  'GET /v1/readiness': 'no-data-of-A',
  'POST /v1/auth/tokens': 'unauthenticated',
  'POST /v1/access-keys': 'no-data-of-A',
  'GET /v1/access-keys': 'no-data-of-A',
  'GET /v1/audit-events': 'no-data-of-A',
  'GET /v1/billing-records': 'no-data-of-A',
  'GET /v1/billing-records/summary': 'no-data-of-A',
  [`POST ${CA}`]: 'not-found',
  [`GET ${CA}`]: 'no-data-of-A',
  [`POST ${CA}/order`]: 'no-data-of-A',
  [`GET ${CA}/quotas`]: 'no-data-of-A',
  [`GET ${CA}/obs/agencies`]: 'no-data-of-A',
  [`POST ${CA}/obs/agencies`]: 'no-data-of-A',
  [`GET ${CA}/obs/buckets`]: 'no-data-of-A',
  [`GET ${CA}/agency`]: 'no-data-of-A',
  [`POST ${CA}/agencies`]: 'no-data-of-A',
  [`GET ${CA}/tags`]: 'no-data-of-A',
  [`POST ${CA}/resource-instances/filter`]: 'no-data-of-A',
  [`POST ${CA}/resource-instances/count`]: 'no-data-of-A',
  [`GET ${CERT}/tags`]: 'no-data-of-A',
  [`POST ${CERT}/resource-instances/filter`]: 'no-data-of-A',
  [`POST ${CERT}/resource-instances/count`]: 'no-data-of-A',
  [`POST ${CERT}`]: 'not-found',
  [`GET ${CERT}`]: 'no-data-of-A',
  [`POST ${CERT}/csr`]: 'not-found',
  [`POST ${CERT}/csr/parse`]: 'no-data-of-A',
  [`GET ${CERT}/quotas`]: 'no-data-of-A',
};

async function operationIds(): Promise<Map<string, string>> {
  const document = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
    paths: Record<string, Record<string, { operationId?: string }>>;
  };
  const ids = new Map<string, string>();
  for (const [routePath, operations] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(operations))
      ids.set(`${method.toUpperCase()} ${routePath}`, operation.operationId ?? '');
  }
  return ids;
}

/**
 * The answer to search for A's data. B's own audit log records the ids B itself sent in refused calls (its probes
 * of A's ids in this sweep): those echoes are B's data, not A's.
 */
function answerOf(name: string, response: { body: string; json?: any }): string {
  if (name !== 'GET /v1/audit-events') return response.body;
  const events = (response.json.audit_events as Record<string, unknown>[]).map((event) =>
    event.outcome === 'FAILURE' ? { ...event, resource_id: null } : event,
  );
  return JSON.stringify({ ...response.json, audit_events: events });
}

/** Every combination of A's ids for the route's parameters. */
function urlsFor(route: V1Route): string[] {
  let combinations: Record<string, string>[] = [{}];
  for (const param of route.params) {
    const ids = idsOfA[param];
    if (!ids) throw new Error(`${route.method} ${route.path}: add ids of A for path parameter {${param}} to idsOfA`);
    combinations = combinations.flatMap((values) => ids.map((id) => ({ ...values, [param]: id })));
  }
  return combinations.map((values) => fillPath(route, values));
}

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
    const operationId = operations.get(name) ?? '';
    const payload =
      route.method === 'GET' ? undefined : (bodies[operationId] ?? (route.path.endsWith('/activate') ? bodies.activate : undefined));
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

t.test("B's calls naming A's CAs and certificate answer 404 at once while A's transactions hold those rows", async (t) => {
  if (harness.database.kind === 'pglite') {
    t.plan(0, 'PGlite serves one connection: a transaction holding rows stops every other statement (run with DATABASE_URL)');
    return;
  }
  const routes = (await v1Routes(app)).filter((route) =>
    route.params.length > 0
      ? route.params.some((param) => param === 'ca_id' || param === 'certificate_id')
      : withoutResourceId[`${route.method} ${route.path}`] === 'not-found',
  );
  const operations = await operationIds();
  let answered = 0;
  // A's rows held as A's own writes hold them (a transition, a tag write, a CRL's signing). Were B's request to lock one
  // before finding it is not B's, it would wait here until its lock timeout (503), and the transaction with it.
  await harness.database.prisma.$transaction(
    async (tx) => {
      await tx.$queryRawUnsafe('SELECT 1 FROM certificate_authorities WHERE id = ANY($1::uuid[]) FOR UPDATE', [rootId, subId]);
      await tx.$queryRawUnsafe('SELECT 1 FROM certificates WHERE id = $1::uuid FOR UPDATE', certificateId);
      for (const route of routes) {
        const operationId = operations.get(`${route.method} ${route.path}`) ?? '';
        const payload =
          route.method === 'GET' ? undefined : (bodies[operationId] ?? (route.path.endsWith('/activate') ? bodies.activate : undefined));
        for (const url of route.params.length > 0 ? urlsFor(route) : [route.path]) {
          const response = await call(route.method, url, OTHER_DOMAIN, payload);
          t.equal(response.status, 404, `${route.method} ${url}: 404 while A's rows are held (${response.body.slice(0, 200)})`);
          answered++;
        }
      }
    },
    { timeout: 600_000 },
  );
  t.ok(answered >= 30, `${answered} calls answered`);
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
