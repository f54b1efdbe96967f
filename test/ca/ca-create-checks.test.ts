/**
 * POST CA judges what it is sent even when it only makes a key and leaves the CA PENDING (a subordinate without
 * signature_algorithm or validity, §4.2.1): the issuer reference (§2, §10.1) and the validity (§5.3) as an immediate
 * create and an activation do, instead of answering 200 and dropping them. Configuring a yearly/monthly CA by create
 * with ca_id keeps the enterprise project it was ordered with when the request names none, as activation does.
 */
import t from 'tap';
import { createTestApp } from '../helpers/app.ts';
import { CA, DN, PREPAID_PRODUCT, assertError, client, type Json } from './support.ts';

const harness = await createTestApp();
t.teardown(() => harness.close());
const api = client(harness);
const { call } = api;
const rootId = await api.root({ distinguished_name: { ...DN, common_name: 'create-checks-root' } });
const prisma = harness.database.prisma;

const pendingSubordinate = (overrides: Json): Json => ({
  type: 'SUBORDINATE',
  distinguished_name: { ...DN, common_name: 'create-checks-pending' },
  key_algorithm: 'EC256',
  ...overrides,
});

t.test('a subordinate left PENDING: a bad issuer_id or out-of-range validity is refused, nothing is created', async (t) => {
  const before = await prisma.certificateAuthority.count();
  const cases: [string, Json, string, RegExp][] = [
    ['issuer_id not an id', { issuer_id: 'not-a-uuid', signature_algorithm: 'SHA256' }, 'PCA.00020201', /issuer_id/],
    [
      'issuer_id a URN of another region',
      { issuer_id: `pca:eu-west-101:${harness.config.defaultDomainId}:ca:${rootId}` },
      'PCA.00020201',
      /'eu-west-101' does not match this service's region 'cn-north-4'/,
    ],
    ['validity over 20 years', { issuer_id: rootId, validity: { type: 'YEAR', value: 50 }, path_length: 6 }, 'PCA.00020109', /20 years/],
    [
      'validity.start_from in 1970',
      { issuer_id: rootId, validity: { type: 'YEAR', value: 1, start_from: 1000 } },
      'PCA.00020109',
      /start_from/,
    ],
    [
      'validity without an issuer',
      { validity: { type: 'DAY', value: 1, start_from: Date.now() - 3_600_000 } },
      'PCA.00020109',
      /start_from/,
    ],
  ];
  for (const [label, overrides, code, message] of cases) {
    await t.test(label, async (t) => assertError(t, await call('POST', CA, pendingSubordinate(overrides)), 400, code, message));
  }
  t.equal(await prisma.certificateAuthority.count(), before, 'no CA was created');
});

t.test('configuring a yearly/monthly CA as a PENDING subordinate: the same checks, and the CA stays unconfigured', async (t) => {
  const cases: [Json, string][] = [
    [{ issuer_id: 'not-a-uuid' }, 'PCA.00020201'],
    [{ issuer_id: rootId, validity: { type: 'YEAR', value: 21 } }, 'PCA.00020109'],
  ];
  for (const [overrides, code] of cases) {
    const prepaid = await api.order({ period_type: 2, period_num: 1, is_auto_renew: 0 });
    assertError(t, await call('POST', CA, pendingSubordinate({ ca_id: prepaid, ...overrides })), 400, code);
    t.match(await api.show(prepaid), { status: 'PENDING', type: null, key_algorithm: null }, 'still unconfigured');
  }
});

t.test('what a PENDING subordinate may be sent is still accepted', async (t) => {
  for (const overrides of [
    { issuer_id: rootId, validity: { type: 'YEAR', value: 20 } },
    { issuer_id: `pca:cn-north-4:${harness.config.defaultDomainId}:ca:${rootId}`, signature_algorithm: 'SHA256' },
    { validity: { type: 'DAY', value: 1, start_from: Date.now() + 60_000 } },
    // Huawei's Go SDK sends its unset issuer_id as "".
    { issuer_id: '' },
  ]) {
    const created = await call('POST', CA, pendingSubordinate(overrides));
    t.equal(created.status, 200, `200 for ${JSON.stringify(overrides)} (${JSON.stringify(created.body)})`);
    t.equal((await api.show(created.body.ca_id)).status, 'PENDING');
  }
});

t.test('create with ca_id and no enterprise_project_id keeps the one the CA was ordered with', async (t) => {
  const enterpriseProjectId = 'c0ffee00-0000-4000-8000-000000000001';
  const ordered = await call('POST', `${CA}/order`, {
    cloud_service_type: 'hws.service.type.ccm',
    charging_mode: 0,
    period_type: 2,
    period_num: 1,
    is_auto_renew: 0,
    subscription_num: 2,
    product_infos: [PREPAID_PRODUCT],
    enterprise_project_id: enterpriseProjectId,
  });
  t.equal(ordered.status, 200);
  const [kept, replaced] = ordered.body.ca_ids as string[];
  t.equal(await api.root({ ca_id: kept }), kept, 'configured by create with ca_id');
  t.match(await api.show(kept), { status: 'ACTIVED', enterprise_project_id: enterpriseProjectId });
  await api.root({ ca_id: replaced, enterprise_project_id: 'all' });
  t.equal((await api.show(replaced)).enterprise_project_id, 'all', 'one sent replaces it');
  t.equal((await api.show(await api.root())).enterprise_project_id, '0', 'a pay-per-use CA still defaults to "0"');
});
