/**
 * Scenario 1 steps 1-2 and Scenario 4 of docs/scenarios.md against a STARTED server, driven with fetch and
 * judged by openssl (certificates fetched over the public AIA URL too).
 */
import t from 'tap';
import { createTestApp } from '../helpers/app.ts';
import { runOpenssl } from '../x509/fixtures/openssl-pki.ts';
import { CA, DN, opensslDir, opensslText, verifyWithChain, type Json } from './support.ts';

const harness = await createTestApp();
t.teardown(() => harness.close());
const base = await harness.app.listen({ host: '127.0.0.1', port: 0 });
const CONSOLE_DOMAIN = 'console0000000000000000000000001';
let domain = harness.config.defaultDomainId;

async function http(method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }> {
  const headers = { ...harness.auth(domain), 'content-type': 'application/json' };
  const response = await fetch(`${base}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await response.text();
  t.ok(response.headers.get('x-request-id'), `${method} ${path} has X-Request-Id`);
  return { status: response.status, body: text ? (JSON.parse(text) as Json) : {} };
}

t.test('Scenario 1, steps 1-2: a mesh root and its subordinate with path length 1', async (t) => {
  const root = await http('POST', CA, {
    type: 'ROOT',
    distinguished_name: DN,
    key_algorithm: 'RSA2048',
    signature_algorithm: 'SHA256',
    validity: { type: 'YEAR', value: 1 },
  });
  t.equal(root.status, 200);
  const rootId = root.body.ca_id;
  const rootCa = (await http('GET', `${CA}/${rootId}`)).body;
  t.match(rootCa, { status: 'ACTIVED', type: 'ROOT', path_length: 7, key_algorithm: 'RSA2048', distinguished_name: DN });

  const sub = await http('POST', CA, {
    type: 'SUBORDINATE',
    issuer_id: rootCa.urn,
    distinguished_name: { ...DN, common_name: 'asm-subordinate-ca' },
    key_algorithm: 'RSA2048',
    signature_algorithm: 'SHA256',
    validity: { type: 'MONTH', value: 11 },
    path_length: 1,
  });
  t.equal(sub.status, 200);
  const subCa = (await http('GET', `${CA}/${sub.body.ca_id}`)).body;
  t.match(subCa, { status: 'ACTIVED', type: 'SUBORDINATE', path_length: 1, issuer_id: rootId, issuer_name: 'asm' });

  const exported = (await http('POST', `${CA}/${sub.body.ca_id}/export`)).body;
  await verifyWithChain(t, exported.certificate, exported.certificate_chain, 'asm-subordinate-ca');
  const text = await opensslText(t, exported.certificate);
  t.match(text, /CA:TRUE, pathlen:1/, 'may sign exactly one more CA level (the mesh intermediate)');

  // The AIA caIssuers URL written into the subordinate serves the root, in DER.
  const aia = text.match(/CA Issuers - URI:(\S+)/)?.[1];
  t.equal(aia, `${harness.config.publicBaseUrl}/ca/${rootId}.crt`);
  const fetched = await fetch(`${base}/ca/${rootId}.crt`);
  t.equal(fetched.headers.get('content-type'), 'application/pkix-cert');
  const files = await opensslDir(t);
  const der = await files.write('root.der', new Uint8Array(await fetched.arrayBuffer()));
  const fromAia = await runOpenssl(['x509', '-inform', 'DER', '-in', der]);
  t.equal(fromAia.output.replace(/\s+/g, ''), exported.certificate_chain.replace(/\s+/g, ''), 'the AIA target is the exported root');
});

t.test('Scenario 4: a console lists, exports, disables, enables, deletes and restores', async (t) => {
  domain = CONSOLE_DOMAIN;
  const root = (
    await http('POST', CA, {
      type: 'ROOT',
      distinguished_name: { ...DN, common_name: 'console-root' },
      key_algorithm: 'EC256',
      signature_algorithm: 'SHA256',
      validity: { type: 'YEAR', value: 2 },
    })
  ).body.ca_id;
  const sub = (
    await http('POST', CA, {
      type: 'SUBORDINATE',
      issuer_id: root,
      distinguished_name: { ...DN, common_name: 'console-sub' },
      key_algorithm: 'EC256',
      signature_algorithm: 'SHA256',
      validity: { type: 'YEAR', value: 1 },
    })
  ).body.ca_id;
  const pending = (
    await http('POST', CA, { type: 'SUBORDINATE', distinguished_name: { ...DN, common_name: 'console-pending' }, key_algorithm: 'EC256' })
  ).body.ca_id;
  const product = {
    cloud_service_type: 'hws.service.type.ccm',
    resource_type: 'hws.resource.type.pca.duration',
    resource_spec_code: 'ca.duration',
  };
  const prepaid = (
    await http('POST', `${CA}/order`, {
      cloud_service_type: 'hws.service.type.ccm',
      charging_mode: 0,
      period_type: 2,
      period_num: 3,
      is_auto_renew: 0,
      subscription_num: 1,
      product_infos: [product],
    })
  ).body.ca_ids[0];

  // One call per page gives every column a console shows.
  const page = await http('GET', `${CA}?limit=10&offset=0&sort_key=create_time&sort_dir=DESC`);
  t.equal(page.body.total, 4);
  const row = page.body.certificate_authorities.find((ca: Json) => ca.ca_id === sub);
  t.match(row, {
    distinguished_name: { common_name: 'console-sub', organization: 'huawei-cloud' },
    ca_id: sub,
    status: 'ACTIVED',
    type: 'SUBORDINATE',
    key_algorithm: 'EC256',
    issuer_id: root,
    issuer_name: 'console-root',
    charging_mode: 1,
  });
  t.type(row.not_after, 'number');
  t.type(row.create_time, 'number', 'pay-per-use, created on ...');
  const prepaidRow = page.body.certificate_authorities.find((ca: Json) => ca.ca_id === prepaid);
  t.match(prepaidRow, { status: 'PENDING', charging_mode: 0 });
  t.same(
    page.body.certificate_authorities.map((ca: Json) => ca.ca_id),
    [prepaid, pending, sub, root],
    'newest first',
  );
  t.same(
    (await http('GET', `${CA}?status=PENDING&type=SUBORDINATE`)).body.certificate_authorities.map((ca: Json) => ca.ca_id),
    [pending],
  );
  t.same((await http('GET', `${CA}?name=CONSOLE-S&limit=1`)).body.total, 1);

  const exported = (await http('POST', `${CA}/${sub}/export`)).body;
  await verifyWithChain(t, exported.certificate, exported.certificate_chain, 'console export');

  t.equal((await http('POST', `${CA}/${sub}/disable`)).status, 204);
  t.same(
    (await http('GET', `${CA}?status=DISABLED`)).body.certificate_authorities.map((ca: Json) => ca.ca_id),
    [sub],
  );
  t.equal((await http('POST', `${CA}/${sub}/enable`)).status, 204);
  t.equal((await http('POST', `${CA}/${sub}/disable`)).status, 204);
  t.equal((await http('DELETE', `${CA}/${sub}?pending_days=14`)).status, 204);
  const deleted = (await http('GET', `${CA}?status=DELETED`)).body.certificate_authorities;
  t.equal(deleted.length, 1);
  t.ok(deleted[0].delete_time > Date.now() + 13 * 86_400_000, 'the console shows when removal happens');
  t.equal((await http('POST', `${CA}/${sub}/restore`)).status, 204);
  t.equal((await http('GET', `${CA}/${sub}`)).body.status, 'DISABLED');
  t.equal((await http('DELETE', `${CA}/${pending}`)).status, 204);
  t.equal((await http('GET', `${CA}/${pending}`)).status, 404, 'a PENDING CA goes at once');
});
