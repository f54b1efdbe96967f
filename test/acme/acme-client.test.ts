/**
 * ACME end to end with the npm `acme-client` against a started server (issue #16): EAB account creation (ES256 and
 * RS256 account keys), orders validated by http-01 against the client's own responder, finalize, the chain
 * judged by openssl, and the certificate as a normal certificate of the CA (listed, billed, audited, revocable by
 * REST); account update, key rollover, deactivation, revocation by ACME; the ACME policy enforced through the
 * issuance evaluator (rejectedIdentifier, max_validity_days).
 */
import acme from 'acme-client';
import t from 'tap';
import { CA } from '../ca/support.ts';
import { openssl, pemBlocks, scratch, verifyStrict } from '../certificates/support.ts';
import { acmeCa, eabKey, http01Responder, startAcmeServer } from './support.ts';

const NAMES = ['app.example.internal', 'www.example.internal'];
const server = await startAcmeServer({ env: { ACME_STATIC_HOSTS: NAMES.map((name) => `${name}=127.0.0.1`).join(',') } });
t.teardown(() => server.close());
const responder = await http01Responder(server.http01Port);
t.teardown(() => responder.close());
const dir = await scratch('acme-client');
const { api, harness } = server;
const prisma = harness.database.prisma;

const caId = await acmeCa(api, { enabled: true, allowed_identifiers: ['*.example.internal'], max_validity_days: 30 });
const rootPem = (await api.call('POST', `${CA}/${caId}/export`)).body.certificate as string;

async function newClient(accountKey: Buffer) {
  const eab = await eabKey(api, caId);
  return new acme.Client({ directoryUrl: eab.directory_url, accountKey, externalAccountBinding: { kid: eab.kid, hmacKey: eab.hmac_key } });
}

async function obtain(client: acme.Client, names: string[]) {
  const [key, csr] = await acme.crypto.createCsr({ commonName: names[0], altNames: names });
  const certificate = await client.auto({
    csr,
    termsOfServiceAgreed: true,
    challengePriority: ['http-01'],
    // The server validates; acme-client's own pre-check would fetch port 80.
    skipChallengeVerification: true,
    challengeCreateFn: async (_authz, challenge, keyAuthorization) => void responder.tokens.set(challenge.token, keyAuthorization),
    challengeRemoveFn: async (_authz, challenge) => void responder.tokens.delete(challenge.token),
  });
  return { key, certificate };
}

t.test('ES256 account with EAB: http-01 order, chain verified by openssl, a normal certificate of the CA', async (t) => {
  const client = await newClient(await acme.crypto.createPrivateEcdsaKey('P-256'));
  const before = responder.requests.length;
  const { certificate } = await obtain(client, NAMES);
  t.ok(
    responder.requests.length - before >= 2,
    `the server fetched the tokens from the client's responder (${responder.requests.slice(before).join(', ')})`,
  );
  const blocks = pemBlocks(certificate);
  t.equal(blocks.length, 2, 'leaf and the CA certificate');
  const verified = await verifyStrict(dir, blocks[0]!, blocks[blocks.length - 1]!, [], ['-purpose', 'sslserver']);
  t.ok(verified.ok, `openssl verify -x509_strict -purpose sslserver: ${verified.stdout}${verified.stderr}`);
  t.equal(blocks[1]!.replace(/\s/g, ''), rootPem.replace(/\s/g, ''), "the chain ends with the CA's certificate");
  const file = await dir.write('es256.pem', blocks[0]!);
  const text = (await openssl(['x509', '-in', file, '-noout', '-text', '-dates'])).stdout;
  for (const name of NAMES) t.match(text, `DNS:${name}`);
  const notBefore = new Date(text.match(/notBefore=(.*)/)![1]!);
  const notAfter = new Date(text.match(/notAfter=(.*)/)![1]!);
  t.equal(Math.round((notAfter.getTime() - notBefore.getTime()) / 86_400_000), 30, "valid the policy's max_validity_days");

  const accountUrl = client.getAccountUrl();
  const accountId = accountUrl.split('/').pop()!;
  const account = await prisma.acmeAccount.findUniqueOrThrow({ where: { id: accountId } });
  t.equal(account.domainId, harness.config.defaultDomainId, "the account belongs to the EAB key's domain");
  const listed = await api.call('GET', `/v1/private-certificates?limit=50`);
  const row = listed.body.certificates.find((item: { issuer_id: string }) => item.issuer_id === caId);
  t.ok(row, 'listed by the REST API');
  const billed = await prisma.billingRecord.findFirst({ where: { resourceId: row.certificate_id, usageType: 'CERT_ISSUE' } });
  t.ok(billed, 'billed CERT_ISSUE');
  const audited = await prisma.auditEvent.findFirst({ where: { action: 'pca:ca:issueCert', resourceId: row.certificate_id } });
  t.equal(audited?.actor, `acme:account:${accountId}`, 'audited, with the ACME account as actor');

  const revoked = await api.call('POST', `/v1/private-certificates/${row.certificate_id}/revoke`, { reason: 'SUPERSEDED' });
  t.equal(revoked.status, 204, 'revocable through the REST API');
  t.ok(
    await prisma.revocation.findFirst({ where: { issuerId: caId, serialNumber: row.serial_number } }),
    'in the revocation list (CRL and OCSP source)',
  );
  const rootFile = await dir.write('root.pem', rootPem);
  const crl = await fetch(`${server.baseUrl}/crl/${caId}.crl`);
  t.equal(crl.status, 200, 'the CA publishes its CRL');
  const crlCheck = await openssl([
    'crl',
    '-inform',
    'DER',
    '-in',
    await dir.write('acme.crl', new Uint8Array(await crl.arrayBuffer())),
    '-CAfile',
    rootFile,
    '-noout',
    '-text',
  ]);
  t.match(crlCheck.stderr, /verify OK/, 'openssl verifies the CRL signature');
  t.match(crlCheck.stdout, new RegExp(`Serial Number: 0*${row.serial_number}`, 'i'), 'the CRL lists the ACME certificate');
  const ocsp = await openssl([
    'ocsp',
    '-issuer',
    rootFile,
    '-cert',
    file,
    '-url',
    `${server.baseUrl}/ocsp/${caId}`,
    '-CAfile',
    rootFile,
    '-no_nonce',
  ]);
  t.match(ocsp.stdout, /: revoked/, `openssl ocsp says revoked (${ocsp.stdout.trim()} ${ocsp.stderr.trim()})`);
  await t.rejects(client.revokeCertificate(certificate), /alreadyRevoked|already revoked/, 'ACME then answers alreadyRevoked');
});

t.test('RS256 account: obtain, renew, then revoke through ACME; account update, key rollover, deactivation', async (t) => {
  const client = await newClient(await acme.crypto.createPrivateRsaKey(2048));
  const first = pemBlocks((await obtain(client, [NAMES[0]!])).certificate);
  t.ok((await verifyStrict(dir, first[0]!, first[1]!)).ok, "openssl verifies the RS256 account's certificate");
  // Renewal as ACME clients do it: a new order for the same names by the same account.
  const { certificate } = await obtain(client, [NAMES[0]!]);
  const blocks = pemBlocks(certificate);
  t.ok((await verifyStrict(dir, blocks[0]!, blocks[1]!)).ok, 'openssl verifies the renewed certificate');
  t.not(blocks[0], first[0], 'renewal brought a new certificate');
  await client.revokeCertificate(certificate, { reason: 4 });
  const serial = (await openssl(['x509', '-in', await dir.write('rs256.pem', blocks[0]!), '-noout', '-serial'])).stdout
    .split('=')[1]!
    .trim()
    .toLowerCase()
    .replace(/^0+/, '');
  const certificateRow = await prisma.certificate.findFirstOrThrow({ where: { issuerId: caId, serialNumber: { endsWith: serial } } });
  t.equal(certificateRow.status, 'REVOKED', 'revoked by the account that ordered it');
  const revocation = await prisma.revocation.findFirstOrThrow({ where: { issuerId: caId, serialNumber: certificateRow.serialNumber } });
  t.equal(revocation.reasonCode, 4, 'with its reason (superseded)');

  const updated = await client.updateAccount({ contact: ['mailto:ops@example.internal'] });
  t.same(updated.contact, ['mailto:ops@example.internal'], 'contact updated');
  const accountUrl = client.getAccountUrl();
  await client.updateAccountKey(await acme.crypto.createPrivateEcdsaKey('P-256'));
  const after = await client.updateAccount({});
  t.equal(after.status, 'valid', 'the new key signs for the same account');
  t.equal(client.getAccountUrl(), accountUrl);
  t.ok(
    await prisma.auditEvent.findFirst({ where: { action: 'pca:acme:keyChange', resourceId: accountUrl.split('/').pop() } }),
    'key rollover audited',
  );
  const deactivated = await client.updateAccount({ status: 'deactivated' });
  t.equal(deactivated.status, 'deactivated');
  await t.rejects(
    client.createOrder({ identifiers: [{ type: 'dns', value: NAMES[0]! }] }),
    /deactivated/,
    'a deactivated account cannot order',
  );
});

t.test('the ACME policy, through the issuance evaluator: identifiers outside it are rejectedIdentifier', async (t) => {
  const client = await newClient(await acme.crypto.createPrivateEcdsaKey('P-256'));
  await client.createAccount({ termsOfServiceAgreed: true });
  const error = await client.createOrder({ identifiers: [{ type: 'dns', value: 'evil.example.com' }] }).catch((caught: Error) => caught);
  t.match(String(error), /evil\.example\.com.*not allowed by the CA's ACME policy/, String(error));
  t.equal(
    await prisma.acmeOrder.count({ where: { identifiers: { array_contains: [{ type: 'dns', value: 'evil.example.com' }] } } }),
    0,
    'no order was stored',
  );
});
