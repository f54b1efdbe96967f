/**
 * EdDSA (Ed25519) account keys (issue #16; acme-client, certbot and lego make none, so the raw JWS client): an
 * Ed25519 account through newAccount (EAB), order, http-01, finalize and download, the chain verified by openssl,
 * revocation by that account; and key rollover (keyChange, §7.3.5) from an ES256 key to an Ed25519 key, after
 * which only the new key signs for the account.
 */
import t from 'tap';
import { pemBlocks, scratch, verifyStrict } from '../certificates/support.ts';
import { acmeCa, eabKey, http01Responder, startAcmeServer } from './support.ts';
import { RawAcme, accountKey, csrFor, signJws, thumbprintOf } from './jws-client.ts';

const NAMES = ['ed.example.internal', 'roll.example.internal'];
const server = await startAcmeServer({ env: { ACME_STATIC_HOSTS: NAMES.map((name) => `${name}=127.0.0.1`).join(',') } });
t.teardown(() => server.close());
const responder = await http01Responder(server.http01Port);
t.teardown(() => responder.close());
const dir = await scratch('acme-eddsa');
const { api } = server;
const prisma = server.harness.database.prisma;
const caId = await acmeCa(api, { enabled: true, allowed_identifiers: ['*.example.internal'] });
const directoryUrl = `${server.baseUrl}/acme/${caId}/directory`;

/** Orders `name`, answers http-01, finalizes and downloads: the PEM chain and the certificate URL. */
async function obtain(client: RawAcme, name: string): Promise<{ chain: string; certificateUrl: string }> {
  const { order } = await client.readyOrder([name], responder.tokens);
  const finalized = await client.post(order.finalize, { csr: (await csrFor([name])).csr });
  if (finalized.body.status !== 'valid') throw new Error(`finalize: ${finalized.status} ${JSON.stringify(finalized.body)}`);
  const downloaded = await client.post(finalized.body.certificate, '');
  if (!downloaded.type.startsWith('application/pem-certificate-chain')) throw new Error(`download: ${downloaded.type}`);
  return { chain: downloaded.body, certificateUrl: finalized.body.certificate };
}

async function verified(chain: string): Promise<string> {
  const blocks = pemBlocks(chain);
  const result = await verifyStrict(dir, blocks[0]!, blocks[blocks.length - 1]!, blocks.slice(1, -1), ['-purpose', 'sslserver']);
  if (!result.ok) throw new Error(`openssl verify: ${result.stdout}${result.stderr}`);
  return blocks[0]!;
}

t.test('an Ed25519 account key: newAccount, order, finalize, download; openssl verifies the chain; revocation', async (t) => {
  const client = await new RawAcme(directoryUrl, accountKey('EdDSA')).init();
  const created = await client.newAccount(await eabKey(api, caId));
  t.equal(created.status, 201, JSON.stringify(created.body));
  const account = await prisma.acmeAccount.findUniqueOrThrow({ where: { id: client.kid!.split('/').pop() } });
  t.match(account.jwk, { kty: 'OKP', crv: 'Ed25519', x: client.key.jwk.x }, 'stored as an OKP Ed25519 key');
  t.notOk('d' in (account.jwk as object), 'public members only');
  t.equal(account.thumbprint, thumbprintOf(client.key.jwk), 'RFC 7638 thumbprint of an OKP key');

  const { chain, certificateUrl } = await obtain(client, NAMES[0]!);
  const leaf = await verified(chain);
  t.pass('openssl verify -x509_strict -purpose sslserver accepted the chain');
  const row = await prisma.certificate.findFirstOrThrow({ where: { issuerId: caId, status: 'ISSUED' } });
  t.equal(Buffer.from(row.certificateDer).toString('base64'), leaf.replace(/-----[^-]+-----|\s/g, ''), 'a certificate of the CA');
  t.equal(row.id, certificateUrl.split('/').pop());

  const again = await client.newAccount(await eabKey(api, caId));
  t.equal(again.status, 200, 'newAccount with the same Ed25519 key finds the account');
  t.equal(again.headers.get('location'), client.kid);

  const revoked = await client.post(client.directory.revokeCert!, {
    certificate: Buffer.from(row.certificateDer).toString('base64url'),
    reason: 1,
  });
  t.equal(revoked.status, 200, JSON.stringify(revoked.body));
  t.equal((await prisma.certificate.findUniqueOrThrow({ where: { id: row.id } })).status, 'REVOKED', 'revoked by the Ed25519 account');
});

t.test('key rollover from ES256 to Ed25519: the new key signs, the old one no longer does', async (t) => {
  const client = await new RawAcme(directoryUrl, accountKey('ES256')).init();
  t.equal((await client.newAccount(await eabKey(api, caId))).status, 201);
  const oldKey = client.key;
  const newKey = accountKey('EdDSA');
  const url = client.directory.keyChange!;
  const inner = signJws(newKey, { url, jwk: newKey.jwk }, { account: client.kid, oldKey: oldKey.jwk });
  const changed = await client.post(url, inner);
  t.equal(changed.status, 200, JSON.stringify(changed.body));
  const account = await prisma.acmeAccount.findUniqueOrThrow({ where: { id: client.kid!.split('/').pop() } });
  t.match(account.jwk, { kty: 'OKP', crv: 'Ed25519', x: newKey.jwk.x });
  t.equal(account.thumbprint, thumbprintOf(newKey.jwk));

  const stale = await client.post(client.kid!, '');
  t.match(
    stale,
    { status: 400, body: { type: 'urn:ietf:params:acme:error:badSignatureAlgorithm' } },
    'the old ES256 key no longer suits the account',
  );
  client.key = newKey;
  t.equal((await client.post(client.kid!, '')).body.status, 'valid', 'the Ed25519 key reads the account');
  const { chain } = await obtain(client, NAMES[1]!);
  await verified(chain);
  t.pass('an order after the rollover is issued and verified by openssl');

  const other = await new RawAcme(directoryUrl, accountKey('EdDSA')).init();
  await other.newAccount(await eabKey(api, caId));
  const taken = await other.post(url, signJws(newKey, { url, jwk: newKey.jwk }, { account: other.kid, oldKey: other.key.jwk }));
  t.match(taken, { status: 409, body: { type: 'urn:ietf:params:acme:error:malformed' } }, 'a key already in use cannot be rolled to');
  t.equal(taken.headers.get('location'), client.kid, 'naming the account that holds it');
  const fresh = accountKey('EdDSA');
  const wrongOld = await other.post(url, signJws(fresh, { url, jwk: fresh.jwk }, { account: other.kid, oldKey: oldKey.jwk }));
  t.match(wrongOld, { status: 403, body: { type: 'urn:ietf:params:acme:error:unauthorized' } }, "an oldKey that is not the account's");
  const notSignedByNew = await other.post(
    url,
    signJws(accountKey('EdDSA'), { url, jwk: fresh.jwk }, { account: other.kid, oldKey: other.key.jwk }),
  );
  t.match(
    notSignedByNew,
    { status: 400, body: { type: 'urn:ietf:params:acme:error:malformed', detail: /signature/ } },
    'an inner JWS not signed by the new key',
  );
});
