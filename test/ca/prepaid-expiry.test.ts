/**
 * Expiry of a yearly/monthly CA (issue 21, item 7) with a hand-moved clock, one second either side of each edge:
 * during the 15-day grace period after `prepaid_expire_time` it still issues; then it is frozen for the 15-day
 * retention period (freeze_flag 1, issuance refused with 403 PCA.00030202, its CRL still served and judged by
 * openssl, revocation still possible); then it is deleted (404 everywhere, the CRL too) and the deletion job disables
 * its subordinate.
 */
import t from 'tap';
import { ManualClock } from '../../src/clock.ts';
import { runOpenssl } from '../x509/fixtures/openssl-pki.ts';
import { createTestApp } from '../helpers/app.ts';
import { CA, DN, MONTHLY_ORDER, assertError, client, opensslDir } from './support.ts';

const DAY = 86_400_000;
const clock = new ManualClock(Date.parse('2026-06-10T08:00:00Z'));
const harness = await createTestApp({ clock });
t.teardown(() => harness.close());
const api = client(harness);
const { call } = api;

const order = await call('POST', `${CA}/order`, MONTHLY_ORDER);
const caId = order.body.ca_ids[0] as string;
const configured = await call('POST', CA, {
  type: 'ROOT',
  ca_id: caId,
  distinguished_name: { ...DN, common_name: 'prepaid-expiry' },
  key_algorithm: 'EC256',
  signature_algorithm: 'SHA256',
  validity: { type: 'YEAR', value: 2 },
});
if (configured.status !== 200) throw new Error(`configure failed: ${JSON.stringify(configured.body)}`);
await call('POST', `${CA}/${caId}/crl/enable`, { crl_name: 'prepaid', valid_days: 7 });
const expiry = (await api.show(caId)).prepaid_expire_time as number;
const subordinate = await api.subordinate(caId, {
  distinguished_name: { ...DN, common_name: 'under-prepaid' },
  validity: { type: 'DAY', value: 90 },
});

const issue = () =>
  call('POST', '/v1/private-certificates', {
    issuer_id: caId,
    key_algorithm: 'EC256',
    signature_algorithm: 'SHA256',
    distinguished_name: { common_name: 'leaf' },
    validity: { type: 'DAY', value: 60 },
  });

t.test('a month bought at 06-10 08:00 ends on 07-10 08:00', async (t) => {
  t.equal(new Date(expiry).toISOString(), '2026-07-10T08:00:00.000Z');
});

t.test('one second before expiry and at it: in period, then grace: issuing works, not frozen', async (t) => {
  for (const [label, at, daysLeft] of [
    ['1 s before expiry', expiry - 1000, 1],
    ['at expiry (grace starts)', expiry, 0],
    ['1 s before grace ends', expiry + 15 * DAY - 1000, 0],
  ] as const) {
    clock.set(at);
    t.match(await api.show(caId), { status: 'ACTIVED', freeze_flag: 0, prepaid_days_left: daysLeft }, label);
    t.equal((await issue()).status, 200, `${label}: issues`);
  }
});

t.test('when grace ends: frozen; issuance 403 PCA.00030202; CRL still served and signed; revocation still possible', async (t) => {
  clock.set(expiry - 1000);
  const leaf = (await issue()).body.certificate_id as string;
  clock.set(expiry + 15 * DAY);
  t.match(await api.show(caId), { status: 'ACTIVED', freeze_flag: 1 });
  assertError(t, await issue(), 403, 'PCA.00030202', /frozen/);
  t.equal(
    (await call('POST', `/v1/private-certificates/${leaf}/revoke`, { reason: 'KEY_COMPROMISE' })).status,
    204,
    'a frozen CA can still revoke',
  );
  const crl = await harness.app.inject({ method: 'GET', url: `/crl/${caId}.crl` });
  t.equal(crl.statusCode, 200);
  const dir = await opensslDir(t);
  const crlFile = await dir.write('ca.crl', crl.rawPayload);
  const caFile = await dir.write('ca.pem', (await call('POST', `${CA}/${caId}/export`)).body.certificate as string);
  const checked = await runOpenssl(['crl', '-inform', 'DER', '-in', crlFile, '-CAfile', caFile, '-noout', '-text']);
  t.match(checked.output, /verify OK/, 'the CRL verifies against the CA');
  t.match(checked.output, /Serial Number/, 'and lists the revocation made while frozen');
  clock.set(expiry + 30 * DAY - 1000);
  t.match(await api.show(caId), { freeze_flag: 1 }, '1 s before retention ends: still there, frozen');
});

t.test('when retention ends: deleted, 404 on every call and on its CRL', async (t) => {
  clock.set(expiry + 30 * DAY);
  const shown = await call('GET', `${CA}/${caId}`);
  t.equal(shown.status, 404);
  t.equal(
    (await call('GET', CA)).body.certificate_authorities.some((ca: { ca_id: string }) => ca.ca_id === caId),
    false,
    'not listed',
  );
  assertError(t, await issue(), 404, 'PCA.10010002');
  t.equal((await harness.app.inject({ method: 'GET', url: `/crl/${caId}.crl` })).statusCode, 404);
});

t.test('its release disables its subordinate, which cannot be enabled again under it', async (t) => {
  t.equal((await api.show(subordinate)).status, 'ACTIVED', 'before the deletion job runs');
  t.match(await harness.app.jobRunner.runOnce('ca-deletion'), { removed: 1 });
  t.equal((await api.show(subordinate)).status, 'DISABLED');
  t.match(await harness.database.prisma.auditEvent.findMany({ where: { resourceId: subordinate, action: 'pca:ca:disable' } }), [
    { detail: { reason: `issuer ${caId} released: prepaid retention period ended` } },
  ]);
  assertError(t, await call('POST', `${CA}/${subordinate}/enable`), 400, 'PCA.00020001', /issuing CA .* no longer exists/);
});
