/**
 * The OpenAPI document is usable: a client generated from it (openapi-typescript types + openapi-fetch)
 * drives a started server through a cert-manager-style journey, and openssl checks what comes back.
 */
import createClient from 'openapi-fetch';
import t from 'tap';
import type { paths } from '../../openapi/pca-api.d.ts';
import { KEY_ARGS, opensslCsr, pemBlocks, scratch, verifyStrict } from '../certificates/support.ts';
import { createTestApp } from '../helpers/app.ts';

const harness = await createTestApp();
t.teardown(() => harness.close());
const baseUrl = await harness.app.listen({ host: '127.0.0.1', port: 0 });
const client = createClient<paths>({ baseUrl, headers: { authorization: `Bearer ${harness.token()}` } });
const dir = await scratch('openapi-client');

const dn = { country: 'CN', state: 'zhejiang', locality: 'hangzhou', organization: 'huawei-cloud', organizational_unit: 'container' };

t.test('a generated client creates a hierarchy, signs a CSR and exports a chain openssl verifies', async (t) => {
  const root = await client.POST('/v1/private-certificate-authorities', {
    body: {
      type: 'ROOT',
      key_algorithm: 'EC256',
      signature_algorithm: 'SHA256',
      distinguished_name: { ...dn, common_name: 'client-root' },
      validity: { type: 'YEAR', value: 1 },
    },
  });
  t.equal(root.response.status, 200, JSON.stringify(root.error));
  const rootId = root.data!.ca_id;

  const sub = await client.POST('/v1/private-certificate-authorities', {
    body: {
      type: 'SUBORDINATE',
      issuer_id: rootId,
      key_algorithm: 'EC256',
      signature_algorithm: 'SHA256',
      path_length: 0,
      distinguished_name: { ...dn, common_name: 'client-sub' },
      validity: { type: 'MONTH', value: 6 },
    },
  });
  t.equal(sub.response.status, 200, JSON.stringify(sub.error));
  const subId = sub.data!.ca_id;

  const listed = await client.GET('/v1/private-certificate-authorities', { params: { query: { type: 'SUBORDINATE', limit: 10 } } });
  t.equal(listed.data?.total, 1);
  t.equal(listed.data?.certificate_authorities[0].ca_id, subId);
  t.equal(listed.data?.certificate_authorities[0].status, 'ACTIVED');

  const shown = await client.GET('/v1/private-certificate-authorities/{ca_id}', {
    params: { path: { ca_id: `pca:cn-north-4:${harness.config.defaultDomainId}:ca:${subId}` } },
  });
  t.equal(shown.data?.issuer_id, rootId, 'the URN form of the id works through the client');

  const { csr } = await opensslCsr(
    dir,
    'client-leaf',
    [...KEY_ARGS.p256],
    ['-subj', '/CN=client-leaf', '-addext', 'subjectAltName=DNS:client.example.com'],
  );
  const issued = await client.POST('/v1/private-certificates/csr', {
    body: { issuer_id: subId, csr, validity: { type: 'DAY', value: 30 } },
    headers: { 'Idempotency-Key': 'client-journey-1' },
  });
  t.equal(issued.response.status, 200, JSON.stringify(issued.error));
  const certificateId = issued.data!.certificate_id;

  const exported = await client.POST('/v1/private-certificates/{certificate_id}/export', {
    params: { path: { certificate_id: certificateId } },
    body: { is_compressed: 'false', type: 'OTHER' },
  });
  t.equal(exported.response.status, 200, JSON.stringify(exported.error));
  const body = exported.data as { certificate: string; certificate_chain: string; private_key: string | null };
  t.equal(body.private_key, null, 'a CSR-issued certificate exports no key');
  const chain = pemBlocks(body.certificate_chain);
  t.equal(chain.length, 2, 'issuing CA then root');
  const verified = await verifyStrict(dir, body.certificate, chain[1], [chain[0]]);
  t.ok(verified.ok, verified.stdout + verified.stderr);

  const missing = await client.GET('/v1/private-certificates/{certificate_id}', {
    params: { path: { certificate_id: '00000000-0000-4000-8000-000000000000' } },
  });
  t.equal(missing.response.status, 404);
  t.equal(missing.error?.error_code, 'PCA.10010002', 'errors arrive typed as the contract body');
});
