/**
 * Request fields of revocation and CRL settings: a refused revoke reason lists the reasons §4.4.6 allows (CA and
 * certificate revoke alike), and an empty obs_bucket_name (§4.2.10, §5.4: "Value or null") is no bucket: stored and
 * echoed as null, at CRL enable and in a create's crl_configuration.
 */
import t from 'tap';
import { createTestApp } from '../helpers/app.ts';
import { CA, DN, assertError, client } from '../ca/support.ts';
import { REVOKE_REASONS } from './support.ts';

const CERT = '/v1/private-certificates';
const harness = await createTestApp();
t.teardown(() => harness.close());
const api = client(harness);
const { call } = api;
const root = await api.root({ distinguished_name: { ...DN, common_name: 'fields-root' } });
const sub = await api.subordinate(root, { distinguished_name: { ...DN, common_name: 'fields-sub' } });

t.test('a refused revoke reason names the field and every reason of §4.4.6', async (t) => {
  const listed = new RegExp(`^reason must be one of ${REVOKE_REASONS.join(', ')}$`);
  // Validation precedes the lookup: the certificate need not exist.
  const certificate = '0a1b2c3d-4e5f-4a7b-8c9d-0e1f2a3b4c5d';
  for (const reason of ['BOGUS', 'key_compromise', 'REMOVE_FROM_CRL', '']) {
    assertError(t, await call('POST', `${CERT}/${certificate}/revoke`, { reason }), 400, 'PCA.00020001', listed);
    assertError(t, await call('POST', `${CA}/${sub}/revoke`, { reason }), 400, 'PCA.00020001', listed);
  }
  assertError(t, await call('POST', `${CA}/${sub}/revoke`, { reason: 1 }), 400, 'PCA.00020001', /^reason must be string$/);
  t.equal((await api.show(sub)).status, 'ACTIVED', 'the refused revokes changed nothing');
  t.equal((await call('POST', `${CA}/${sub}/revoke`, { reason: 'SUPERSEDED' })).status, 204, 'a listed reason is taken');
});

t.test('obs_bucket_name "" is no bucket: null in the CA object, as when left out', async (t) => {
  const crl = async (id: string) => (await api.show(id)).crl_configuration;
  const ca = await api.root({ distinguished_name: { ...DN, common_name: 'fields-crl' } });
  t.equal((await call('POST', `${CA}/${ca}/crl/enable`, { valid_days: 7, obs_bucket_name: 'bucket' })).status, 204);
  t.equal((await crl(ca)).obs_bucket_name, 'bucket');
  t.equal((await call('POST', `${CA}/${ca}/crl/enable`, { valid_days: 8, obs_bucket_name: '' })).status, 204);
  t.match(await crl(ca), { enabled: true, valid_days: 8, obs_bucket_name: null }, 'enable with "" clears it');
  t.equal((await call('POST', `${CA}/${ca}/crl/enable`, { valid_days: 7, obs_bucket_name: null })).status, 204);
  t.equal((await crl(ca)).obs_bucket_name, null, 'null as before');

  const created = await api.root({
    distinguished_name: { ...DN, common_name: 'fields-created' },
    crl_configuration: { enabled: true, valid_days: 7, obs_bucket_name: '' },
  });
  t.match(await crl(created), { enabled: true, valid_days: 7, obs_bucket_name: null }, 'create with "" stores null');
  const named = await api.root({
    distinguished_name: { ...DN, common_name: 'fields-named' },
    crl_configuration: { enabled: true, valid_days: 7, obs_bucket_name: 'tenant-crls' },
  });
  t.equal((await crl(named)).obs_bucket_name, 'tenant-crls', 'a name is kept');
  const pending = await api.subordinate(root, { distinguished_name: { ...DN, common_name: 'fields-pending' }, validity: undefined });
  const activated = await call('POST', `${CA}/${pending}/activate`, {
    issuer_id: root,
    signature_algorithm: 'SHA256',
    validity: { type: 'DAY', value: 30 },
    crl_configuration: { enabled: true, valid_days: 7, obs_bucket_name: '' },
  });
  t.equal(activated.status, 204, JSON.stringify(activated.body));
  t.match(await crl(pending), { enabled: true, obs_bucket_name: null }, 'activate with "" stores null');
});
