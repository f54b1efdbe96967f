/**
 * Every CCM PCA operation of Huawei's SDKs, sent as their request models send it (issue #14): the field names and
 * every enum value their model docstrings name (huaweicloud-sdk-go-v3 and -nodejs-v3, `services/ccm/v1/model/`;
 * the table is in docs/contract-notes.md), each request signed by `@huaweicloud/huaweicloud-sdk-core`'s
 * HcClient with an access key pair, against a started server. The shapes those models allow are sent too:
 * `customized_extension` with one member, `tags: []`, `values: null` in tag filters, an empty `name=`, and a ROOT
 * `path_length` above 6.
 */
import t, { type Test } from 'tap';
import { GlobalCredentials } from '@huaweicloud/huaweicloud-sdk-core/auth/GlobalCredentials.js';
import { HcClient } from '@huaweicloud/huaweicloud-sdk-core/HcClient.js';
import { DefaultHttpClient } from '@huaweicloud/huaweicloud-sdk-core/http/DefaultHttpClient.js';
import { createTestApp } from '../helpers/app.ts';
import { KEY_ARGS, certificateText, openssl, opensslCsr, scratch } from '../certificates/support.ts';
import { sdkError } from '../auth/support.ts';
import { REVOKE_REASONS } from '../revocation/support.ts';

type Json = Record<string, any>;

/** The values the SDK models' docstrings name, per field (facts from the models, no SDK code). */
const SDK = {
  caStatus: ['PENDING', 'ACTIVED', 'DISABLED', 'DELETED', 'EXPIRED'],
  caType: ['ROOT', 'SUBORDINATE'],
  /** `type` in the SDK models and current API pages; `ca_type` in older API pages: both accepted. */
  caSortKey: ['create_time', 'common_name', 'type', 'not_after', 'ca_type'],
  sortDir: ['DESC', 'ASC'],
  certStatus: ['ISSUED', 'REVOKED', 'EXPIRED'],
  certSortKey: ['create_time', 'common_name', 'issuer_name', 'not_after'],
  keyAlgorithm: ['RSA2048', 'RSA4096', 'EC256', 'EC384'],
  signatureAlgorithm: ['SHA256', 'SHA384', 'SHA512'],
  keyUsages: [
    'digitalSignature',
    'nonRepudiation',
    'keyEncipherment',
    'dataEncipherment',
    'keyAgreement',
    'keyCertSign',
    'cRLSign',
    'encipherOnly',
    'decipherOnly',
  ],
  validityType: { YEAR: 1, MONTH: 2, DAY: 30, HOUR: 48 } as Record<string, number>,
  certificateType: ['ENTITY_CERT', 'INTERMEDIATE_CA'],
  sanType: { DNS: 'svc.example.com', IP: '10.0.0.7', EMAIL: 'ops@example.com', URI: 'spiffe://cluster.local/ns/a/sa/b' } as Record<
    string,
    string
  >,
  ekuFlags: ['server_auth', 'client_auth', 'code_signing', 'email_protection', 'time_stamping', 'smart_card_logon'],
  exportType: ['APACHE', 'NGINX', 'IIS', 'TOMCAT', 'OTHER'],
  stringBoolean: ['true', 'false'],
  revokeReason: REVOKE_REASONS,
  filterLimit: [10, 20, 50],
  enterpriseProjectId: ['0', 'all', '0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d'],
  orderPeriodType: [2, 3],
  orderFlag: [0, 1],
};

/** The 46 operations of the SDK's CcmClient (method and URL template). */
const OPERATIONS = [
  'POST CA',
  'POST CA/order',
  'GET CA',
  'GET CA/{ca_id}',
  'GET CA/quotas',
  'GET CA/{ca_id}/csr',
  'POST CA/{ca_id}/activate',
  'POST CA/{ca_id}/import',
  'POST CA/{ca_id}/export',
  'POST CA/{ca_id}/enable',
  'POST CA/{ca_id}/disable',
  'DELETE CA/{ca_id}',
  'POST CA/{ca_id}/restore',
  'POST CA/{ca_id}/revoke',
  'POST CA/{ca_id}/crl/enable',
  'POST CA/{ca_id}/crl/disable',
  'POST CA/{ca_id}/ocsp/switch',
  'POST CA/{ca_id}/tags',
  'POST CA/{ca_id}/tags/create',
  'DELETE CA/{ca_id}/tags/delete',
  'GET CA/{ca_id}/tags',
  'GET CA/tags',
  'POST CA/resource-instances/filter',
  'POST CA/resource-instances/count',
  'POST CA/agencies',
  'GET CA/agency',
  'POST CA/obs/agencies',
  'GET CA/obs/agencies',
  'GET CA/obs/buckets',
  'GET /v1/pca/config/console',
  'POST CERT',
  'POST CERT/csr',
  'POST CERT/csr/parse',
  'GET CERT',
  'GET CERT/{certificate_id}',
  'GET CERT/quotas',
  'DELETE CERT/{certificate_id}',
  'POST CERT/{certificate_id}/export',
  'POST CERT/{certificate_id}/revoke',
  'POST CERT/{certificate_id}/tags',
  'POST CERT/{certificate_id}/tags/create',
  'DELETE CERT/{certificate_id}/tags/delete',
  'GET CERT/{certificate_id}/tags',
  'GET CERT/tags',
  'POST CERT/resource-instances/filter',
  'POST CERT/resource-instances/count',
];
const PREFIX: Record<string, string> = { CA: '/v1/private-certificate-authorities', CERT: '/v1/private-certificates' };

const harness = await createTestApp();
t.teardown(() => harness.close());
const { app } = harness;
const base = await app.listen({ host: '127.0.0.1', port: 0 });
const dir = await scratch('sdk-models');

const keyResponse = await app.inject({
  method: 'POST',
  url: '/v1/access-keys',
  headers: harness.auth(),
  payload: { description: 'sdk-models' },
});
const { access, secret } = keyResponse.json().credential as { access: string; secret: string };
const client = new HcClient(new DefaultHttpClient({}, [base]))
  .withEndpoints([base])
  .withCredential(new GlobalCredentials().withAk(access).withSk(secret));
const called = new Set<string>();
let callCount = 0;

interface Call {
  pathParams?: Record<string, string>;
  queryParams?: Record<string, unknown>;
  data?: unknown;
}

/** Sends one operation through the SDK client; `operation` is a line of OPERATIONS. Resolves to the parsed body. */
async function sdk(operation: string, call: Call = {}): Promise<Json> {
  if (!OPERATIONS.includes(operation)) throw new Error(`not an SDK operation: ${operation}`);
  called.add(operation);
  const [method, template] = operation.split(' ');
  const url = template.replace(/^(CA|CERT)/, (prefix) => PREFIX[prefix]);
  return (await client.sendRequest({
    method,
    url,
    pathParams: call.pathParams ?? {},
    queryParams: call.queryParams ?? {},
    // The SDK dates signatures to the second, and the replay cache refuses a second identical signed mutation in the
    // same second; the loops below send identical bodies back to back, so each call carries its own signed header.
    headers: { 'x-test-call': String(++callCount) },
    ...(call.data !== undefined && { contentType: 'application/json', data: call.data }),
  } as never)) as Json;
}

const DN = {
  common_name: 'sdk-root',
  country: 'CN',
  state: 'zhejiang',
  locality: 'hangzhou',
  organization: 'example',
  organizational_unit: 'platform',
};
const rootBody = (overrides: Json = {}) => ({
  type: 'ROOT',
  distinguished_name: DN,
  key_algorithm: 'EC256',
  signature_algorithm: 'SHA256',
  validity: { type: 'YEAR', value: 10 },
  ...overrides,
});
const subordinateBody = (issuer_id: string, overrides: Json = {}) =>
  rootBody({ type: 'SUBORDINATE', issuer_id, validity: { type: 'YEAR', value: 1 }, ...overrides });
const root = (await sdk('POST CA', { data: rootBody() })).ca_id as string;
const issuing = (
  await sdk('POST CA', {
    data: subordinateBody(root, {
      distinguished_name: { ...DN, common_name: 'sdk-issuing' },
      path_length: 2,
      validity: { type: 'YEAR', value: 5 },
    }),
  })
).ca_id as string;
const caPath = (id: string) => ({ pathParams: { ca_id: id } });
const certPath = (id: string) => ({ pathParams: { certificate_id: id } });
const issue = async (body: Json = {}) =>
  (
    await sdk('POST CERT', {
      data: { issuer_id: issuing, distinguished_name: { common_name: 'leaf.example.com' }, validity: { type: 'DAY', value: 30 }, ...body },
    })
  ).certificate_id as string;

t.test('CA create and activate: every type, key algorithm, signature algorithm, key usage, validity type and project id', async (t) => {
  const pairs = [
    ...SDK.keyAlgorithm.map((key, i) => [key, SDK.signatureAlgorithm[i % 3]]),
    ...SDK.signatureAlgorithm.map((hash) => ['EC384', hash]),
  ];
  for (const [key_algorithm, signature_algorithm] of pairs) {
    const id = (
      await sdk('POST CA', {
        data: rootBody({
          key_algorithm,
          signature_algorithm,
          distinguished_name: { ...DN, common_name: `root-${key_algorithm}-${signature_algorithm}` },
        }),
      })
    ).ca_id;
    const shown = await sdk('GET CA/{ca_id}', caPath(id));
    t.match(shown, { type: 'ROOT', status: 'ACTIVED', key_algorithm, signature_algorithm }, `ROOT ${key_algorithm} ${signature_algorithm}`);
  }
  for (const [type, value] of Object.entries(SDK.validityType)) {
    const id = (await sdk('POST CA', { data: subordinateBody(root, { validity: { type, value } }) })).ca_id;
    t.equal((await sdk('GET CA/{ca_id}', caPath(id))).type, 'SUBORDINATE', `SUBORDINATE with validity ${type}`);
  }
  for (const enterprise_project_id of SDK.enterpriseProjectId) {
    const id = (await sdk('POST CA', { data: { ...rootBody(), enterprise_project_id } })).ca_id;
    t.equal(
      (await sdk('GET CA/{ca_id}', caPath(id))).enterprise_project_id,
      enterprise_project_id,
      `enterprise_project_id ${enterprise_project_id}`,
    );
  }
  const subordinate = (await sdk('POST CA', { data: subordinateBody(root, { key_usages: SDK.keyUsages, path_length: 1 }) })).ca_id;
  const text = await certificateText(dir, (await sdk('POST CA/{ca_id}/export', caPath(subordinate))).certificate);
  // All nine accepted; an EC key cannot stand behind key or data encipherment (RFC 8813), so those two are left out.
  t.match(
    text,
    /Key Usage: critical\s+Digital Signature, Non Repudiation, Key Agreement, Certificate Sign, CRL Sign, Encipher Only, Decipher Only\n/,
    'the nine key usages an EC key can carry',
  );

  // PENDING subordinate (no issuer_id): CSR export, then activation with the activate model's fields.
  const pending = (
    await sdk('POST CA', {
      data: { type: 'SUBORDINATE', distinguished_name: { ...DN, common_name: 'sdk-pending' }, key_algorithm: 'RSA2048' },
    })
  ).ca_id;
  t.equal((await sdk('GET CA', { queryParams: { status: 'PENDING' } })).total, 1, 'listed as PENDING');
  t.match((await sdk('GET CA/{ca_id}/csr', caPath(pending))).csr, /BEGIN CERTIFICATE REQUEST/);
  await sdk('POST CA/{ca_id}/activate', {
    ...caPath(pending),
    data: {
      issuer_id: root,
      path_length: 0,
      signature_algorithm: 'SHA384',
      validity: { type: 'MONTH', value: 6 },
      key_usages: ['digitalSignature', 'keyCertSign', 'cRLSign'],
      crl_configuration: { enabled: false },
    },
  });
  t.equal((await sdk('GET CA/{ca_id}', caPath(pending))).status, 'ACTIVED', 'activated');
});

t.test('shape: a ROOT path_length above 6 is accepted and ignored (the root reports 7)', async (t) => {
  for (const path_length of [7, 8, 100]) {
    const id = (await sdk('POST CA', { data: rootBody({ path_length }) })).ca_id;
    t.equal((await sdk('GET CA/{ca_id}', caPath(id))).path_length, 7, `ROOT with path_length ${path_length}`);
  }
  const error = await sdkError(sdk('POST CA', { data: subordinateBody(root, { path_length: 7 }) }));
  t.match(error, { httpStatusCode: 400, errorCode: 'PCA.00020203' }, 'a SUBORDINATE path_length above 6 is still refused');
});

t.test('CA list: every status, type, sort_key and sort_dir; an empty name= is no filter', async (t) => {
  const all = (await sdk('GET CA', { queryParams: { limit: 1000 } })).total as number;
  for (const status of SDK.caStatus) t.type((await sdk('GET CA', { queryParams: { status } })).total, 'number', `status=${status}`);
  for (const type of SDK.caType) {
    const listed = await sdk('GET CA', { queryParams: { type, limit: 1000 } });
    t.ok(
      listed.certificate_authorities.every((ca: Json) => ca.type === type),
      `type=${type}`,
    );
  }
  for (const sort_key of SDK.caSortKey) {
    for (const sort_dir of SDK.sortDir) {
      const listed = await sdk('GET CA', { queryParams: { sort_key, sort_dir, limit: 1000, offset: 0 } });
      t.equal(listed.total, all, `sort_key=${sort_key} sort_dir=${sort_dir}`);
      if (sort_key === 'type' || sort_key === 'ca_type') {
        const types = listed.certificate_authorities.map((ca: Json) => ca.type);
        const sorted = [...types].sort();
        t.same(types, sort_dir === 'ASC' ? sorted : sorted.reverse(), `sorted by CA type ${sort_dir}`);
      }
    }
  }
  t.equal((await sdk('GET CA', { queryParams: { name: '', limit: 1000 } })).total, all, 'name= lists everything');
  t.equal((await sdk('GET CA', { queryParams: { name: 'sdk-issuing' } })).total, 1, 'name filters');
});

t.test('certificates: every key algorithm, signature algorithm, SAN type, EKU flag, key usage; customized_extension shapes', async (t) => {
  const pairs = [
    ...SDK.keyAlgorithm.map((key, i) => [key, SDK.signatureAlgorithm[i % 3]]),
    ...SDK.signatureAlgorithm.map((hash) => ['EC256', hash]),
  ];
  for (const [key_algorithm, signature_algorithm] of pairs) {
    const id = await issue({ key_algorithm, signature_algorithm });
    t.match(
      await sdk('GET CERT/{certificate_id}', certPath(id)),
      { key_algorithm, signature_algorithm, status: 'ISSUED' },
      `${key_algorithm} ${signature_algorithm}`,
    );
  }
  for (const [type, value] of Object.entries(SDK.validityType)) {
    t.type(await issue({ validity: { type, value } }), 'string', `validity ${type}`);
  }
  const full = await issue({
    key_usages: SDK.keyUsages.filter((usage) => usage !== 'keyCertSign' && usage !== 'cRLSign'),
    subject_alternative_names: Object.entries(SDK.sanType).map(([type, value]) => ({ type, value })),
    extended_key_usage: Object.fromEntries(SDK.ekuFlags.map((flag) => [flag, true])),
    customized_extension: { object_identifier: '1.3.6.1.4.1.2011.4.99', value: 'sdk' },
    enterprise_project_id: '0',
  });
  const text = await certificateText(
    dir,
    (await sdk('POST CERT/{certificate_id}/export', { ...certPath(full), data: { is_compressed: 'false', type: 'OTHER' } })).certificate,
  );
  t.match(
    text,
    /DNS:svc\.example\.com, IP Address:10\.0\.0\.7, email:ops@example\.com, URI:spiffe:\/\/cluster\.local\/ns\/a\/sa\/b/,
    'every SAN type',
  );
  t.match(
    text,
    /TLS Web Server Authentication, TLS Web Client Authentication, Code Signing, E-mail Protection, Time Stamping, Microsoft Smartcard Login/,
    'every EKU flag',
  );
  t.match(text, /1\.3\.6\.1\.4\.1\.2011\.4\.99:/, 'the customized extension');

  const oidOnly = await issue({ customized_extension: { object_identifier: '1.3.6.1.4.1.2011.4.98' } });
  const oidText = await certificateText(
    dir,
    (await sdk('POST CERT/{certificate_id}/export', { ...certPath(oidOnly), data: { is_compressed: 'false', type: 'OTHER' } })).certificate,
  );
  t.match(oidText, /1\.3\.6\.1\.4\.1\.2011\.4\.98:/, 'object_identifier alone: the extension with an empty value');
  const empty = await issue({ customized_extension: {} });
  const emptyText = await certificateText(
    dir,
    (await sdk('POST CERT/{certificate_id}/export', { ...certPath(empty), data: { is_compressed: 'false', type: 'OTHER' } })).certificate,
  );
  t.notMatch(emptyText, /1\.3\.6\.1\.4\.1\./, 'an empty customized_extension adds nothing');
  const valueOnly = await sdkError(issue({ customized_extension: { value: 'orphan' } }));
  t.match(valueOnly, { httpStatusCode: 400, errorCode: 'PCA.00020001' }, 'a value without object_identifier is refused, not dropped');
  t.match(valueOnly.errorMsg, /customized_extension\.object_identifier/);
});

t.test('create by CSR: both certificate types (the reserved subject_alternative_names sent too), CSR parse', async (t) => {
  const { csr } = await opensslCsr(dir, 'sdk-csr', [...KEY_ARGS.p256], ['-subj', '/CN=csr.example.com']);
  for (const type of SDK.certificateType) {
    const id = (
      await sdk('POST CERT/csr', {
        data: {
          issuer_id: issuing,
          csr,
          validity: { type: 'HOUR', value: 24 },
          type,
          ...(type === 'INTERMEDIATE_CA' && { path_length: 0 }),
          subject_alternative_names: [{ type: 'DNS', value: 'ignored.example.com' }],
          enterprise_project_id: '0',
        },
      })
    ).certificate_id;
    t.type(id, 'string', `type ${type}`);
  }
  t.match(await sdk('POST CERT/csr/parse', { data: { csr } }), {
    key_algorithm: 'EC',
    key_algorithm_length: 256,
    distinguished_name: { common_name: 'csr.example.com' },
  });
});

t.test('export: every type, both is_compressed and is_sm_standard values, with and without a password', async (t) => {
  const id = await issue({ key_algorithm: 'RSA2048' });
  for (const type of SDK.exportType) {
    for (const is_compressed of SDK.stringBoolean) {
      for (const is_sm_standard of SDK.stringBoolean) {
        const response = await sdk('POST CERT/{certificate_id}/export', {
          ...certPath(id),
          data: { is_compressed, type, is_sm_standard, password: type === 'OTHER' ? '' : 'Passw0rd.+-_#' },
        });
        t.ok(response, `type ${type}, is_compressed ${is_compressed}, is_sm_standard ${is_sm_standard}`);
      }
    }
  }
});

t.test('certificate list: every status, sort_key and sort_dir; an empty name= is no filter', async (t) => {
  const all = (await sdk('GET CERT', { queryParams: { limit: 1000 } })).total as number;
  t.ok(all > 0);
  for (const status of SDK.certStatus) t.type((await sdk('GET CERT', { queryParams: { status } })).total, 'number', `status=${status}`);
  for (const sort_key of SDK.certSortKey) {
    for (const sort_dir of SDK.sortDir)
      t.equal(
        (await sdk('GET CERT', { queryParams: { sort_key, sort_dir, limit: 1000 } })).total,
        all,
        `sort_key=${sort_key} sort_dir=${sort_dir}`,
      );
  }
  t.equal((await sdk('GET CERT', { queryParams: { name: '', limit: 1000 } })).total, all, 'name= lists everything');
  t.match(await sdk('GET CERT/quotas'), { quotas: { resources: [{ type: 'CERTIFICATE' }] } });
});

t.test('revoke: every reason, for certificates and a subordinate CA; delete', async (t) => {
  for (const reason of SDK.revokeReason) {
    const id = await issue();
    await sdk('POST CERT/{certificate_id}/revoke', { ...certPath(id), data: { reason } });
    t.equal((await sdk('GET CERT/{certificate_id}', certPath(id))).status, 'REVOKED', `certificate revoked: ${reason}`);
  }
  const unspecified = await issue();
  await sdk('POST CERT/{certificate_id}/revoke', { ...certPath(unspecified), data: {} });
  await sdk('DELETE CERT/{certificate_id}', certPath(unspecified));
  t.match(await sdkError(sdk('GET CERT/{certificate_id}', certPath(unspecified))), { httpStatusCode: 404 }, 'deleted');
  for (const reason of SDK.revokeReason) {
    const sub = (await sdk('POST CA', { data: subordinateBody(root, { distinguished_name: { ...DN, common_name: `revoked-${reason}` } }) }))
      .ca_id;
    await sdk('POST CA/{ca_id}/revoke', { ...caPath(sub), data: { reason } });
    t.equal((await sdk('GET CA/{ca_id}', caPath(sub))).status, 'DISABLED', `subordinate revoked: ${reason}`);
  }
});

t.test('CA lifecycle, CRL and OCSP switches, import, quotas and the fixed endpoints', async (t) => {
  const id = (await sdk('POST CA', { data: subordinateBody(root, { distinguished_name: { ...DN, common_name: 'sdk-lifecycle' } }) })).ca_id;
  await sdk('POST CA/{ca_id}/crl/enable', { ...caPath(id), data: { crl_name: 'sdk-crl', obs_bucket_name: 'bucket', valid_days: 7 } });
  t.equal((await sdk('GET CA/{ca_id}', caPath(id))).crl_configuration.enabled, true, 'CRL enabled');
  await sdk('POST CA/{ca_id}/crl/disable', caPath(id));
  for (const ocsp_switch of [true, false]) await sdk('POST CA/{ca_id}/ocsp/switch', { ...caPath(id), data: { ocsp_switch } });
  await sdk('POST CA/{ca_id}/disable', caPath(id));
  await sdk('POST CA/{ca_id}/enable', caPath(id));
  await sdk('POST CA/{ca_id}/disable', caPath(id));
  // The Go model types pending_days as a string.
  await sdk('DELETE CA/{ca_id}', { ...caPath(id), queryParams: { pending_days: '7' } });
  t.equal((await sdk('GET CA/{ca_id}', caPath(id))).status, 'DELETED');
  await sdk('POST CA/{ca_id}/restore', caPath(id));
  t.equal((await sdk('GET CA/{ca_id}', caPath(id))).status, 'DISABLED', 'restored');

  // Import: a PENDING CA's CSR signed outside, by an openssl root, then imported with its chain.
  const pending = (
    await sdk('POST CA', {
      data: { type: 'SUBORDINATE', distinguished_name: { ...DN, common_name: 'sdk-imported' }, key_algorithm: 'EC256' },
    })
  ).ca_id;
  const { csr } = await sdk('GET CA/{ca_id}/csr', caPath(pending));
  const [rootKey, rootCert, signedCert] = [dir.file('external.key'), dir.file('external.pem'), dir.file('imported.pem')];
  const made = await openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    rootKey,
    '-out',
    rootCert,
    '-subj',
    '/CN=external-root',
    '-days',
    '3650',
  ]);
  t.ok(made.ok, made.stderr);
  const extensions = await dir.write(
    'ca.ext',
    'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,digitalSignature,keyCertSign,cRLSign\n',
  );
  const signed = await openssl([
    'x509',
    '-req',
    '-in',
    await dir.write('pending.csr', csr),
    '-CA',
    rootCert,
    '-CAkey',
    rootKey,
    '-CAcreateserial',
    '-days',
    '365',
    '-sha256',
    '-extfile',
    extensions,
    '-out',
    signedCert,
  ]);
  t.ok(signed.ok, signed.stderr);
  await sdk('POST CA/{ca_id}/import', {
    ...caPath(pending),
    data: { certificate: (await dir.read('imported.pem')).toString(), certificate_chain: (await dir.read('external.pem')).toString() },
  });
  t.match(await sdk('GET CA/{ca_id}', caPath(pending)), { status: 'ACTIVED', gen_mode: 'IMPORT' }, 'imported');

  // Another PENDING CA's CSR is signed by a key this service holds: create-by-CSR refuses to certify it again (the CA
  // is activated instead), in the SDK's error model.
  const second = (
    await sdk('POST CA', {
      data: { type: 'SUBORDINATE', distinguished_name: { ...DN, common_name: 'sdk-second' }, key_algorithm: 'EC256' },
    })
  ).ca_id;
  const secondCsr = (await sdk('GET CA/{ca_id}/csr', caPath(second))).csr;
  const refused = await sdkError(
    sdk('POST CERT/csr', {
      data: { issuer_id: root, csr: secondCsr, type: 'INTERMEDIATE_CA', path_length: 0, validity: { type: 'YEAR', value: 1 } },
    }),
  );
  t.match(refused, { httpStatusCode: 400, errorCode: 'PCA.00020001', errorMsg: /CA key held by this service/ });

  t.match(await sdk('GET CA/quotas'), { quotas: { resources: [{ type: 'CERTIFICATE_AUTHORITY' }] } });
  t.match(await sdk('GET CA/obs/agencies'), { agency_granted: 'true' });
  t.type((await sdk('POST CA/obs/agencies', { data: {} })).agency_id, 'string');
  t.match(await sdk('GET CA/obs/buckets'), { total: 0 });
  t.match(await sdk('GET CA/agency'), { agency_granted: 'true' });
  t.type((await sdk('POST CA/agencies', { data: {} })).agency_id, 'string');
  t.type((await sdk('GET /v1/pca/config/console')).is_support_ocsp, 'boolean');
});

t.test('order: every period_type, is_auto_renew and is_auto_pay value (charging_mode 0)', async (t) => {
  for (const period_type of SDK.orderPeriodType) {
    for (const flag of SDK.orderFlag) {
      const ordered = await sdk('POST CA/order', {
        data: {
          cloud_service_type: 'hws.service.type.ccm',
          charging_mode: 0,
          period_type,
          period_num: 1,
          is_auto_renew: flag,
          subscription_num: 1,
          is_auto_pay: flag,
          enterprise_project_id: '0',
          product_infos: [
            {
              cloud_service_type: 'hws.service.type.ccm',
              resource_type: 'hws.resource.type.pca.duration',
              resource_spec_code: 'ca.duration',
            },
          ],
        },
      });
      t.equal(ordered.ca_ids.length, 1, `period_type ${period_type}, is_auto_renew/is_auto_pay ${flag}`);
    }
  }
});

async function tagOperations(t: Test, kind: 'CA' | 'CERT', id: string): Promise<void> {
  const param = kind === 'CA' ? 'ca_id' : 'certificate_id';
  const on = (data?: unknown) => ({ pathParams: { [param]: id }, ...(data !== undefined && { data }) });
  await sdk(`POST ${kind}/{${param}}/tags`, on({ tag: { key: 'env', value: 'prod' } }));
  await sdk(
    `POST ${kind}/{${param}}/tags/create`,
    on({
      tags: [
        { key: 'team', value: 'mesh' },
        { key: 'tier', value: '' },
      ],
    }),
  );
  await sdk(`POST ${kind}/{${param}}/tags/create`, on({ tags: [] }));
  await sdk(`DELETE ${kind}/{${param}}/tags/delete`, on({ tags: [] }));
  t.same(
    (await sdk(`GET ${kind}/{${param}}/tags`, on())).tags,
    [
      { key: 'env', value: 'prod' },
      { key: 'team', value: 'mesh' },
      { key: 'tier', value: '' },
    ],
    `${kind}: tags: [] adds and removes nothing`,
  );
  await sdk(`DELETE ${kind}/{${param}}/tags/delete`, on({ tags: [{ key: 'tier', value: '' }] }));
  t.match((await sdk(`GET ${kind}/tags`)).tags, [
    { key: 'env', values: ['prod'] },
    { key: 'team', values: ['mesh'] },
  ]);

  const filter = (body: Json) => sdk(`POST ${kind}/resource-instances/filter`, { data: body });
  const count = async (body: Json) => (await sdk(`POST ${kind}/resource-instances/count`, { data: body })).total_count as number;
  for (const limit of SDK.filterLimit)
    t.equal(
      (await filter({ tags: [{ key: 'env', values: ['prod'] }], limit, offset: 0 })).total_count,
      1,
      `${kind}: filter limit ${limit}`,
    );
  t.equal(await count({ tags: [{ key: 'env', values: null }] }), 1, `${kind}: values: null matches any value`);
  t.equal(await count({ tags: [{ key: 'env', values: [] }] }), 1, `${kind}: values: [] matches any value`);
  t.equal(await count({ tags: [{ key: 'env', values: ['staging'] }] }), 0);
  const byName = [{ key: 'resource_name', value: kind === 'CA' ? 'sdk-issuing' : 'leaf.example.com' }];
  const named = await count({ matches: byName });
  t.ok(named > 0);
  t.equal(await count({ tags: [], matches: byName }), named, `${kind}: tags: [] filters nothing`);
  t.match((await filter({ tags: [{ key: 'team', values: null }], matches: [{ key: 'resource_name', value: '' }] })).resources, [
    { resource_id: id, tags: [{ key: 'env' }, { key: 'team' }] },
  ]);
}

t.test('tags and resource instances of CAs and certificates, in every shape the models allow', async (t) => {
  await tagOperations(t, 'CA', issuing);
  await tagOperations(t, 'CERT', await issue());
});

t.test('every operation of the SDK was sent', async (t) => {
  t.same(
    [...OPERATIONS].filter((operation) => !called.has(operation)),
    [],
    'none left out',
  );
  t.equal(called.size, 46);
});
