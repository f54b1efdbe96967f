/**
 * What a certificate may say (issue #13, items 5–8): a CSR never mints a delegated OCSP responder or an
 * any-purpose certificate without a grant, a CA:FALSE certificate never carries CA key usages, a CSR subject obeys
 * the JSON path's rules (and the API reports what the certificate says), and a customized extension is bounded and
 * never masquerades as an extension whose syntax is known. openssl judges the certificates and the OCSP responses.
 */
import t from 'tap';
import { createTestApp } from '../helpers/app.ts';
import { CA, DN, assertError, client, type Json } from '../ca/support.ts';
import { KEY_ARGS, certificateText, openssl, opensslCsr, scratch } from '../certificates/support.ts';

const harness = await createTestApp();
t.teardown(() => harness.close());
const api = client(harness);
const dir = await scratch('certificate-content');
const CERT = '/v1/private-certificates';
const validity = { type: 'DAY', value: 30 };

const rootId = await api.root();
const issuerId = await api.subordinate(rootId, { path_length: 2 });
const rootPem = (await api.call('POST', `${CA}/${rootId}/export`)).body.certificate as string;
const issuerPem = (await api.call('POST', `${CA}/${issuerId}/export`)).body.certificate as string;

async function byCsr(issuer: string, name: string, reqArgs: string[], overrides: Json = {}) {
  const { csr, keyFile } = await opensslCsr(dir, name, [...KEY_ARGS.p256], reqArgs);
  return { ...(await api.call('POST', `${CERT}/csr`, { issuer_id: issuer, csr, validity, ...overrides })), keyFile };
}

async function certificatePem(id: string): Promise<string> {
  const exported = await api.call('POST', `${CERT}/${id}/export`, { is_compressed: 'false', type: 'OTHER' });
  if (exported.status !== 200) throw new Error(`export: ${JSON.stringify(exported.body)}`);
  return exported.body.certificate as string;
}

/**
 * An OCSP response saying `good` for `serialHex` under the CA `caPem`, signed by `responderPem` with its key (openssl
 * as the forger), then judged by `openssl ocsp` against the root: ok when openssl accepts it as a good answer.
 */
async function forgedGood(tag: string, caPem: string, responderPem: string, responderKey: string, serialHex: string): Promise<{ ok: boolean; output: string }> {
  const caFile = await dir.write(`${tag}-ca.pem`, caPem);
  const rootFile = await dir.write(`${tag}-root.pem`, rootPem);
  const responderFile = await dir.write(`${tag}-responder.pem`, responderPem);
  const index = await dir.write(`${tag}-index.txt`, `V\t491231235959Z\t\t${serialHex.toUpperCase()}\tunknown\t/CN=victim\n`);
  const request = dir.file(`${tag}-req.der`);
  const made = await openssl(['ocsp', '-issuer', caFile, '-serial', `0x${serialHex}`, '-no_nonce', '-reqout', request]);
  if (!made.ok) throw new Error(made.stderr);
  const response = dir.file(`${tag}-resp.der`);
  const signed = await openssl(['ocsp', '-index', index, '-rsigner', responderFile, '-rkey', responderKey, '-CA', caFile, '-reqin', request, '-respout', response]);
  if (!signed.ok) throw new Error(signed.stderr);
  const judged = await openssl(['ocsp', '-respin', response, '-issuer', caFile, '-CAfile', rootFile, '-verify_other', caFile, '-no_nonce', '-serial', `0x${serialHex}`]);
  const output = judged.stdout + judged.stderr;
  return { ok: judged.ok && /Response verify OK/.test(output) && /: good/.test(output), output };
}

t.test('item 5: a CSR cannot mint an OCSP responder, an any-purpose or an unlisted-EKU certificate without a grant', async (t) => {
  // The victim: a certificate revoked by its owner, which a forged responder would call good again.
  const victim = await byCsr(issuerId, 'victim', ['-subj', '/CN=victim.example.com']);
  t.equal(victim.status, 200, JSON.stringify(victim.body));
  t.equal((await api.call('POST', `${CERT}/${victim.body.certificate_id}/revoke`, { reason: 'KEY_COMPROMISE' })).status, 204);
  const victimSerial = (await api.call('GET', `${CERT}/${victim.body.certificate_id}`)).body.serial_number as string;

  for (const [name, eku, refusal] of [
    ['ocsp', 'OCSPSigning', /extended key usage OCSPSigning is issued only when the issuing CA's issuance policy lists it/],
    ['ocsp-web', 'serverAuth,OCSPSigning', /OCSPSigning is issued only when/],
    ['any', 'anyExtendedKeyUsage', /anyExtendedKeyUsage is never issued/],
    ['any-web', 'serverAuth,anyExtendedKeyUsage', /anyExtendedKeyUsage is never issued/],
    ['ipsec', 'ipsecIKE', /1\.3\.6\.1\.5\.5\.7\.3\.17 is issued only when/],
    ['private', '1.3.6.1.4.1.99999.1', /1\.3\.6\.1\.4\.1\.99999\.1 is issued only when/],
  ] as const) {
    for (const type of ['ENTITY_CERT', 'INTERMEDIATE_CA']) {
      const response = await byCsr(issuerId, `${name}-${type}`, ['-subj', `/CN=${name}`, '-addext', `extendedKeyUsage=${eku}`], { type });
      assertError(t, response, 400, 'PCA.00020001', refusal);
    }
  }
  // The contract's flags but timeStamping come without a grant.
  const plain = await byCsr(issuerId, 'plain', ['-subj', '/CN=plain', '-addext', 'extendedKeyUsage=serverAuth,clientAuth,codeSigning,emailProtection,1.3.6.1.4.1.311.20.2.2']);
  t.equal(plain.status, 200, JSON.stringify(plain.body));

  // Granted by a policy, the same CSR gives a responder whose forged `good` openssl accepts: what the refusals prevent.
  const delegating = await api.subordinate(rootId, { distinguished_name: { ...DN, common_name: 'delegating' } });
  t.equal((await api.call('PUT', `${CA}/${delegating}/issuance-policy`, { allowed_ekus: ['OCSPSigning'] })).status, 200);
  const anyStill = await byCsr(delegating, 'any-granted', ['-subj', '/CN=any', '-addext', 'extendedKeyUsage=OCSPSigning,anyExtendedKeyUsage']);
  assertError(t, anyStill, 400, 'PCA.00020001', /anyExtendedKeyUsage is never issued/);
  const responder = await byCsr(delegating, 'responder', ['-subj', '/CN=responder', '-addext', 'extendedKeyUsage=OCSPSigning']);
  t.equal(responder.status, 200, JSON.stringify(responder.body));
  const delegatingPem = (await api.call('POST', `${CA}/${delegating}/export`)).body.certificate as string;
  const granted = await forgedGood('granted', delegatingPem, await certificatePem(responder.body.certificate_id), responder.keyFile, '0a0b');
  t.ok(granted.ok, `a granted responder is a real responder (the forging harness works): ${granted.output.trim()}`);

  // Without a grant, the best a caller gets is an ordinary leaf, and a `good` it signs for the revoked victim fails.
  const forged = await forgedGood('plain', issuerPem, await certificatePem(plain.body.certificate_id), plain.keyFile, victimSerial);
  t.notOk(forged.ok, 'openssl refuses the forged response');
  t.match(forged.output, /Response Verify Failure/, forged.output.trim());
});
