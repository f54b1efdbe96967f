/**
 * The audit log (issue 7): every successful mutation of the scenarios leaves exactly one SUCCESS event, written
 * with its change, naming the actor, the domain, the action, the resource and the response's X-Request-Id; a
 * refused mutation of a known caller leaves one FAILURE event; GET /v1/audit-events filters and stays in the
 * caller's domain.
 */
import t from 'tap';
import { AUDIT_RESOURCE_TYPES } from '../../src/services/audit/audit-log.ts';
import { caUrn } from '../../src/services/urn.ts';
import { createTestApp, OTHER_DOMAIN, TEST_DOMAIN } from '../helpers/app.ts';

const harness = await createTestApp();
t.teardown(() => harness.close());
const { app } = harness;
const CA = '/v1/private-certificate-authorities';
const CERT = '/v1/private-certificates';
const dn = {
  common_name: 'audit-root',
  country: 'CN',
  state: 'zhejiang',
  locality: 'hangzhou',
  organization: 'audit',
  organizational_unit: 'pki',
};

interface AuditEvent {
  id: string;
  domain_id: string;
  actor: string;
  action: string;
  resource_type: string | null;
  resource_id: string | null;
  outcome: string;
  request_id: string;
  detail: Record<string, unknown> | null;
  create_time: number;
}

async function send(method: string, url: string, payload?: unknown, headers = harness.auth()) {
  const response = await app.inject({
    method: method as 'GET',
    url,
    headers,
    ...(payload === undefined ? {} : { payload: payload as object }),
  });
  const json = response.body && response.headers['content-type']?.toString().startsWith('application/json') ? response.json() : undefined;
  return { status: response.statusCode, json, requestId: String(response.headers['x-request-id']), body: response.body };
}

async function events(query = '', domainId = TEST_DOMAIN): Promise<{ total: number; audit_events: AuditEvent[] }> {
  const response = await send('GET', `/v1/audit-events?limit=1000${query}`, undefined, harness.auth(domainId));
  if (response.status !== 200) throw new Error(`audit-events: ${response.status} ${response.body}`);
  return response.json;
}

interface Mutation {
  name: string;
  method: string;
  url: () => string;
  payload?: () => unknown;
  status: number;
  action: RegExp;
  resource: () => [type: string, id: string];
  /** Keeps what the response created for later steps. */
  after?: (json: any) => void;
}

const ids = { root: '', sub: '', certificate: '', access: '' };
const mutations: Mutation[] = [
  {
    name: 'create a root CA',
    method: 'POST',
    url: () => CA,
    status: 200,
    action: /^pca:ca:create$/,
    payload: () => ({
      type: 'ROOT',
      distinguished_name: dn,
      key_algorithm: 'EC256',
      signature_algorithm: 'SHA256',
      validity: { type: 'YEAR', value: 5 },
    }),
    resource: () => ['CA', ids.root],
    after: (json) => {
      ids.root = json.ca_id;
    },
  },
  {
    name: 'create a subordinate CA',
    method: 'POST',
    url: () => CA,
    status: 200,
    action: /^pca:ca:create$/,
    payload: () => ({
      type: 'SUBORDINATE',
      issuer_id: ids.root,
      distinguished_name: { ...dn, common_name: 'audit-sub' },
      key_algorithm: 'EC256',
      signature_algorithm: 'SHA256',
      validity: { type: 'YEAR', value: 1 },
    }),
    resource: () => ['CA', ids.sub],
    after: (json) => {
      ids.sub = json.ca_id;
    },
  },
  {
    name: 'issue a certificate',
    method: 'POST',
    url: () => CERT,
    status: 200,
    action: /^pca:ca:issueCert$/,
    payload: () => ({ issuer_id: ids.sub, distinguished_name: { common_name: 'audit-leaf' }, validity: { type: 'DAY', value: 30 } }),
    resource: () => ['CERTIFICATE', ids.certificate],
    after: (json) => {
      ids.certificate = json.certificate_id;
    },
  },
  {
    name: 'export the certificate with its server-made key',
    method: 'POST',
    url: () => `${CERT}/${ids.certificate}/export`,
    payload: () => ({ type: 'OTHER', is_compressed: false }),
    status: 200,
    action: /^pca:cert:export$/,
    resource: () => ['CERTIFICATE', ids.certificate],
  },
  {
    name: 'export it again as PKCS#12 with a password',
    method: 'POST',
    url: () => `${CERT}/${ids.certificate}/export`,
    payload: () => ({ type: 'IIS', is_compressed: false, password: 'Audit-Passw0rd' }),
    status: 200,
    action: /^pca:cert:export$/,
    resource: () => ['CERTIFICATE', ids.certificate],
  },
  {
    name: 'tag the root',
    method: 'POST',
    url: () => `${CA}/${ids.root}/tags`,
    payload: () => ({ tag: { key: 'env', value: 'test' } }),
    status: 204,
    action: /^pca:ca:tag$/,
    resource: () => ['CA', ids.root],
  },
  {
    name: 'enable the CRL',
    method: 'POST',
    url: () => `${CA}/${ids.sub}/crl/enable`,
    payload: () => ({ obs_bucket_name: 'bucket', valid_days: 7 }),
    status: 204,
    action: /^pca:ca:crl:enable$/,
    resource: () => ['CA', ids.sub],
  },
  {
    name: 'switch OCSP on',
    method: 'POST',
    url: () => `${CA}/${ids.sub}/ocsp/switch`,
    payload: () => ({ ocsp_switch: true }),
    status: 204,
    action: /^pca:ca:ocsp:switch$/,
    resource: () => ['CA', ids.sub],
  },
  {
    name: 'revoke the certificate',
    method: 'POST',
    url: () => `${CERT}/${ids.certificate}/revoke`,
    payload: () => ({ reason: 'KEY_COMPROMISE' }),
    status: 204,
    action: /^pca:cert:revoke$/,
    resource: () => ['CERTIFICATE', ids.certificate],
  },
  {
    name: 'disable the CRL',
    method: 'POST',
    url: () => `${CA}/${ids.sub}/crl/disable`,
    status: 204,
    action: /^pca:ca:crl:disable$/,
    resource: () => ['CA', ids.sub],
  },
  {
    name: 'disable the root',
    method: 'POST',
    url: () => `${CA}/${ids.root}/disable`,
    status: 204,
    action: /^pca:ca:disable$/,
    resource: () => ['CA', ids.root],
  },
  {
    name: 'enable the root',
    method: 'POST',
    url: () => `${CA}/${ids.root}/enable`,
    status: 204,
    action: /^pca:ca:enable$/,
    resource: () => ['CA', ids.root],
  },
  {
    name: 'tag the certificate',
    method: 'POST',
    url: () => `${CERT}/${ids.certificate}/tags`,
    payload: () => ({ tag: { key: 'env', value: 'test' } }),
    status: 204,
    action: /^pca:cert:tag$/,
    resource: () => ['CERTIFICATE', ids.certificate],
  },
  {
    name: 'untag the certificate',
    method: 'DELETE',
    url: () => `${CERT}/${ids.certificate}/tags/delete`,
    payload: () => ({ tags: [{ key: 'env', value: 'test' }] }),
    status: 204,
    action: /^pca:cert:untag$/,
    resource: () => ['CERTIFICATE', ids.certificate],
  },
  {
    name: 'delete the certificate',
    method: 'DELETE',
    url: () => `${CERT}/${ids.certificate}`,
    status: 204,
    action: /^pca:cert:delete$/,
    resource: () => ['CERTIFICATE', ids.certificate],
  },
  {
    name: 'disable the subordinate',
    method: 'POST',
    url: () => `${CA}/${ids.sub}/disable`,
    status: 204,
    action: /^pca:ca:disable$/,
    resource: () => ['CA', ids.sub],
  },
  {
    name: 'delete the subordinate',
    method: 'DELETE',
    url: () => `${CA}/${ids.sub}?pending_days=7`,
    status: 204,
    action: /^pca:ca:delete$/,
    resource: () => ['CA', ids.sub],
  },
  {
    name: 'restore the subordinate',
    method: 'POST',
    url: () => `${CA}/${ids.sub}/restore`,
    status: 204,
    action: /^pca:ca:restore$/,
    resource: () => ['CA', ids.sub],
  },
  {
    name: 'create an access key',
    method: 'POST',
    url: () => '/v1/access-keys',
    payload: () => ({ description: 'audited', actions: ['pca:ca:get'] }),
    status: 200,
    action: /^pca:accessKey:create$/,
    resource: () => ['ACCESS_KEY', ids.access],
    after: (json) => {
      ids.access = json.credential.access;
    },
  },
  {
    name: 'delete the access key',
    method: 'DELETE',
    url: () => `/v1/access-keys/${ids.access}`,
    status: 204,
    action: /^pca:accessKey:delete$/,
    resource: () => ['ACCESS_KEY', ids.access],
  },
];

t.test('every scenario mutation leaves exactly one SUCCESS event carrying its request id', async (t) => {
  const done: { mutation: Mutation; requestId: string }[] = [];
  for (const mutation of mutations) {
    const response = await send(mutation.method, mutation.url(), mutation.payload?.());
    t.equal(response.status, mutation.status, `${mutation.name}: ${response.status} ${response.body.slice(0, 200)}`);
    mutation.after?.(response.json);
    done.push({ mutation, requestId: response.requestId });
  }
  const all = (await events('&outcome=SUCCESS')).audit_events;
  for (const { mutation, requestId } of done) {
    const matching = all.filter((event) => event.request_id === requestId);
    t.equal(matching.length, 1, `${mutation.name}: exactly one event for request ${requestId}`);
    const [type, id] = mutation.resource();
    t.match(
      matching[0],
      { domain_id: TEST_DOMAIN, actor: 'dev-admin', outcome: 'SUCCESS', action: mutation.action, resource_type: type, resource_id: id },
      mutation.name,
    );
  }
  t.equal(all.length, done.length, 'no other SUCCESS events (reads write none)');
});

t.test('refused mutations of a known caller leave one FAILURE event; 401s and reads none', async (t) => {
  const before = (await events('&outcome=FAILURE')).total;
  const forbidden = await send('POST', `${CA}/${ids.root}/disable`, undefined, {
    authorization: `Bearer ${harness.tokenWith(['pca:ca:get'])}`,
  });
  t.equal(forbidden.status, 403);
  const missing = await send('DELETE', '/v1/access-keys/NOSUCHKEY0000000000A');
  t.equal(missing.status, 404);
  const invalid = await send('POST', CA, { type: 'ROOT' });
  t.equal(invalid.status, 400);
  t.equal((await send('POST', `${CA}/${ids.root}/disable`, undefined, { authorization: 'Bearer not-a-token' })).status, 401);
  t.equal((await send('GET', `${CA}/00000000-0000-4000-8000-000000000000`)).status, 404);

  const failures = (await events('&outcome=FAILURE')).audit_events;
  t.equal(failures.length - before, 3, 'one per refused mutation, none for the 401 or the read');
  const byRequest = (id: string) => failures.filter((event) => event.request_id === id);
  t.match(byRequest(forbidden.requestId), [
    {
      actor: 'test',
      action: 'pca:ca:disable',
      resource_type: 'CA',
      resource_id: ids.root,
      detail: { error_code: 'PCA.00010003', status: 403, permission: 'pca:ca:create' },
    },
  ]);
  t.match(byRequest(missing.requestId), [
    {
      actor: 'dev-admin',
      action: 'pca:accessKey:delete',
      resource_type: 'ACCESS_KEY',
      resource_id: 'NOSUCHKEY0000000000A',
      detail: { error_code: 'PCA.10010002' },
    },
  ]);
  t.match(byRequest(invalid.requestId), [{ action: 'pca:ca:create', resource_type: null, detail: { error_code: /^PCA\.000201/ } }]);
});

t.test('a refused export of a server-made key leaves its FAILURE event only, and the service goes on', async (t) => {
  const issued = await send('POST', CERT, {
    issuer_id: ids.root,
    distinguished_name: { common_name: 'audit-refused-export' },
    validity: { type: 'DAY', value: 30 },
  });
  t.equal(issued.status, 200, issued.body);
  // ISTIO needs an intermediate CA certificate: refused once the export is being built, after the checks up front.
  const refused = await send('POST', `${CERT}/${issued.json.certificate_id}/export`, { type: 'ISTIO', is_compressed: false });
  t.equal(refused.status, 400, refused.body);
  const mine = (await events()).audit_events.filter((event) => event.request_id === refused.requestId);
  t.match(mine, [{ outcome: 'FAILURE', action: 'pca:cert:export' }]);
  t.equal(mine.length, 1, 'no SUCCESS event: no key was handed out');
  t.equal((await send('GET', '/health')).status, 200, 'the server is still up');
});

t.test('a refused call naming a hostile id is audited too, the id made storable', async (t) => {
  const withNul = await send('POST', `${CA}/a%00b/disable`);
  t.equal(withNul.status, 400);
  const long = await send('POST', `${CA}/${'x'.repeat(1000)}/disable`);
  t.equal(long.status, 400);
  const failures = (await events('&outcome=FAILURE')).audit_events;
  t.match(
    failures.filter((event) => event.request_id === withNul.requestId),
    [{ action: 'pca:ca:disable', resource_type: 'CA', resource_id: 'a\uFFFDb' }],
    'NUL, which Postgres text cannot hold, shown as U+FFFD',
  );
  t.match(
    failures.filter((event) => event.request_id === long.requestId),
    [{ resource_id: 'x'.repeat(256) }],
    'at most 256 characters kept',
  );
});

t.test('a refused call is logged as the operation attempted, with the permission checked beside it (issue #21)', async (t) => {
  const limited = { authorization: `Bearer ${harness.tokenWith(['pca:ca:get', 'pca:cert:get'])}` };
  const refusals = [
    {
      call: () => send('POST', `${CA}/${ids.root}/restore`),
      status: 400,
      action: 'pca:ca:restore',
      permission: 'pca:ca:delete',
      resource: ['CA', ids.root],
    },
    {
      call: () => send('POST', `${CA}/${ids.root}/enable`),
      status: 400,
      action: 'pca:ca:enable',
      permission: 'pca:ca:create',
      resource: ['CA', ids.root],
    },
    {
      call: () => send('POST', `${CA}/${ids.sub}/activate`, {}),
      status: 400,
      action: 'pca:ca:activate',
      permission: 'pca:ca:create',
      resource: ['CA', ids.sub],
    },
    {
      call: () => send('POST', `${CA}/${ids.root}/tags`, { tag: { key: 'k', value: 'v' } }, limited),
      status: 403,
      action: 'pca:ca:tag',
      permission: 'pca:ca:create',
      resource: ['CA', ids.root],
    },
    {
      call: () => send('DELETE', `${CA}/${ids.root}/tags/delete`, { tags: [{ key: 'k' }] }, limited),
      status: 403,
      action: 'pca:ca:untag',
      permission: 'pca:ca:create',
      resource: ['CA', ids.root],
    },
    {
      call: () => send('POST', `${CERT}/${ids.certificate}/tags`, { tag: { key: 'k', value: 'v' } }, limited),
      status: 403,
      action: 'pca:cert:tag',
      permission: 'pca:cert:delete',
      resource: ['CERTIFICATE', ids.certificate],
    },
    {
      call: () => send('POST', `${CA}/${ids.root}/crl/enable`, { valid_days: 7 }, limited),
      status: 403,
      action: 'pca:ca:crl:enable',
      permission: 'pca:ca:create',
      resource: ['CA', ids.root],
    },
    {
      call: () => send('POST', `${CA}/${ids.root}/crl/disable`, undefined, limited),
      status: 403,
      action: 'pca:ca:crl:disable',
      permission: 'pca:ca:create',
      resource: ['CA', ids.root],
    },
    {
      call: () => send('POST', `${CA}/${ids.root}/ocsp/switch`, { ocsp_switch: true }, limited),
      status: 403,
      action: 'pca:ca:ocsp:switch',
      permission: 'pca:ca:create',
      resource: ['CA', ids.root],
    },
    {
      call: () => send('POST', `${CA}/${ids.root}/revoke`, {}, limited),
      status: 403,
      action: 'pca:ca:revoke',
      permission: 'pca:cert:revoke',
      resource: ['CA', ids.root],
    },
    {
      call: () => send('PUT', `${CA}/${ids.root}/issuance-policy`, {}, limited),
      status: 403,
      action: 'pca:ca:setIssuancePolicy',
      permission: 'pca:ca:create',
      resource: ['CA', ids.root],
    },
    {
      call: () => send('PUT', `${CA}/${ids.root}/acme-policy`, { enabled: 'nope' }),
      status: 400,
      action: 'pca:ca:setAcmePolicy',
      permission: 'pca:ca:create',
      resource: ['CA', ids.root],
    },
    {
      call: () => send('POST', `${CA}/${ids.root}/acme/eab`, undefined, limited),
      status: 403,
      action: 'pca:acme:createEab',
      permission: 'pca:acme:eab',
      resource: ['CA', ids.root],
    },
    {
      call: () => send('DELETE', `${CA}/${ids.root}/acme/eab/no-such-kid`),
      status: 404,
      action: 'pca:acme:revokeEab',
      permission: 'pca:acme:eab',
      resource: ['ACME_EAB_KEY', 'no-such-kid'],
    },
    {
      // Named by its URN (§10.1): recorded by its id, as a success by URN is.
      call: () => send('POST', `${CA}/${caUrn(harness.config.region, harness.config.defaultDomainId, ids.root)}/restore`),
      status: 400,
      action: 'pca:ca:restore',
      permission: 'pca:ca:delete',
      resource: ['CA', ids.root],
    },
  ];
  for (const refusal of refusals) {
    const response = await refusal.call();
    t.equal(response.status, refusal.status, `${refusal.action}: ${response.body.slice(0, 160)}`);
    const logged = (await events(`&outcome=FAILURE&action=${encodeURIComponent(refusal.action)}`)).audit_events.filter(
      (event) => event.request_id === response.requestId,
    );
    t.match(
      logged,
      [
        {
          action: refusal.action,
          resource_type: refusal.resource[0],
          resource_id: refusal.resource[1],
          detail: { status: refusal.status, permission: refusal.permission },
        },
      ],
      refusal.action,
    );
  }
});

t.test('filters, paging, and the caller domain only', async (t) => {
  const all = await events();
  t.ok(all.total > 10);
  const times = all.audit_events.map((event) => event.create_time);
  t.same(
    times,
    [...times].sort((a, b) => b - a),
    'newest first',
  );

  const byResource = await events(`&resource_type=CA&resource_id=${ids.sub}&action=pca:ca:disable`);
  t.equal(byResource.total, 1);
  t.equal(byResource.audit_events[0].resource_id, ids.sub);

  const page = await send('GET', '/v1/audit-events?limit=2&offset=1');
  t.equal(page.json.total, all.total);
  t.same(
    page.json.audit_events.map((event: AuditEvent) => event.id),
    all.audit_events.slice(1, 3).map((event) => event.id),
  );
  t.same((await send('GET', '/v1/audit-events?limit=0')).json, { total: all.total, audit_events: [] });

  const newest = all.audit_events[0].create_time;
  t.equal((await events(`&start_time=${newest + 1}`)).total, 0, 'start_time is a lower bound');
  t.equal((await events(`&end_time=${newest}`)).total, all.total, 'end_time is inclusive');

  t.equal((await events('', OTHER_DOMAIN)).total, 0, 'another domain sees none of these events');
  t.equal((await send('GET', '/v1/audit-events?outcome=MAYBE')).status, 400);
  for (const type of AUDIT_RESOURCE_TYPES) {
    t.equal(
      (await send('GET', `/v1/audit-events?resource_type=${type}`)).status,
      200,
      `every resource type an event names filters: ${type}`,
    );
  }
  const partial = await send('GET', '/v1/audit-events', undefined, {
    authorization: `Bearer ${harness.tokenWith(['pca:ca:list', 'pca:cert:list'])}`,
  });
  t.equal(partial.status, 403, 'reading the log needs every action of the catalogue');
  t.equal(partial.json.error_code, 'PCA.00010003');
});
