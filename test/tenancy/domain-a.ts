/**
 * Domain A's resources for the tenancy sweeps (isolation.test.ts, isolation-under-locks.test.ts): a root CA, a
 * subordinate, a certificate, a tag, an access key and an ACME EAB key, made through the API of `harness`; and what
 * the sweeps send and expect on each /v1 route.
 */
import { MONTHLY_ORDER, PREPAID_PRODUCT, client } from '../ca/support.ts';
import { KEY_ARGS, opensslCsr, scratch } from '../certificates/support.ts';
import { TEST_DOMAIN, type TestApp } from '../helpers/app.ts';
import { fillPath, type V1Route } from './v1-routes.ts';

export const CA = '/v1/private-certificate-authorities';
export const CERT = '/v1/private-certificates';
export const validity = { type: 'DAY', value: 30 };
export const dn = {
  common_name: 'tenant-a-root',
  country: 'CN',
  state: 'zhejiang',
  locality: 'hangzhou',
  organization: 'tenant-a',
  organizational_unit: 'pki',
};

export type Expectation = 'not-found' | 'no-data-of-A' | 'unauthenticated';

/**
 * Routes without a resource id, each with its expectation. A create that names A's CA in its body must not find
 * it; a list, quota, lookup or create of B's own must not show A's data. A new such route fails the test until
 * it is listed here.
 */
export const withoutResourceId: Record<string, Expectation> = {
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

export async function seedDomainA(harness: TestApp) {
  const { app } = harness;
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

  const ca = client(harness);
  const rootId = await ca.root({ distinguished_name: dn });
  const subId = await ca.subordinate(rootId, { distinguished_name: { ...dn, common_name: 'tenant-a-sub' } });
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
  const { csr } = await opensslCsr(await scratch('tenancy'), 'tenant-b', [...KEY_ARGS.p256]);

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
      ...MONTHLY_ORDER,
      product_infos: [
        {
          ...PREPAID_PRODUCT,
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

  /** What the sweep sends to `route`: a valid body, so that no 400 (syntax comes before existence) hides the check. */
  const payloadOf = (route: V1Route, operations: Map<string, string>): unknown =>
    route.method === 'GET'
      ? undefined
      : (bodies[operations.get(`${route.method} ${route.path}`) ?? ''] ?? (route.path.endsWith('/activate') ? bodies.activate : undefined));

  return { call, rootId, subId, certificateId, access, secretsOfA, operationIds, answerOf, urlsFor, payloadOf };
}
