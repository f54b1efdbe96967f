/**
 * ACME features of issue #16 not reached by the client tests, with the raw JWS client against a started server:
 * the directory under the CA's URN (and a URN naming another tenant refused), an `ip` identifier validated by
 * http-01, the certificate chain of a subordinate CA with its `rel="alternate"` chain (root left out), both judged
 * by openssl, revocation signed by the certificate's own key (§7.6), and finalize out of reach of REST Idempotency-Keys.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import t from 'tap';
import { CA } from '../ca/support.ts';
import { openssl, pemBlocks, scratch, verifyStrict } from '../certificates/support.ts';
import { OTHER_DOMAIN } from '../helpers/app.ts';
import { eabKey, http01Responder, startAcmeServer } from './support.ts';
import { RawAcme, accountKey, csrFor, read, type AccountKey } from './jws-client.ts';

const server = await startAcmeServer({ env: { ACME_STATIC_HOSTS: 'sub.example.internal=127.0.0.1' } });
t.teardown(() => server.close());
const responder = await http01Responder(server.http01Port);
t.teardown(() => responder.close());
const dir = await scratch('acme-protocol');
const { api, harness } = server;
const prisma = harness.database.prisma;
const rootId = await api.root();
const caId = await api.subordinate(rootId);
const policy = await api.call('PUT', `${CA}/${caId}/acme-policy`, {
  enabled: true,
  allowed_identifiers: ['*.example.internal', '127.0.0.0/8'],
});
if (policy.status !== 200) throw new Error(`acme-policy: ${JSON.stringify(policy.body)}`);
const exported = async (id: string) => pemBlocks((await api.call('POST', `${CA}/${id}/export`)).body.certificate)[0]!;
const rootPem = await exported(rootId);
const subordinatePem = await exported(caId);
const urn = `pca:${harness.config.region}:${harness.config.defaultDomainId}:ca:${caId}`;

async function issued(client: RawAcme, names: string[]) {
  const { order } = await client.readyOrder(names, responder.tokens);
  const { key, csr } = await csrFor(names);
  const finalized = await client.post(order.finalize, { csr });
  if (finalized.body.status !== 'valid') throw new Error(`finalize: ${JSON.stringify(finalized.body)}`);
  return { key, order, certificateUrl: finalized.body.certificate as string };
}

t.test("the directory under the CA's URN; a URN naming another tenant is no directory", async (t) => {
  const client = await new RawAcme(`${server.baseUrl}/acme/${urn}/directory`, accountKey('ES256')).init();
  t.equal(client.directory.newOrder, `${server.baseUrl}/acme/${caId}/new-order`, 'the URN directory names the CA by id');
  t.equal((await client.newAccount(await eabKey(api, caId))).status, 201);
  const { certificateUrl } = await issued(client, ['sub.example.internal']);
  t.ok(certificateUrl.startsWith(`${server.baseUrl}/acme/${caId}/cert/`));
  const foreign = await read(await fetch(`${server.baseUrl}/acme/pca:${harness.config.region}:${OTHER_DOMAIN}:ca:${caId}/directory`));
  t.match(foreign, { status: 404, body: { type: 'urn:ietf:params:acme:error:malformed' } });
  t.equal(foreign.type.split(';')[0], 'application/problem+json');
  const otherRegion = await read(
    await fetch(`${server.baseUrl}/acme/pca:xx-nowhere-1:${harness.config.defaultDomainId}:ca:${caId}/directory`),
  );
  t.equal(otherRegion.status, 404, 'nor one of another region');
});

t.test('an ip identifier validated by http-01; the chain and its alternate judged by openssl', async (t) => {
  const client = await new RawAcme(`${server.baseUrl}/acme/${caId}/directory`, accountKey('ES256')).init();
  await client.newAccount(await eabKey(api, caId));
  const created = await client.newOrder(['127.0.0.1']);
  t.same(created.body.identifiers, [{ type: 'ip', value: '127.0.0.1' }]);
  const challenges = (await client.post(created.body.authorizations[0], '')).body.challenges.map((item: { type: string }) => item.type);
  t.same(challenges.sort(), ['http-01', 'tls-alpn-01'], 'no dns-01 for an address');
  const before = responder.requests.length;
  const { certificateUrl } = await issued(client, ['127.0.0.1']);
  t.ok(
    responder.requests.slice(before).some((request) => request.startsWith(`127.0.0.1:${server.http01Port}/.well-known/acme-challenge/`)),
    'validated at the address itself',
  );

  const chain = await client.post(certificateUrl, '');
  const blocks = pemBlocks(chain.body);
  t.equal(blocks.length, 3, 'leaf, subordinate, root');
  const flat = (pem: string) => pem.replace(/\s/g, '');
  t.equal(flat(blocks[1]!), flat(subordinatePem), 'the subordinate CA');
  t.equal(flat(blocks[2]!), flat(rootPem), 'its root');
  const verified = await verifyStrict(dir, blocks[0]!, rootPem, [blocks[1]!], ['-purpose', 'sslserver']);
  t.ok(verified.ok, `openssl verify: ${verified.stdout}${verified.stderr}`);
  t.match(
    (await openssl(['x509', '-in', await dir.write('ip.pem', blocks[0]!), '-noout', '-ext', 'subjectAltName'])).stdout,
    'IP Address:127.0.0.1',
  );

  const links = chain.headers.get('link') ?? '';
  const alternateUrl = links.match(/<([^>]+)>;rel="alternate"/)?.[1];
  t.equal(alternateUrl, `${certificateUrl}/alternate`, `Link: rel="alternate" (${links})`);
  const alternate = pemBlocks((await client.post(alternateUrl!, '')).body);
  t.same(alternate, blocks.slice(0, 2), 'the alternate chain leaves the root out');
  const fromAlternate = await verifyStrict(dir, alternate[0]!, rootPem, [alternate[1]!]);
  t.ok(fromAlternate.ok, 'and verifies with the root as the trust anchor');
});

t.test("a REST caller's Idempotency-Key cannot take an order's finalize", async (t) => {
  const client = await new RawAcme(`${server.baseUrl}/acme/${caId}/directory`, accountKey('ES256')).init();
  await client.newAccount(await eabKey(api, caId));
  const { url, order } = await client.readyOrder(['sub.example.internal'], responder.tokens);
  const orderId = url.split('/').pop()!;
  // The key ACME finalize used to claim in the REST endpoint's scope, sent first by a REST caller with its own CSR.
  const { csr } = await csrFor(['sub.example.internal']);
  const der = Buffer.from(csr, 'base64url').toString('base64');
  const pem = `-----BEGIN CERTIFICATE REQUEST-----\n${der.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE REQUEST-----\n`;
  const rest = await harness.app.inject({
    method: 'POST',
    url: '/v1/private-certificates/csr',
    headers: { ...harness.auth(), 'idempotency-key': `acme-order:${orderId}` },
    payload: { issuer_id: caId, csr: pem, validity: { type: 'DAY', value: 5 } },
  });
  t.equal(rest.statusCode, 200, rest.body);
  const finalized = await client.post(order.finalize, { csr: (await csrFor(['sub.example.internal'])).csr });
  t.equal(finalized.body.status, 'valid', JSON.stringify(finalized.body));
  const certificateId = (finalized.body.certificate as string).split('/').pop();
  t.not(certificateId, rest.json().certificate_id, "the order's certificate is its own, not the REST caller's");
});

t.test("revocation signed by the certificate's own key (no account), refused for any other key", async (t) => {
  const client = await new RawAcme(`${server.baseUrl}/acme/${caId}/directory`, accountKey('ES256')).init();
  await client.newAccount(await eabKey(api, caId));
  const { key, certificateUrl } = await issued(client, ['sub.example.internal']);
  const certificateId = certificateUrl.split('/').pop()!;
  const row = await prisma.certificate.findUniqueOrThrow({ where: { id: certificateId } });
  const body = { certificate: Buffer.from(row.certificateDer).toString('base64url'), reason: 1 };
  const privateKey = createPrivateKey(key);
  const certificateKey: AccountKey = {
    alg: 'ES256',
    privateKey,
    jwk: createPublicKey(privateKey).export({ format: 'jwk' }) as Record<string, string>,
  };

  const stranger = new RawAcme(client.directoryUrl, accountKey('ES256'));
  stranger.directory = client.directory;
  const refused = await stranger.post(client.directory.revokeCert!, body);
  t.match(
    refused,
    { status: 403, body: { type: 'urn:ietf:params:acme:error:unauthorized' } },
    'a key that is neither account nor certificate key',
  );

  const byKey = new RawAcme(client.directoryUrl, certificateKey);
  byKey.directory = client.directory;
  const revoked = await byKey.post(client.directory.revokeCert!, body);
  t.equal(revoked.status, 200, JSON.stringify(revoked.body));
  t.equal((await prisma.certificate.findUniqueOrThrow({ where: { id: certificateId } })).status, 'REVOKED');
  const revocation = await prisma.revocation.findFirstOrThrow({ where: { issuerId: caId, serialNumber: row.serialNumber } });
  t.equal(revocation.reasonCode, 1, 'keyCompromise');
  t.ok(
    await prisma.auditEvent.findFirst({ where: { resourceId: certificateId, actor: 'acme:certificate-key' } }),
    'audited with the certificate key as actor',
  );
  const again = await byKey.post(client.directory.revokeCert!, body);
  t.match(again, { status: 400, body: { type: 'urn:ietf:params:acme:error:alreadyRevoked' } });
});
