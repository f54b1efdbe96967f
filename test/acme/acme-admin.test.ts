/**
 * The REST side of ACME (issue #16): the ACME policy resource (PUT/GET, on the CA object, audited, bad documents
 * refused) and External Account Binding keys (only while enabled, shown once, sealed at rest, listed, revoked,
 * tenant-scoped, their own action).
 */
import t from 'tap';
import { createTestApp, OTHER_DOMAIN } from '../helpers/app.ts';
import { CA, assertError, client } from '../ca/support.ts';

const harness = await createTestApp();
t.teardown(() => harness.close());
const api = client(harness);
const caId = await api.root();
const policyUrl = `${CA}/${caId}/acme-policy`;
const eabUrl = `${CA}/${caId}/acme/eab`;

t.test('ACME policy: off by default, PUT/GET normalised, shown on the CA object, audited', async (t) => {
  const off = { enabled: false, allowed_identifiers: null, max_validity_days: null };
  t.same((await api.call('GET', policyUrl)).body, off);
  t.same((await api.show(caId)).acme_policy, off, 'the CA object shows it');
  const put = await api.call('PUT', policyUrl, {
    enabled: true,
    allowed_identifiers: ['*.svc.cluster.local', '*.Example.Internal', '10.0.0.0/8', '*.svc.cluster.local'],
    max_validity_days: 90,
  });
  const expected = {
    enabled: true,
    allowed_identifiers: ['*.svc.cluster.local', '*.example.internal', '10.0.0.0/8'],
    max_validity_days: 90,
  };
  t.equal(put.status, 200, JSON.stringify(put.body));
  t.same(put.body, expected, 'lower-cased, duplicates dropped');
  t.same((await api.call('GET', policyUrl)).body, expected);
  t.same((await api.show(caId)).acme_policy, expected);
  const events = await harness.database.prisma.auditEvent.findMany({ where: { action: 'pca:ca:setAcmePolicy', resourceId: caId } });
  t.equal(events.length, 1, 'audited');
  t.match(events[0].detail, { previous: off, acme_policy: expected });
});

t.test('bad ACME policy documents: 400 naming the field', async (t) => {
  const cases: [unknown, RegExp][] = [
    [{}, /enabled/],
    [{ enabled: 'yes' }, /enabled/],
    [{ enabled: true, allowed: ['a.example'] }, /allowed/],
    [{ enabled: true, allowed_identifiers: ['bad name!'] }, /allowed_identifiers\[0\]/],
    [{ enabled: true, allowed_identifiers: ['10.0.0.1/8'] }, /allowed_identifiers\[0\]/],
    [{ enabled: true, max_validity_days: 0 }, /max_validity_days/],
    [{ enabled: true, max_validity_days: 8000 }, /max_validity_days/],
  ];
  for (const [document, message] of cases) assertError(t, await api.call('PUT', policyUrl, document), 400, 'PCA.00020001', message);
  t.equal((await api.call('GET', policyUrl)).body.max_validity_days, 90, 'the stored policy is unchanged');
});

t.test('EAB keys: created only while enabled, shown once, sealed, listed, revoked; own action; tenant-scoped', async (t) => {
  const created = await api.call('POST', eabUrl);
  t.equal(created.status, 200, JSON.stringify(created.body));
  const { kid, hmac_key: hmacKey, directory_url: directoryUrl } = created.body;
  t.match(kid, /^eab_[A-Za-z0-9_-]{22}$/);
  t.equal(Buffer.from(hmacKey, 'base64url').length, 32, '256-bit HMAC key, base64url');
  t.equal(directoryUrl, `${harness.config.publicBaseUrl}/acme/${caId}/directory`);
  const row = await harness.database.prisma.acmeEabKey.findUniqueOrThrow({ where: { kid } });
  t.notOk(row.sealedHmacKey.includes(hmacKey), 'the HMAC key is stored sealed, not in clear');
  t.notOk(Buffer.from(row.sealedHmacKey).includes(Buffer.from(hmacKey, 'base64url').toString('base64')), 'nor in base64');
  const listed = await api.call('GET', eabUrl);
  t.equal(listed.status, 200);
  t.same(
    listed.body.eab_keys.map((key: { kid: string; status: string; hmac_key?: string }) => [key.kid, key.status, key.hmac_key]),
    [[kid, 'ACTIVE', undefined]],
    'listed without the HMAC key',
  );
  t.ok(
    await harness.database.prisma.auditEvent.findFirst({ where: { action: 'pca:acme:createEab', resourceId: kid } }),
    'creation audited',
  );

  const onlyCaActions = harness.tokenWith(['pca:ca:create', 'pca:ca:get']);
  const refused = await harness.app.inject({ method: 'POST', url: eabUrl, headers: { authorization: `Bearer ${onlyCaActions}` } });
  t.equal(refused.statusCode, 403, 'pca:acme:eab is its own action');
  const allowed = await harness.app.inject({
    method: 'POST',
    url: eabUrl,
    headers: { authorization: `Bearer ${harness.tokenWith(['pca:acme:eab'])}` },
  });
  t.equal(allowed.statusCode, 200, 'and enough on its own');

  assertError(t, await api.call('POST', eabUrl, undefined, OTHER_DOMAIN), 404, 'PCA.10010002');
  assertError(t, await api.call('GET', eabUrl, undefined, OTHER_DOMAIN), 404, 'PCA.10010002');
  assertError(t, await api.call('DELETE', `${eabUrl}/${kid}`, undefined, OTHER_DOMAIN), 404, 'PCA.10010002');

  t.equal((await api.call('DELETE', `${eabUrl}/${kid}`)).status, 204);
  t.equal((await api.call('GET', eabUrl)).body.eab_keys.find((key: { kid: string }) => key.kid === kid).status, 'REVOKED');
  assertError(t, await api.call('DELETE', `${eabUrl}/${kid}`), 404, 'PCA.10010002', /EAB key/);

  const other = await api.root();
  assertError(t, await api.call('POST', `${CA}/${other}/acme/eab`), 400, 'PCA.00020001', /ACME is not enabled/);
  t.equal((await api.call('PUT', policyUrl, { enabled: false })).status, 200);
  assertError(t, await api.call('POST', eabUrl), 400, 'PCA.00020001', /ACME is not enabled/);
});
