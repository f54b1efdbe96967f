/**
 * Create-by-CSR refuses a CSR whose key is the key of a CA this service holds: the CSR a PENDING subordinate exports
 * (signed by its service-made key) certified again, as a leaf or as a second CA certificate, under the root or under
 * the subordinate itself, would outlive the subordinate's revocation. Refused with 400 and nothing stored or billed,
 * in the same words for another tenant (no existence leak), on the batch's one-statement path (issuer remembered),
 * its transaction path and the lone path (CSR-issued CAs). A requester-held key, a CSR-issued CA's included, issues
 * as before.
 */
import t from 'tap';
import { OTHER_DOMAIN, createTestApp } from '../helpers/app.ts';
import { CA, DN, assertError, client } from '../ca/support.ts';
import { KEY_ARGS, openssl, opensslCsr, scratch } from './support.ts';

const harness = await createTestApp();
t.teardown(() => harness.close());
const api = client(harness);
const { call } = api;
const prisma = harness.database.prisma;
const dir = await scratch('held-ca-key');

const REFUSED = /^the CSR's key is a CA key held by this service: a CA whose key is held here is activated/;
const validity = { type: 'DAY', value: 1 };

const rootId = await api.root();
const otherRootId = await api.root({}, OTHER_DOMAIN);
const pending = await call('POST', CA, { type: 'SUBORDINATE', distinguished_name: { ...DN, common_name: 'held' }, key_algorithm: 'EC256' });
const subordinateId = pending.body.ca_id as string;
const heldCsr = (await call('GET', `${CA}/${subordinateId}/csr`)).body.csr as string;

function byCsr(issuerId: string, csr: string, type: 'ENTITY_CERT' | 'INTERMEDIATE_CA', domainId?: string) {
  const body = { issuer_id: issuerId, csr, type, validity, ...(type === 'INTERMEDIATE_CA' && { path_length: 0 }) };
  return call('POST', '/v1/private-certificates/csr', body, domainId);
}

/** What a refusal must leave as it was: certificates, CAs, CERT_ISSUE records, successful issuances audited (a refusal is audited as a FAILURE). */
const stored = async () => ({
  certificates: await prisma.certificate.count(),
  cas: await prisma.certificateAuthority.count(),
  billed: await prisma.billingRecord.count({ where: { usageType: 'CERT_ISSUE' } }),
  audited: await prisma.auditEvent.count({ where: { action: 'pca:ca:issueCert', outcome: 'SUCCESS' } }),
});

t.test("a PENDING subordinate's CSR is refused under the root, as a leaf and as a CA, nothing stored or billed", async (t) => {
  const before = await stored();
  assertError(t, await byCsr(rootId, heldCsr, 'ENTITY_CERT'), 400, 'PCA.00020001', REFUSED);
  assertError(t, await byCsr(rootId, heldCsr, 'INTERMEDIATE_CA'), 400, 'PCA.00020001', REFUSED);
  t.same(await stored(), before);
});

t.test('an ordinary CSR still issues; issued next to a refused one in the same instant, it is stored alone', async (t) => {
  const { csr } = await opensslCsr(dir, 'ordinary', [...KEY_ARGS.p256]);
  const first = await byCsr(rootId, csr, 'ENTITY_CERT');
  t.equal(first.status, 200, JSON.stringify(first.body));
  // The root is now remembered: these go through the one-statement batch, whichever requests share a batch.
  const before = await stored();
  const [refused, issued] = await Promise.all([byCsr(rootId, heldCsr, 'ENTITY_CERT'), byCsr(rootId, csr, 'ENTITY_CERT')]);
  assertError(t, refused, 400, 'PCA.00020001', REFUSED);
  t.equal(issued.status, 200, JSON.stringify(issued.body));
  t.same(await stored(), { ...before, certificates: before.certificates + 1, billed: before.billed + 1, audited: before.audited + 1 });
  const row = await prisma.certificate.findUniqueOrThrow({ where: { id: issued.body.certificate_id } });
  t.equal(row.issuerId, rootId);
});

t.test('another tenant submitting the CSR is refused in the same words: no sign that the CA exists', async (t) => {
  const before = await stored();
  const own = await byCsr(rootId, heldCsr, 'ENTITY_CERT');
  const other = await byCsr(otherRootId, heldCsr, 'ENTITY_CERT', OTHER_DOMAIN);
  assertError(t, other, 400, 'PCA.00020001', REFUSED);
  t.equal(other.body.error_msg, own.body.error_msg);
  assertError(t, await byCsr(otherRootId, heldCsr, 'INTERMEDIATE_CA', OTHER_DOMAIN), 400, 'PCA.00020001', REFUSED);
  t.same(await stored(), before);
});

t.test('once activated, the subordinate is not made to certify its own key', async (t) => {
  const activated = await call('POST', `${CA}/${subordinateId}/activate`, {
    issuer_id: rootId,
    signature_algorithm: 'SHA256',
    validity: { type: 'DAY', value: 10 },
    path_length: 1,
  });
  t.equal(activated.status, 204, JSON.stringify(activated.body));
  const before = await stored();
  assertError(t, await byCsr(subordinateId, heldCsr, 'ENTITY_CERT'), 400, 'PCA.00020001', REFUSED);
  assertError(t, await byCsr(subordinateId, heldCsr, 'INTERMEDIATE_CA'), 400, 'PCA.00020001', REFUSED);
  assertError(t, await byCsr(rootId, heldCsr, 'ENTITY_CERT'), 400, 'PCA.00020001', REFUSED);
  t.same(await stored(), before);
});

t.test("a CSR-issued INTERMEDIATE_CA's key is the requester's: certified again as before", async (t) => {
  const { keyFile, csr } = await opensslCsr(dir, 'requester-ca', [...KEY_ARGS.p256], ['-subj', '/CN=requester-ca']);
  const intermediate = await byCsr(rootId, csr, 'INTERMEDIATE_CA');
  t.equal(intermediate.status, 200, JSON.stringify(intermediate.body));
  const row = await prisma.certificateAuthority.findUniqueOrThrow({ where: { id: intermediate.body.certificate_id } });
  t.equal(row.keyRef, null, 'no key held for it');
  const second = dir.file('requester-ca-2.csr');
  t.ok((await openssl(['req', '-new', '-key', keyFile, '-subj', '/CN=requester-ca', '-out', second])).ok);
  const again = (await dir.read('requester-ca-2.csr')).toString('utf8');
  const leaf = await byCsr(rootId, again, 'ENTITY_CERT');
  t.equal(leaf.status, 200, JSON.stringify(leaf.body));
  const ca = await byCsr(rootId, again, 'INTERMEDIATE_CA');
  t.equal(ca.status, 200, JSON.stringify(ca.body));
});
