/**
 * The CA endpoints over HTTP (§4.2, §4.5, §6.1, §10.1, §10.4): each operation's happy path and its contract
 * errors, every forbidden transition of the state machine, URNs, other regions and domains, list filters and paging.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { OTHER_DOMAIN, createTestApp } from '../helpers/app.ts';
import { runOpenssl } from '../x509/fixtures/openssl-pki.ts';
import { KEY_ARGS, opensslCsr } from '../certificates/support.ts';
import { openssl, scratch } from '../x509/support.ts';
import { CA, DN, PREPAID_PRODUCT, assertError, client, opensslDir, type Json } from './support.ts';

const harness = await createTestApp({ env: { CA_QUOTA: '60' } });
t.teardown(() => harness.close());
const api = client(harness);
const { call } = api;
const prisma = harness.database.prisma;
const QUOTA_DOMAIN = 'quota0000000000000000000000000001';

const rootId = await api.root();

/** An order of two CAs for one year each. */
const TWO_YEARLY_CAS = {
  cloud_service_type: 'hws.service.type.ccm',
  charging_mode: 0,
  period_type: 3,
  period_num: 1,
  is_auto_renew: 0,
  subscription_num: 2,
  product_infos: [PREPAID_PRODUCT],
};

t.test('create a root: ACTIVED, path length 7, every CA object field', async (t) => {
  const ca = await api.show(rootId);
  t.match(ca, {
    ca_id: rootId,
    type: 'ROOT',
    status: 'ACTIVED',
    path_length: 7,
    issuer_id: null,
    issuer_name: null,
    key_algorithm: 'EC256',
    signature_algorithm: 'SHA256',
    freeze_flag: 0,
    gen_mode: 'GENERATE',
    delete_time: null,
    distinguished_name: DN,
    crl_configuration: { enabled: false, crl_name: null, obs_bucket_name: null, valid_days: null, crl_dis_point: null },
    enterprise_project_id: '0',
    charging_mode: 1,
    cluster_id: null,
    urn: `pca:cn-north-4:${harness.config.defaultDomainId}:ca:${rootId}`,
    name_constraints: null,
    issuance_policy: null,
    prepaid_auto_renew: null,
  });
  t.same(ca.acme_policy, { enabled: false, allowed_identifiers: null, max_validity_days: null }, 'ACME is off until a policy enables it');
  t.match(ca.serial_number, /^[0-9a-f]{32}$/);
  t.equal(ca.not_after - ca.not_before > 4 * 365 * 86_400_000, true, '5 years');
  t.equal(Object.keys(ca).length, 29, 'exactly the documented fields, plus the prepaid-period, issue #19 and ACME extensions');
});

t.test('create a subordinate under a root; crl_configuration echoed with the public CRL URL', async (t) => {
  const subId = await api.subordinate(rootId, {
    path_length: 1,
    crl_configuration: { enabled: true, valid_days: 7, obs_bucket_name: 'b' },
  });
  const ca = await api.show(subId);
  t.match(ca, { status: 'ACTIVED', path_length: 1, issuer_id: rootId, issuer_name: 'asm', type: 'SUBORDINATE' });
  t.same(ca.crl_configuration, {
    enabled: true,
    crl_name: subId,
    obs_bucket_name: 'b',
    valid_days: 7,
    crl_dis_point: `http://127.0.0.1:8080/crl/${subId}.crl`,
  });
});

t.test('create errors carry the contract codes', async (t) => {
  const root = {
    type: 'ROOT',
    distinguished_name: DN,
    key_algorithm: 'EC256',
    signature_algorithm: 'SHA256',
    validity: { type: 'YEAR', value: 1 },
  };
  const sub = { ...root, type: 'SUBORDINATE', issuer_id: rootId };
  const cases: [string, Json, number, string, RegExp?][] = [
    ['bad type', { ...root, type: 'INTERMEDIATE' }, 400, 'PCA.00020202'],
    ['bad DN', { ...root, distinguished_name: { ...DN, country: 'CHN' } }, 400, 'PCA.00020101', /country/],
    ['DN attribute missing', { ...root, distinguished_name: { common_name: 'x' } }, 400, 'PCA.00020101'],
    ['SM2', { ...root, key_algorithm: 'SM2' }, 400, 'PCA.00020102'],
    ['SM3', { ...root, signature_algorithm: 'SM3' }, 400, 'PCA.00020103'],
    ['root over 30 years', { ...root, validity: { type: 'YEAR', value: 31 } }, 400, 'PCA.00020109'],
    ['bad validity type', { ...root, validity: { type: 'WEEK', value: 1 } }, 400, 'PCA.00020109'],
    ['a root ending past 9999', { ...root, validity: { type: 'YEAR', value: 1, start_from: Date.UTC(9999, 6) } }, 400, 'PCA.00020109'],
    ['start_from in the past', { ...root, validity: { type: 'DAY', value: 1, start_from: Date.now() - 3_600_000 } }, 400, 'PCA.00020109'],
    ['subordinate over 20 years', { ...sub, validity: { type: 'YEAR', value: 21 } }, 400, 'PCA.00020109'],
    ['subordinate past its issuer', { ...sub, validity: { type: 'YEAR', value: 6 } }, 400, 'PCA.00020109', /issuer/],
    ['root without signature_algorithm', { ...root, signature_algorithm: undefined }, 400, 'PCA.00020001'],
    ['bad issuer id', { ...sub, issuer_id: 'not-a-uuid' }, 400, 'PCA.00020201'],
    ['missing issuer', { ...sub, issuer_id: randomUUID() }, 404, 'PCA.10010002'],
    ['path length 7', { ...sub, path_length: 7 }, 400, 'PCA.00020203'],
    ['unknown key usage', { ...sub, key_usages: ['everything'] }, 400, 'PCA.00020001'],
    ['crl valid_days 3', { ...root, crl_configuration: { enabled: true, valid_days: 3 } }, 400, 'PCA.00020001'],
    ['crl_name past 64', { ...root, crl_configuration: { enabled: true, valid_days: 7, crl_name: 'n'.repeat(65) } }, 400, 'PCA.00020001'],
  ];
  for (const [label, payload, status, code, message] of cases) {
    await t.test(label, async (t) => assertError(t, await call('POST', CA, payload), status, code, message));
  }
});

t.test("path lengths: below the issuer's; a pathLen-0 subordinate cannot get a subordinate", async (t) => {
  const one = await api.subordinate(rootId, { path_length: 1 });
  assertError(
    t,
    await call('POST', CA, {
      type: 'SUBORDINATE',
      issuer_id: one,
      path_length: 1,
      distinguished_name: DN,
      key_algorithm: 'EC256',
      signature_algorithm: 'SHA256',
      validity: { type: 'DAY', value: 1 },
    }),
    400,
    'PCA.00020203',
  );
  const zero = await api.subordinate(one, { path_length: 0, validity: { type: 'DAY', value: 30 } });
  t.equal((await api.show(zero)).path_length, 0);
  const refused = await call('POST', CA, {
    type: 'SUBORDINATE',
    issuer_id: zero,
    distinguished_name: DN,
    key_algorithm: 'EC256',
    signature_algorithm: 'SHA256',
    validity: { type: 'DAY', value: 1 },
  });
  assertError(t, refused, 400, 'PCA.00020203', /path_length 0/);
});

t.test('PENDING subordinate: CSR export, then activation under one of ours', async (t) => {
  const created = await call('POST', CA, {
    type: 'SUBORDINATE',
    distinguished_name: { ...DN, common_name: 'later' },
    key_algorithm: 'EC384',
  });
  t.equal(created.status, 200);
  const id = created.body.ca_id;
  t.match(await api.show(id), { status: 'PENDING', serial_number: null, not_before: null, not_after: null, gen_mode: 'GENERATE' });
  const csr = await call('GET', `${CA}/${id}/csr`);
  t.match(csr.body.csr, /^-----BEGIN CERTIFICATE REQUEST-----\r\n/);
  const files = await opensslDir(t);
  const checked = await runOpenssl(['req', '-verify', '-noout', '-subject', '-in', await files.write('req.pem', csr.body.csr)]);
  t.equal(checked.code, 0, checked.output);
  t.match(checked.output, /CN\s*=\s*later/);
  assertError(
    t,
    await call('POST', `${CA}/${id}/activate`, { signature_algorithm: 'SHA256', validity: { type: 'DAY', value: 1 } }),
    400,
    'PCA.00020001',
    /issuer_id/,
  );
  const activated = await call('POST', `${CA}/${id}/activate`, {
    issuer_id: rootId,
    signature_algorithm: 'SHA384',
    validity: { type: 'DAY', value: 10 },
    path_length: 2,
  });
  t.equal(activated.status, 204);
  t.match(await api.show(id), {
    status: 'ACTIVED',
    issuer_id: rootId,
    path_length: 2,
    signature_algorithm: 'SHA384',
    key_algorithm: 'EC384',
  });
});

t.test('order: PENDING prepaid CAs without keys, CA_PREPAID records; configure by create with ca_id and by activate', async (t) => {
  const order = TWO_YEARLY_CAS;
  assertError(t, await call('POST', `${CA}/order`, { ...order, charging_mode: 1 }), 400, 'PCA.00020001');
  const response = await call('POST', `${CA}/order`, order);
  t.equal(response.status, 200);
  const [first, second] = response.body.ca_ids as string[];
  const pending = await api.show(first);
  t.match(pending, { status: 'PENDING', charging_mode: 0, type: null, distinguished_name: null, key_algorithm: null });
  t.ok(
    pending.prepaid_days_left >= 365 && pending.prepaid_days_left <= 366,
    `a one-year purchase shows ${pending.prepaid_days_left} days left`,
  );
  t.ok(pending.prepaid_expire_time > Date.now() + 364 * 86_400_000, 'and when it ends');
  const listed = (await call('GET', `${CA}?status=PENDING&limit=100`)).body.certificate_authorities as {
    ca_id: string;
    prepaid_days_left: number;
  }[];
  t.equal(listed.find((ca) => ca.ca_id === first)?.prepaid_days_left, pending.prepaid_days_left, 'the list carries the console column too');
  t.match(
    await api.show(rootId),
    { charging_mode: 1, prepaid_days_left: null, prepaid_expire_time: null, prepaid_auto_renew: null },
    'pay-per-use CAs show none',
  );
  const records = await prisma.billingRecord.findMany({ where: { resourceId: { in: [first, second] } } });
  t.same(
    records.map((r) => r.usageType),
    ['CA_PREPAID', 'CA_PREPAID'],
  );
  const certificate = { issuer_id: first, distinguished_name: { common_name: 'from-unconfigured' }, validity: { type: 'DAY', value: 1 } };
  assertError(t, await call('POST', '/v1/private-certificates', certificate), 400, 'PCA.00020001', /key_algorithm is required/);
  assertError(
    t,
    await call('POST', '/v1/private-certificates', { ...certificate, key_algorithm: 'EC256' }),
    400,
    'PCA.00020001',
    /ACTIVED/,
  );

  const configured = await call('POST', CA, {
    type: 'ROOT',
    ca_id: first,
    distinguished_name: { ...DN, common_name: 'prepaid' },
    key_algorithm: 'EC256',
    signature_algorithm: 'SHA256',
    validity: { type: 'YEAR', value: 1 },
  });
  t.same(configured.body, { ca_id: first });
  t.match(await api.show(first), { status: 'ACTIVED', charging_mode: 0, type: 'ROOT', path_length: 7 });
  assertError(
    t,
    await call('POST', CA, {
      type: 'ROOT',
      ca_id: first,
      distinguished_name: DN,
      key_algorithm: 'EC256',
      signature_algorithm: 'SHA256',
      validity: { type: 'YEAR', value: 1 },
    }),
    400,
    'PCA.00020001',
  );
  assertError(
    t,
    await call('POST', CA, {
      type: 'ROOT',
      ca_id: rootId,
      distinguished_name: DN,
      key_algorithm: 'EC256',
      signature_algorithm: 'SHA256',
      validity: { type: 'YEAR', value: 1 },
    }),
    400,
    'PCA.00020001',
    /yearly\/monthly/,
  );

  assertError(
    t,
    await call('POST', `${CA}/${second}/activate`, {
      issuer_id: rootId,
      signature_algorithm: 'SHA256',
      validity: { type: 'DAY', value: 1 },
    }),
    400,
    'PCA.00020202',
  );
  const activated = await call('POST', `${CA}/${second}/activate`, {
    type: 'SUBORDINATE',
    distinguished_name: { ...DN, common_name: 'prepaid-sub' },
    key_algorithm: 'EC256',
    issuer_id: rootId,
    signature_algorithm: 'SHA256',
    validity: { type: 'DAY', value: 1 },
  });
  t.equal(activated.status, 204);
  t.match(await api.show(second), { status: 'ACTIVED', charging_mode: 0, issuer_id: rootId, gen_mode: 'GENERATE' });
});

t.test('URNs work wherever a CA id does; another region is 400 naming both; another domain is 404', async (t) => {
  const urn = `pca:cn-north-4:${harness.config.defaultDomainId}:ca:${rootId}`;
  t.equal((await call('GET', `${CA}/${urn}`)).body.ca_id, rootId);
  t.equal((await call('GET', `${CA}/${encodeURIComponent(urn)}`)).body.ca_id, rootId);
  t.equal((await call('POST', `${CA}/${urn}/export`)).status, 200);
  const sub = await api.subordinate(urn, { validity: { type: 'DAY', value: 1 } });
  t.equal((await api.show(sub)).issuer_id, rootId, 'issuer_id given as URN, returned bare');
  const foreign = `pca:eu-west-101:${harness.config.defaultDomainId}:ca:${rootId}`;
  assertError(t, await call('GET', `${CA}/${foreign}`), 400, 'PCA.00020201', /'eu-west-101'.*'cn-north-4'/);
  assertError(
    t,
    await call('POST', CA, {
      type: 'SUBORDINATE',
      issuer_id: foreign,
      distinguished_name: DN,
      key_algorithm: 'EC256',
      signature_algorithm: 'SHA256',
      validity: { type: 'DAY', value: 1 },
    }),
    400,
    'PCA.00020201',
    /eu-west-101/,
  );
  assertError(t, await call('GET', `${CA}/pca:cn-north-4:x:certificate:${rootId}`), 400, 'PCA.00020201');
  assertError(t, await call('GET', `${CA}/${rootId}`, undefined, OTHER_DOMAIN), 404, 'PCA.10010002');
  assertError(t, await call('GET', `${CA}/pca:cn-north-4:${OTHER_DOMAIN}:ca:${rootId}`), 404, 'PCA.10010002');
  assertError(t, await call('POST', `${CA}/${rootId}/disable`, undefined, OTHER_DOMAIN), 404, 'PCA.10010002');
  assertError(t, await call('GET', `${CA}/${rootId.toUpperCase()}`), 400, 'PCA.00020201');
});

t.test("export: a root's chain is itself, a subordinate's runs to the root; PENDING cannot export", async (t) => {
  const sub = await api.subordinate(rootId, { path_length: 2, validity: { type: 'MONTH', value: 2 } });
  const subSub = await api.subordinate(sub, { validity: { type: 'DAY', value: 3 } });
  const rootExport = (await call('POST', `${CA}/${rootId}/export`)).body;
  t.equal(rootExport.certificate_chain, rootExport.certificate);
  t.notMatch(rootExport.certificate, /\r\n$/, 'no break after the last END line');
  const subExport = (await call('POST', `${CA}/${subSub}/export`)).body;
  const subCert = (await call('POST', `${CA}/${sub}/export`)).body.certificate;
  t.equal(subExport.certificate_chain, `${subCert}\r\n${rootExport.certificate}`);
  const pending = await call('POST', CA, { type: 'SUBORDINATE', distinguished_name: DN, key_algorithm: 'EC256' });
  assertError(t, await call('POST', `${CA}/${pending.body.ca_id}/export`), 400, 'PCA.00020001');
});

t.test('disable, enable; a disabled issuer cannot sign; delete and restore', async (t) => {
  const id = await api.subordinate(rootId, { validity: { type: 'DAY', value: 5 } });
  t.equal((await call('POST', `${CA}/${id}/disable`)).status, 204);
  t.equal((await api.show(id)).status, 'DISABLED');
  assertError(
    t,
    await call('POST', CA, {
      type: 'SUBORDINATE',
      issuer_id: id,
      distinguished_name: DN,
      key_algorithm: 'EC256',
      signature_algorithm: 'SHA256',
      validity: { type: 'DAY', value: 1 },
    }),
    400,
    'PCA.00020001',
    /DISABLED/,
  );
  t.equal((await call('POST', `${CA}/${id}/enable`)).status, 204);
  t.equal((await api.show(id)).status, 'ACTIVED');
  assertError(t, await call('DELETE', `${CA}/${id}?pending_days=7`), 400, 'PCA.00020001', /ACTIVED/);
  await call('POST', `${CA}/${id}/disable`);
  assertError(t, await call('DELETE', `${CA}/${id}?pending_days=6`), 400, 'PCA.00020001', /pending_days/);
  assertError(t, await call('DELETE', `${CA}/${id}?pending_days=31`), 400, 'PCA.00020001');
  const before = Date.now();
  t.equal((await call('DELETE', `${CA}/${id}?pending_days=10`)).status, 204);
  const deleted = await api.show(id);
  t.equal(deleted.status, 'DELETED', 'DELETED stays visible');
  t.ok(Math.abs(deleted.delete_time - (before + 10 * 86_400_000)) < 60_000, 'delete_time = now + pending_days');
  t.equal((await call('POST', `${CA}/${id}/restore`)).status, 204);
  t.match(await api.show(id), { status: 'DISABLED', delete_time: null });
  await call('DELETE', `${CA}/${id}`);
  t.ok(Math.abs((await api.show(id)).delete_time - (Date.now() + 7 * 86_400_000)) < 60_000, 'pending_days defaults to 7');
});

t.test('a PENDING CA is removed at once: 404 afterwards, not listed, not counted', async (t) => {
  const pending = (await call('POST', CA, { type: 'SUBORDINATE', distinguished_name: DN, key_algorithm: 'EC256' })).body.ca_id;
  const usedBefore = (await call('GET', `${CA}/quotas`)).body.quotas.resources[0].used;
  t.equal((await call('DELETE', `${CA}/${pending}`)).status, 204);
  assertError(t, await call('GET', `${CA}/${pending}`), 404, 'PCA.10010002');
  assertError(t, await call('POST', `${CA}/${pending}/restore`), 404, 'PCA.10010002');
  t.equal((await call('GET', `${CA}/quotas`)).body.quotas.resources[0].used, usedBefore - 1);
});

/** One CA in each status, for the state-machine table. */
async function caInStatus(status: string): Promise<string> {
  if (status === 'PENDING')
    return (await call('POST', CA, { type: 'SUBORDINATE', distinguished_name: DN, key_algorithm: 'EC256' })).body.ca_id;
  const id = await api.subordinate(rootId, { validity: { type: 'DAY', value: 2 } });
  if (status === 'ACTIVED') return id;
  await call('POST', `${CA}/${id}/disable`);
  if (status === 'DISABLED') return id;
  if (status === 'EXPIRED') {
    await prisma.certificateAuthority.update({ where: { id }, data: { notAfter: new Date(Date.now() - 1000) } });
    return id;
  }
  await call('DELETE', `${CA}/${id}`);
  return id;
}

t.test('every transition §6.1 forbids gets 400 PCA.00020001', async (t) => {
  const operations: Record<string, [string, string, Json?]> = {
    activate: ['POST', 'activate', { issuer_id: rootId, signature_algorithm: 'SHA256', validity: { type: 'DAY', value: 1 } }],
    'CSR export': ['GET', 'csr'],
    import: ['POST', 'import', { certificate: (await call('POST', `${CA}/${rootId}/export`)).body.certificate }],
    export: ['POST', 'export'],
    disable: ['POST', 'disable'],
    enable: ['POST', 'enable'],
    delete: ['DELETE', ''],
    restore: ['POST', 'restore'],
  };
  const allowed: Record<string, string[]> = {
    PENDING: ['activate', 'CSR export', 'import', 'delete'],
    ACTIVED: ['export', 'disable'],
    DISABLED: ['enable', 'delete'],
    EXPIRED: ['export', 'delete'],
    DELETED: ['restore'],
  };
  for (const [status, permitted] of Object.entries(allowed)) {
    for (const [operation, [method, suffix, body]] of Object.entries(operations)) {
      if (permitted.includes(operation)) continue;
      await t.test(`${operation} in ${status}`, async (t) => {
        const id = await caInStatus(status);
        t.equal((await api.show(id)).status, status);
        assertError(t, await call(method, `${CA}/${id}${suffix ? `/${suffix}` : ''}`, body), 400, 'PCA.00020001', new RegExp(status));
      });
    }
  }
});

t.test('CSR-issued intermediates: shown and exported, never listed, refused elsewhere', async (t) => {
  const issuer = await prisma.certificateAuthority.findUniqueOrThrow({ where: { id: rootId } });
  const id = randomUUID();
  await prisma.certificateAuthority.create({
    data: {
      id,
      domainId: issuer.domainId,
      type: 'SUBORDINATE',
      status: 'ACTIVED',
      genMode: 'CSR',
      issuerId: rootId,
      commonName: 'mesh-ca',
      keyAlgorithm: 'EC256',
      signatureAlgorithm: 'SHA384',
      serialNumber: 'ab'.repeat(16),
      notBefore: issuer.notBefore,
      notAfter: issuer.notAfter,
      certificateDer: issuer.certificateDer,
    },
  });
  t.match(await api.show(id), { gen_mode: 'CSR', status: 'ACTIVED', issuer_name: 'asm' });
  const exported = await call('POST', `${CA}/${id}/export`);
  t.equal(exported.status, 200);
  t.equal(exported.body.certificate_chain, (await call('POST', `${CA}/${rootId}/export`)).body.certificate);
  const listed = await call('GET', `${CA}?limit=1000`);
  t.notOk(listed.body.certificate_authorities.some((ca: Json) => ca.ca_id === id));
  assertError(t, await call('POST', `${CA}/${id}/disable`), 400, 'PCA.00020001', /CSR/);
  assertError(
    t,
    await call('POST', CA, {
      type: 'SUBORDINATE',
      issuer_id: id,
      distinguished_name: DN,
      key_algorithm: 'EC256',
      signature_algorithm: 'SHA256',
      validity: { type: 'DAY', value: 1 },
    }),
    400,
    'PCA.00020001',
    /key/,
  );
});

t.test('list: filters, sorting both ways with ties by id, paging with total, limit=0', async (t) => {
  const domain = 'list00000000000000000000000000001';
  const names = ['Bravo', 'alpha', 'Charlie'];
  const roots: string[] = [];
  for (const name of names)
    roots.push(
      await api.root(
        { distinguished_name: { ...DN, common_name: name }, validity: { type: 'YEAR', value: names.indexOf(name) + 1 } },
        domain,
      ),
    );
  const sub = await api.subordinate(
    roots[0],
    { distinguished_name: { ...DN, common_name: 'delta-sub' }, validity: { type: 'DAY', value: 30 } },
    domain,
  );
  await call('POST', `${CA}/${sub}/disable`, undefined, domain);
  const list = (query: string) => call('GET', `${CA}?${query}`, undefined, domain).then((r) => r.body);
  const namesOf = (body: Json) => body.certificate_authorities.map((ca: Json) => ca.distinguished_name.common_name);

  t.same(namesOf(await list('')), ['delta-sub', 'Charlie', 'alpha', 'Bravo'], 'newest first by default');
  t.same(
    namesOf(await list('sort_key=common_name&sort_dir=ASC')),
    ['alpha', 'Bravo', 'Charlie', 'delta-sub'].sort(),
    'common_name ascending',
  );
  t.same(namesOf(await list('sort_key=not_after&sort_dir=ASC')), ['delta-sub', 'Bravo', 'alpha', 'Charlie']);
  const byType = namesOf(await list('sort_key=ca_type&sort_dir=DESC'));
  t.equal(byType[0], 'delta-sub', 'SUBORDINATE sorts after ROOT, first when descending');
  t.same(namesOf(await list('type=SUBORDINATE')), ['delta-sub']);
  t.same(namesOf(await list('status=DISABLED')), ['delta-sub']);
  t.same((await list('status=ACTIVED')).total, 3);
  t.same(namesOf(await list('name=ALPH')), ['alpha'], 'name is a case-insensitive substring');
  t.same(namesOf(await list('name=%25')), [], "'%' is a character, not LIKE's wildcard");
  t.same(namesOf(await list('name=_')), [], "nor '_'");
  t.same(namesOf(await list('name=%5C')), [], 'nor a backslash an escape');
  const page = await list('limit=2&offset=1&sort_key=create_time&sort_dir=ASC');
  t.equal(page.total, 4);
  t.same(namesOf(page), ['alpha', 'Charlie']);
  const none = await list('limit=0');
  t.same(none, { total: 4, certificate_authorities: [] });
  assertError(t, await call('GET', `${CA}?status=GONE`), 400, 'PCA.00020001');
  assertError(t, await call('GET', `${CA}?limit=1001`), 400, 'PCA.00020001');
  assertError(t, await call('GET', `${CA}?sort_key=serial`), 400, 'PCA.00020001');

  // Ties on the sort key break by id, in the sort direction.
  await prisma.certificateAuthority.updateMany({ where: { id: { in: roots } }, data: { createdAt: new Date(1_700_000_000_000) } });
  const tiedAsc = (await list('type=ROOT&sort_dir=ASC')).certificate_authorities.map((ca: Json) => ca.ca_id);
  const tiedDesc = (await list('type=ROOT&sort_dir=DESC')).certificate_authorities.map((ca: Json) => ca.ca_id);
  t.same(tiedAsc, [...roots].sort());
  t.same(tiedDesc, [...roots].sort().reverse());
});

t.test('quota: counts every unremoved CA; refuses creation and orders beyond it', async (t) => {
  const product = {
    cloud_service_type: 'hws.service.type.ccm',
    resource_type: 'hws.resource.type.pca.duration',
    resource_spec_code: 'ca.duration',
  };
  const order = (n: number) => ({
    cloud_service_type: 'hws.service.type.ccm',
    charging_mode: 0,
    period_type: 2,
    period_num: 1,
    is_auto_renew: 0,
    subscription_num: n,
    product_infos: [product],
  });
  assertError(t, await call('POST', `${CA}/order`, order(61), QUOTA_DOMAIN), 400, 'PCA.00020001', /quota/);
  t.equal((await call('POST', `${CA}/order`, order(60), QUOTA_DOMAIN)).status, 200);
  t.same((await call('GET', `${CA}/quotas`, undefined, QUOTA_DOMAIN)).body, {
    quotas: { resources: [{ type: 'CERTIFICATE_AUTHORITY', used: 60, quota: 60 }] },
  });
  assertError(
    t,
    await call(
      'POST',
      CA,
      { type: 'ROOT', distinguished_name: DN, key_algorithm: 'EC256', signature_algorithm: 'SHA256', validity: { type: 'YEAR', value: 1 } },
      QUOTA_DOMAIN,
    ),
    400,
    'PCA.00020001',
    /quota/,
  );
});

t.test('the §4.5 fixed endpoints', async (t) => {
  t.same((await call('GET', `${CA}/obs/agencies`)).body, { agency_granted: 'true' });
  t.same((await call('GET', `${CA}/agency`)).body, { agency_granted: 'true' });
  const agency = (await call('POST', `${CA}/obs/agencies`)).body.agency_id;
  t.match(agency, /^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/);
  t.equal((await call('POST', `${CA}/agencies`)).body.agency_id, agency, 'fixed per domain');
  t.not((await call('POST', `${CA}/agencies`, undefined, OTHER_DOMAIN)).body.agency_id, agency);
  t.same((await call('GET', `${CA}/obs/buckets`)).body, { total: 0, obs_buckets: [] });
});

t.test('syntax before existence (§2): a malformed body gets its 400 even when the id names nothing', async (t) => {
  const missing = randomUUID();
  const cases: [string, string, object, number, string][] = [
    ['export type', `/v1/private-certificates/${missing}/export`, { type: 'FOO' }, 400, 'PCA.00020001'],
    ['export password', `/v1/private-certificates/${missing}/export`, { password: 'with space' }, 400, 'PCA.00020001'],
    ['activate issuer_id', `${CA}/${missing}/activate`, { issuer_id: 'bad' }, 400, 'PCA.00020201'],
    ['a well-formed body', `/v1/private-certificates/${missing}/export`, { type: 'OTHER' }, 404, 'PCA.10010002'],
  ];
  for (const [what, url, body, status, code] of cases) {
    await t.test(what, async (t) => assertError(t, await call('POST', url, body), status, code));
  }
});

t.test('actions: a credential without the action gets 403 before any existence check', async (t) => {
  const response = await harness.app.inject({
    method: 'POST',
    url: `${CA}/${randomUUID()}/disable`,
    headers: { authorization: `Bearer ${harness.tokenWith(['pca:ca:get'])}` },
  });
  t.equal(response.statusCode, 403);
  t.equal(response.json().error_code, 'PCA.00010003');
  const list = await harness.app.inject({
    method: 'GET',
    url: CA,
    headers: { authorization: `Bearer ${harness.tokenWith(['pca:ca:list'])}` },
  });
  t.equal(list.statusCode, 200);
});

t.test('GET /ca/{ca_id}.crt: public DER, URN accepted, 404 JSON for PENDING, removed or unknown', async (t) => {
  const response = await harness.app.inject({ method: 'GET', url: `/ca/${rootId}.crt` });
  t.equal(response.statusCode, 200);
  t.equal(response.headers['content-type'], 'application/pkix-cert');
  const files = await opensslDir(t);
  const parsed = await runOpenssl([
    'x509',
    '-inform',
    'DER',
    '-noout',
    '-subject',
    '-in',
    await files.write('ca.der', response.rawPayload),
  ]);
  t.match(parsed.output, /CN\s*=\s*asm/);
  const urn = await harness.app.inject({ method: 'GET', url: `/ca/pca:cn-north-4:${harness.config.defaultDomainId}:ca:${rootId}.crt` });
  t.same(urn.rawPayload, response.rawPayload);
  const wrongDomain = await harness.app.inject({ method: 'GET', url: `/ca/pca:cn-north-4:${OTHER_DOMAIN}:ca:${rootId}.crt` });
  t.equal(wrongDomain.statusCode, 404);
  const pending = (await call('POST', CA, { type: 'SUBORDINATE', distinguished_name: DN, key_algorithm: 'EC256' })).body.ca_id;
  for (const url of [`/ca/${pending}.crt`, `/ca/${randomUUID()}.crt`, `/ca/${rootId}.pem`, '/ca/nonsense.crt']) {
    const missing = await harness.app.inject({ method: 'GET', url });
    t.equal(missing.statusCode, 404, url);
    t.equal(missing.json().error_code, 'PCA.10010002');
  }
});

t.test('every state change leaves an audit event in its transaction', async (t) => {
  const events = await prisma.auditEvent.findMany({ where: { resourceId: rootId } });
  t.ok(events.some((event) => event.action === 'pca:ca:create' && event.outcome === 'SUCCESS'));
});

t.test("what Huawei's Go SDK sends for unset fields: a ROOT activation's issuer_id \"\", a deletion's bare ?pending_days", async (t) => {
  const ordered = await call('POST', `${CA}/order`, TWO_YEARLY_CAS);
  const activation = (issuerId: string, name: string) => ({
    type: 'ROOT',
    issuer_id: issuerId,
    distinguished_name: { ...DN, common_name: name },
    key_algorithm: 'EC256',
    signature_algorithm: 'SHA256',
    validity: { type: 'YEAR', value: 1 },
  });
  const [empty, other] = ordered.body.ca_ids as string[];
  t.equal((await call('POST', `${CA}/${empty}/activate`, activation('', 'go-root'))).status, 204, 'issuer_id "" is no issuer');
  t.equal((await call('POST', `${CA}/${other}/activate`, activation('abc', 'go-root-2'))).status, 204, 'a ROOT ignores issuer_id');
  t.match(await api.show(empty), { status: 'ACTIVED', type: 'ROOT', issuer_id: null });

  for (const query of ['?pending_days', '?pending_days=']) {
    const ca = await api.root({ distinguished_name: { ...DN, common_name: `go-delete ${query.length}` } });
    await call('POST', `${CA}/${ca}/disable`);
    t.equal((await call('DELETE', `${CA}/${ca}${query}`)).status, 204, query);
    t.ok(Math.abs((await api.show(ca)).delete_time - (Date.now() + 7 * 86_400_000)) < 60_000, `${query}: the default 7 days`);
  }
});

t.test(
  'fields Huawei reserves are taken and ignored, null too: hsm_cluster_info, subject_alternative_names of a CSR issuance',
  async (t) => {
    for (const hsm of [{ cluster_id: 'c-1' }, null]) {
      const id = await api.root({ distinguished_name: { ...DN, common_name: 'hsm-ignored' }, hsm_cluster_info: hsm });
      t.match(await api.show(id), { status: 'ACTIVED', cluster_id: null }, JSON.stringify(hsm));
    }
    const dir = await scratch('reserved');
    const reqArgs = ['-subj', '/CN=sans-from-csr.example.com', '-addext', 'subjectAltName=DNS:from-csr.example.com'];
    const { csr } = await opensslCsr(dir, 'reserved', [...KEY_ARGS.p256], reqArgs);
    for (const sans of [[{ type: 'DNS', value: 'ignored.example.com' }], null]) {
      const issued = await call('POST', '/v1/private-certificates/csr', {
        issuer_id: rootId,
        csr,
        validity: { type: 'DAY', value: 1 },
        subject_alternative_names: sans,
      });
      t.equal(issued.status, 200, JSON.stringify(sans));
      const exported = await call('POST', `/v1/private-certificates/${issued.body.certificate_id}/export`, { is_compressed: 'false' });
      await dir.write('issued.pem', exported.body.certificate);
      const text = await openssl(['x509', '-in', dir.file('issued.pem'), '-noout', '-ext', 'subjectAltName']);
      t.match(text.stdout, /DNS:from-csr\.example\.com/, 'the CSR says the SANs');
      t.notMatch(text.stdout, /ignored/);
    }
  },
);
