/**
 * A CA signs only with its own key. Nothing in a key reference names its CA, so a `key_ref` copied onto another CA
 * row (by someone who can write the database but holds neither the master key nor the PIN) must not sign that
 * CA's certificates: the first signature of each key is verified under the public key its CA records. Runs with
 * the configured store (software, or SoftHSM2 when CI sets KEY_STORE=pkcs11).
 */
import t from 'tap';
import { createTestApp } from '../helpers/app.ts';
import { DN, assertError, client, verifyWithChain } from '../ca/support.ts';

const harness = await createTestApp();
t.teardown(() => harness.close());
const api = client(harness);
const prisma = harness.database.prisma;

const issue = (issuerId: string) =>
  api.call('POST', '/v1/private-certificates', {
    issuer_id: issuerId,
    key_algorithm: 'EC256',
    signature_algorithm: 'SHA256',
    distinguished_name: { common_name: `leaf-of-${issuerId.slice(0, 8)}` },
    validity: { type: 'DAY', value: 30 },
  });

t.test("a CA row holding another CA's key reference signs nothing; put back, it signs again", async (t) => {
  const [a, b] = [
    await api.root({ distinguished_name: { ...DN, common_name: 'binding-a' } }),
    await api.root({ distinguished_name: { ...DN, common_name: 'binding-b' } }),
  ];
  const keyRefOf = async (id: string) => (await prisma.certificateAuthority.findUniqueOrThrow({ where: { id } })).keyRef!;
  const [refA, refB] = [await keyRefOf(a), await keyRefOf(b)];
  await prisma.certificateAuthority.update({ where: { id: a }, data: { keyRef: refB } });

  const refused = await issue(a);
  assertError(t, refused, 500, 'PCA.00050001', /not the key of its public_key_spki/);
  t.equal(await prisma.certificate.count({ where: { issuerId: a } }), 0, 'no certificate of A was stored');

  await prisma.certificateAuthority.update({ where: { id: a }, data: { keyRef: refA } });
  for (const issuer of [a, b]) {
    const issued = await issue(issuer);
    t.equal(issued.status, 200, JSON.stringify(issued.body));
    const exported = await api.call('POST', `/v1/private-certificates/${issued.body.certificate_id}/export`, {
      type: 'OTHER',
      is_compressed: 'false',
    });
    await verifyWithChain(t, exported.body.certificate, exported.body.certificate_chain, `issued by ${issuer === a ? 'A' : 'B'}`);
  }
});
