/**
 * A deleted CA revokes nothing and, once removed, destroys its key and stops answering CRL and OCSP: so deleting it
 * disables its ACTIVED subordinates (each audited), and none is enabled again while its issuer is deleted. Scenario 5
 * of docs/scenarios.md deletes a root whose subordinate lives, so the deletion itself is not refused.
 */
import t from 'tap';
import { createTestApp } from '../helpers/app.ts';
import { CA, DN, assertError, client } from './support.ts';

const harness = await createTestApp();
t.teardown(() => harness.close());
const api = client(harness);

t.test('deleting a CA disables its subordinates; they are enabled again only under a restored issuer', async (t) => {
  const root = await api.root({ distinguished_name: { ...DN, common_name: 'deleted-issuer-root' } });
  const sub = await api.subordinate(root, { distinguished_name: { ...DN, common_name: 'deleted-issuer-sub' } });
  const issue = () =>
    api.call('POST', '/v1/private-certificates', {
      issuer_id: sub,
      distinguished_name: { common_name: 'leaf.deleted-issuer' },
      validity: { type: 'DAY', value: 10 },
    });
  t.equal((await issue()).status, 200, 'the subordinate issues while its root lives');
  t.equal((await api.call('POST', `${CA}/${root}/disable`)).status, 204);
  t.equal((await issue()).status, 200, 'a disabled root can still revoke what is under it: the subordinate issues');

  t.equal((await api.call('DELETE', `${CA}/${root}?pending_days=7`)).status, 204);
  t.equal((await api.call('GET', `${CA}/${sub}`)).body.status, 'DISABLED', 'the subordinate is disabled with its root');
  assertError(t, await issue(), 400, 'PCA.00020001', /status DISABLED/);
  const audited = await harness.database.prisma.auditEvent.findMany({ where: { resourceId: sub, action: 'pca:ca:disable' } });
  t.equal(audited.length, 1, 'its disabling is audited');
  t.match(audited[0]!.detail, { reason: `issuer ${root} deleted` });
  assertError(t, await api.call('POST', `${CA}/${sub}/enable`), 400, 'PCA.00020001', /issuing CA .* is deleted/);

  t.equal((await api.call('POST', `${CA}/${root}/restore`)).status, 204);
  t.equal((await api.call('POST', `${CA}/${root}/enable`)).status, 204);
  t.equal((await api.call('POST', `${CA}/${sub}/enable`)).status, 204, 'under its restored root it is enabled again');
  t.equal((await issue()).status, 200);
});
