/**
 * ACME refusals against a started server (issue #16), with a raw JWS client so each request can be shaped by hand:
 * nonces (§6.5), the `url` rule (§6.4), JWS shape, algorithms and signatures (§6.2), POST-as-GET (§6.3), tenancy
 * through EAB (an account reaches only its own CA), the CA's policy (rejectedIdentifier), CSR names (badCSR),
 * failed challenges (connection, unauthorized), and an expired order (ManualClock). Every refusal must be an
 * `application/problem+json` document of the right type, and no reply of the whole file a 5xx.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import t, { type Test } from 'tap';
import { ManualClock } from '../../src/clock.ts';
import { KEY_ARGS, certificateText, openssl, opensslCsr, scratch } from '../certificates/support.ts';
import { toPem } from '../../src/x509/pem.ts';
import { OTHER_DOMAIN } from '../helpers/app.ts';
import { DN } from '../ca/support.ts';
import { acmeCa, eabKey, http01Responder, startAcmeServer } from './support.ts';
import { RawAcme, accountKey, b64, csrFor, eabJws, finalizeCsr, replies, signJws, type Reply } from './jws-client.ts';

const HOUR = 3_600_000;
const clock = new ManualClock(Date.now());
const hosts = ['a.example.internal', 'b.example.internal', 'c.example.internal', 'wrong.example.internal', 'old.example.internal'];
// Nothing listens on 127.0.0.2 (the responder is bound to 127.0.0.1): connection refused.
const staticHosts = [...hosts.map((name) => `${name}=127.0.0.1`), 'dead.example.internal=127.0.0.2'].join(',');
const server = await startAcmeServer({ clock, env: { ACME_STATIC_HOSTS: staticHosts } });
t.teardown(() => server.close());
const responder = await http01Responder(server.http01Port);
t.teardown(() => responder.close());
const { api } = server;
const dir = await scratch('acme-negative');
const prisma = server.harness.database.prisma;
const policy = { enabled: true, allowed_identifiers: ['*.example.internal'] };
const caA = await acmeCa(api, policy);
const caA2 = await acmeCa(api, policy, undefined, 'acme-root-2');
const caB = await acmeCa(api, policy, OTHER_DOMAIN, 'acme-root-b');
const directoryOf = (caId: string) => `${server.baseUrl}/acme/${caId}/directory`;

/** A registered account (EAB of `caId`'s owner) speaking to `caId`'s directory. */
async function account(caId = caA, domainId?: string, alg: 'ES256' | 'EdDSA' | 'RS256' = 'ES256'): Promise<RawAcme> {
  const client = await new RawAcme(directoryOf(caId), accountKey(alg)).init();
  const created = await client.newAccount(await eabKey(api, caId, domainId));
  if (created.status !== 201) throw new Error(`newAccount: ${created.status} ${JSON.stringify(created.body)}`);
  return client;
}

/** `nonce: false` where no directory was reached (unknown CA or URL, refused while reading the body): no nonce minted. */
function isProblem(t: Test, reply: Reply, type: string, status?: number, detail?: RegExp, { nonce = true } = {}): void {
  t.ok(reply.status >= 400 && reply.status < 500, `a 4xx (${reply.status}: ${JSON.stringify(reply.body)})`);
  if (status !== undefined) t.equal(reply.status, status, `HTTP ${status}`);
  t.equal(reply.type.split(';')[0], 'application/problem+json', 'a problem document');
  t.equal(reply.body?.type, `urn:ietf:params:acme:error:${type}`, type);
  t.equal(reply.body?.status, reply.status, 'its status is the reply status');
  if (detail) t.match(reply.body?.detail, detail);
  t.equal(reply.headers.get('replay-nonce') !== null, nonce, nonce ? 'with a fresh Replay-Nonce' : 'without a nonce');
}

t.test('bad nonce: badNonce with a fresh Replay-Nonce that then works; used, unknown, missing and malformed nonces', async (t) => {
  const client = await new RawAcme(directoryOf(caA), accountKey('ES256')).init();
  const eab = await eabKey(api, caA);
  const url = client.directory.newAccount!;
  const payload = { termsOfServiceAgreed: true, externalAccountBinding: eabJws(eab, client.key.jwk, url) };
  const bogus = await client.postBody(url, signJws(client.key, { nonce: 'bm90LWEtbm9uY2U', url, jwk: client.key.jwk }, payload));
  isProblem(t, bogus, 'badNonce', 400);
  const fresh = bogus.headers.get('replay-nonce')!;
  const retried = await client.postBody(url, signJws(client.key, { nonce: fresh, url, jwk: client.key.jwk }, payload));
  t.equal(retried.status, 201, 'the nonce of the refusal is accepted');
  const replayed = await client.postBody(url, signJws(client.key, { nonce: fresh, url, jwk: client.key.jwk }, payload));
  isProblem(t, replayed, 'badNonce', 400, /already used/);
  isProblem(t, await client.postBody(url, signJws(client.key, { url, jwk: client.key.jwk }, payload)), 'badNonce', 400, /no nonce/);
  isProblem(t, await client.post(url, payload, { nonce: 42 }), 'malformed', 400, /nonce must be a string/);
  // §6.5.2: a nonce that is not base64url is malformed; one holding a NUL was a 500 (Postgres refuses NUL in text).
  for (const nonce of ['\u0000', 'a\u0000b', 'bm90 LWE=', 'é'])
    isProblem(t, await client.post(url, payload, { nonce }), 'malformed', 400, /nonce must be base64url/);
});

t.test('a NUL (or another control character) in an EAB kid or a contact is refused as a problem, not a 500', async (t) => {
  // Postgres refuses NUL in text (SQLSTATE 22021): these reached it, and were answered 500.
  const client = await new RawAcme(directoryOf(caA), accountKey('ES256')).init();
  const eab = await eabKey(api, caA);
  for (const kid of ['\u0000', `${eab.kid}\u0000`, 'eab_\u0001', 'eab_é', 'k'.repeat(65)])
    isProblem(t, await client.newAccount({ ...eab, kid }), 'unauthorized', 403, /unknown or revoked/);
  const url = client.directory.newAccount!;
  const controls = [
    'mailto:a\u0000@example.internal',
    'mailto:a@example.internal\u0000',
    'mailto:a@exa\u007fmple.internal',
    'mailto:\u001b@b.internal',
  ];
  for (const contact of controls) {
    const payload = { contact: [contact], externalAccountBinding: eabJws(eab, client.key.jwk, url) };
    isProblem(t, await client.post(url, payload, { jwk: client.key.jwk }), 'invalidContact', 400, /control character/);
  }
  t.equal((await client.newAccount(eab)).status, 201, 'the EAB key is still unused');
  for (const contact of controls)
    isProblem(t, await client.post(client.kid!, { contact: [contact] }), 'invalidContact', 400, /control character/);
});

t.test('wrong url in the protected header: unauthorized (§6.4); missing url: malformed', async (t) => {
  const client = await account();
  const newOrder = client.directory.newOrder!;
  const order = { identifiers: [{ type: 'dns', value: 'a.example.internal' }] };
  isProblem(t, await client.post(newOrder, order, { url: client.directory.newAccount }), 'unauthorized', 403, /url/);
  isProblem(t, await client.post(newOrder, order, { url: `${newOrder}?x=1` }), 'unauthorized', 403);
  isProblem(t, await client.post(newOrder, order, { url: newOrder.replace('127.0.0.1', 'localhost') }), 'unauthorized', 403);
  isProblem(t, await client.post(newOrder, order, { url: undefined }), 'malformed', 400, /needs url/);
  t.equal(await prisma.acmeOrder.count({ where: { accountId: client.kid!.split('/').pop() } }), 0, 'no order was made');
});

t.test('JWS shape, algorithm and signature', async (t) => {
  const client = await account();
  const newOrder = client.directory.newOrder!;
  const order = { identifiers: [{ type: 'dns', value: 'a.example.internal' }] };
  isProblem(t, await client.post(newOrder, order, { jwk: client.key.jwk }), 'malformed', 400, /exactly one of jwk and kid/);
  isProblem(t, await client.post(newOrder, order, { kid: undefined, jwk: client.key.jwk }), 'malformed', 400, /kid, not carry a jwk/);
  for (const alg of ['HS256', 'none', 'PS256', 'RS1']) {
    isProblem(t, await client.post(newOrder, order, { alg }), 'badSignatureAlgorithm', 400, new RegExp(`alg ${alg}`));
  }
  // An Ed25519 key's signature presented as ES256: the alg must suit the key.
  const ed = await account(caA, undefined, 'EdDSA');
  isProblem(t, await ed.post(newOrder, order, { alg: 'ES256' }), 'badSignatureAlgorithm', 400, /does not suit/);

  const signed = signJws(client.key, { nonce: await client.nonce(), url: newOrder, kid: client.kid }, order);
  const tampered = {
    ...signed,
    payload: Buffer.from(JSON.stringify({ identifiers: [{ type: 'dns', value: 'b.example.internal' }] })).toString('base64url'),
  };
  isProblem(t, await client.postBody(newOrder, tampered), 'malformed', 400, /signature does not verify/);
  const signedAgain = signJws(client.key, { nonce: await client.nonce(), url: newOrder, kid: client.kid }, order);
  const flipped = Buffer.from(signedAgain.signature, 'base64url');
  flipped[0]! ^= 0xff;
  isProblem(
    t,
    await client.postBody(newOrder, { ...signedAgain, signature: flipped.toString('base64url') }),
    'malformed',
    400,
    /signature/,
  );
  // The other account's key signing under this account's kid.
  isProblem(
    t,
    await client.postBody(newOrder, signJws(ed.key, { nonce: await client.nonce(), url: newOrder, kid: client.kid }, order)),
    'badSignatureAlgorithm',
    400,
  );
  const other = await account();
  isProblem(
    t,
    await client.postBody(newOrder, signJws(other.key, { nonce: await client.nonce(), url: newOrder, kid: client.kid }, order)),
    'malformed',
    400,
    /signature/,
  );

  const good = signJws(client.key, { nonce: await client.nonce(), url: newOrder, kid: client.kid }, order);
  isProblem(t, await client.postBody(newOrder, { ...good, header: { kid: client.kid } }), 'malformed', 400, /unexpected member 'header'/);
  isProblem(t, await client.postBody(newOrder, { ...good, protected: `${good.protected}==` }), 'malformed', 400, /base64url/);
  isProblem(t, await client.postBody(newOrder, '{"protected":'), 'malformed', 400, /not JSON/, { nonce: false });
  isProblem(t, await client.postBody(newOrder, good, 'application/json'), 'malformed', 415, /application\/jose\+json/);
  isProblem(t, await client.postBody(newOrder, good, 'text/plain'), 'malformed', 415, undefined, { nonce: false });
  isProblem(
    t,
    await client.post(newOrder, order, { kid: `${server.baseUrl}/acme/${caA}/account/00000000-0000-4000-8000-000000000000` }),
    'accountDoesNotExist',
    400,
  );
  const withPrivate = accountKey('ES256');
  const leaked = { ...withPrivate.jwk, d: (withPrivate.privateKey.export({ format: 'jwk' }) as Record<string, string>).d! };
  const stranger = await new RawAcme(directoryOf(caA), withPrivate).init();
  isProblem(
    t,
    await stranger.post(stranger.directory.newAccount!, { onlyReturnExisting: true }, { jwk: leaked }),
    'badPublicKey',
    400,
    /private key/,
  );
  // RSA keys whose verification would cost milliseconds (or that are too small): refused before any signature check.
  const modulus = (bits: number) => Buffer.concat([Buffer.from([0xc0]), randomBytes(bits / 8 - 2), Buffer.from([0x01])]);
  const oddRsa: [string, Record<string, string>, RegExp][] = [
    [
      '1024 bits',
      generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' }) as Record<string, string>,
      /2048 to 8192 bits, not 1024/,
    ],
    ['16384 bits', { kty: 'RSA', n: b64(modulus(16384)), e: 'AQAB' }, /not 16384/],
    ['a 3072-bit exponent', { kty: 'RSA', n: b64(modulus(3072)), e: b64(modulus(3072)) }, /exponent 65537/],
    ['exponent 3', { kty: 'RSA', n: b64(modulus(2048)), e: 'Aw' }, /exponent 65537/],
  ];
  for (const [what, jwk, detail] of oddRsa) {
    const reply = await stranger.post(stranger.directory.newAccount!, { onlyReturnExisting: true }, { alg: 'RS256', jwk });
    t.comment(`RSA ${what}`);
    isProblem(t, reply, 'badPublicKey', 400, detail);
  }
  isProblem(t, await stranger.post(stranger.directory.newAccount!, { onlyReturnExisting: true }), 'accountDoesNotExist', 400);
  isProblem(t, await stranger.post(stranger.directory.newAccount!, { termsOfServiceAgreed: true }), 'externalAccountRequired', 400);
  t.equal(await prisma.acmeOrder.count({ where: { accountId: client.kid!.split('/').pop() } }), 0, 'no order was made');
});

t.test('a CA reference no directory has (NUL, non-ASCII, header syntax): a problem document, its Link escaped', async (t) => {
  // These were a 500: the Link header named the directory with the reference's raw text, which Node refuses in a header.
  const client = await account();
  const references: [string, number][] = [
    ['%00', 400], // a NUL anywhere in a URL is malformed
    ['%C3%A9%F0%9F%98%80', 404],
    [encodeURIComponent('<x>;rel="y", \r\n'), 404],
  ];
  for (const [reference, status] of references) {
    const url = `${server.baseUrl}/acme/${reference}/new-order`;
    const reply = await client.post(url, { identifiers: [{ type: 'dns', value: hosts[0] }] }, { url });
    isProblem(t, reply, 'malformed', status, undefined, { nonce: false });
    t.equal(
      reply.headers.get('link'),
      `<${server.baseUrl}/acme/${encodeURIComponent(decodeURIComponent(reference))}/directory>;rel="index"`,
    );
    const nonce = await fetch(`${server.baseUrl}/acme/${reference}/new-nonce`);
    t.equal(nonce.status, status, `new-nonce of ${reference}: ${status}`);
  }
});

t.test('a URL under /acme/ that names no ACME resource: a 404 problem document, whatever the body', async (t) => {
  const client = await account();
  const base = `${server.baseUrl}/acme/${caA}`;
  const url = `${base}/no-such-resource`;
  const unknown = await client.post(url, {}, { url });
  isProblem(t, unknown, 'malformed', 404, /no ACME resource/, { nonce: false });
  t.equal(unknown.headers.get('link'), `<${base}/directory>;rel="index"`, "its Link names the CA's directory");
  isProblem(t, await client.postBody(url, '{}', 'application/json'), 'malformed', 404, undefined, { nonce: false });
  const get = await fetch(`${base}/order/x/y/z`);
  t.equal(get.status, 404);
  t.equal(get.headers.get('content-type')?.split(';')[0], 'application/problem+json', 'a GET too');
  const plain = await client.postBody(url, 'hello', 'text/plain');
  t.equal(plain.type.split(';')[0], 'application/problem+json', `a body of another type: ${plain.status}, a problem document`);
  // Refused by fastify before routing (an undecodable escape, a segment over 2,048 characters): problems too.
  for (const [path, status] of [
    [`${base}/order/%ZZ`, 400],
    [`${server.baseUrl}/acme/${'x'.repeat(3000)}/new-order`, 414],
  ] as const) {
    isProblem(t, await client.postBody(path, '{}'), 'malformed', status, undefined, { nonce: false });
  }
});

t.test('POST-as-GET: GET on resources is refused; empty payloads only where reading; kid, never jwk', async (t) => {
  const client = await account();
  const { url, order } = await client.readyOrder(['a.example.internal'], responder.tokens);
  const get = await fetch(url).then(async (response) => ({
    status: response.status,
    type: response.headers.get('content-type'),
    body: await response.json(),
  }));
  t.equal(get.status, 405, 'GET on an order: 405 (§6.3)');
  t.equal(get.type?.split(';')[0], 'application/problem+json');
  t.equal(get.body.type, 'urn:ietf:params:acme:error:malformed');
  t.equal((await client.post(url, '')).status, 200, 'POST-as-GET reads the order');
  isProblem(t, await client.post(url, {}), 'malformed', 400, /POST-as-GET/);
  isProblem(
    t,
    await client.post(client.kid!.replace(/account\/.*/, `orders/${client.kid!.split('/').pop()}`), { x: 1 }),
    'malformed',
    400,
    /POST-as-GET/,
  );
  isProblem(t, await client.post(client.directory.newOrder!, ''), 'malformed', 400, /payload must be a JSON object/);
  isProblem(t, await client.post(order.finalize, ''), 'malformed', 400, /payload must be a JSON object/);
  isProblem(t, await client.post(client.directory.newAccount!, '', { kid: undefined, jwk: client.key.jwk }), 'malformed', 400);
  isProblem(t, await client.post(url, '', { kid: undefined, jwk: client.key.jwk }), 'malformed', 400, /kid/);
  const authorization = order.authorizations[0];
  isProblem(t, await client.post(authorization, { status: 'valid' }), 'malformed', 400, /deactivated/);
  const { csr } = await csrFor(['a.example.internal']);
  const done = await client.post(order.finalize, { csr });
  t.equal(done.status, 200, JSON.stringify(done.body));
  t.equal(
    (await client.post(done.body.certificate, '')).type.split(';')[0],
    'application/pem-certificate-chain',
    'the certificate by POST-as-GET',
  );
  isProblem(t, await client.post(done.body.certificate, {}), 'malformed', 400, /POST-as-GET/);
  const certificateGet = await fetch(done.body.certificate);
  t.equal(certificateGet.status, 405, 'GET on a certificate: 405');
  t.equal((await fetch(client.directory.newNonce!)).status, 204, 'GET newNonce: 204 (§7.2)');
  t.equal((await fetch(client.directory.newNonce!, { method: 'HEAD' })).status, 200, 'HEAD newNonce: 200');
});

t.test("tenancy: an account reaches only its own CA, never another tenant's or another CA of its tenant", async (t) => {
  const client = await account(caA);
  const order = { identifiers: [{ type: 'dns', value: 'a.example.internal' }] };
  for (const [label, other] of [
    ["tenant B's CA", caB],
    ["another of A's CAs", caA2],
  ] as const) {
    const there = await new RawAcme(directoryOf(other), client.key).init();
    const newOrder = there.directory.newOrder!;
    const accountId = client.kid!.split('/').pop();
    isProblem(t, await there.post(newOrder, order, { kid: client.kid, jwk: undefined }), 'accountDoesNotExist', 400);
    isProblem(
      t,
      await there.post(newOrder, order, { kid: `${server.baseUrl}/acme/${other}/account/${accountId}`, jwk: undefined }),
      'accountDoesNotExist',
      400,
    );
    isProblem(
      t,
      await there.post(there.directory.newAccount!, { onlyReturnExisting: true }, { jwk: client.key.jwk }),
      'accountDoesNotExist',
      400,
    );
    // A's EAB key does not open an account on the other CA.
    const eab = await eabKey(api, caA);
    const url = there.directory.newAccount!;
    const refused = await there.post(url, { externalAccountBinding: eabJws(eab, client.key.jwk, url) }, { jwk: client.key.jwk });
    isProblem(t, refused, 'unauthorized', 403, /unknown or revoked/);
    t.equal(await prisma.acmeOrder.count({ where: { caId: other } }), 0, `${label}: no order`);
    t.equal(await prisma.acmeAccount.count({ where: { caId: other } }), 0, `${label}: no account`);
  }
  // An order of A read through B's directory, and by another account of A's CA.
  const { url } = await client.readyOrder(['b.example.internal'], responder.tokens);
  const b = await account(caB, OTHER_DOMAIN);
  isProblem(t, await b.post(url.replace(caA, caB), ''), 'malformed', 404, /not found/);
  isProblem(t, await b.post(url, '', { kid: b.kid }), 'accountDoesNotExist', 400);
  const sibling = await account(caA);
  isProblem(t, await sibling.post(url, ''), 'malformed', 404, /not found/);
  isProblem(t, await sibling.post(client.kid!, ''), 'unauthorized', 403);
});

t.test("identifiers outside the CA's policy: rejectedIdentifier; unknown types: unsupportedIdentifier", async (t) => {
  const client = await account();
  const newOrder = client.directory.newOrder!;
  const cases: [unknown[], string, RegExp][] = [
    [[{ type: 'dns', value: 'evil.example.com' }], 'rejectedIdentifier', /evil\.example\.com/],
    [
      [
        { type: 'dns', value: 'a.example.internal' },
        { type: 'dns', value: 'x.example.org' },
      ],
      'rejectedIdentifier',
      /x\.example\.org/,
    ],
    [[{ type: 'dns', value: '*.example.com' }], 'rejectedIdentifier', /example\.com/],
    [[{ type: 'dns', value: 'example.internal' }], 'rejectedIdentifier', /example\.internal/],
    [[{ type: 'ip', value: '10.0.0.1' }], 'rejectedIdentifier', /10\.0\.0\.1/],
    [[{ type: 'dns', value: 'localhost' }], 'rejectedIdentifier', /localhost/],
    [[{ type: 'email', value: 'a@example.internal' }], 'unsupportedIdentifier', /email/],
  ];
  for (const [identifiers, type, detail] of cases) isProblem(t, await client.post(newOrder, { identifiers }), type, 400, detail);
  isProblem(t, await client.post(newOrder, { identifiers: [] }), 'malformed', 400);
  t.equal(await prisma.acmeOrder.count({ where: { accountId: client.kid!.split('/').pop() } }), 0, 'no order was stored');
});

t.test("finalize with a CSR whose names are not the order's, or whose key is compressed: badCSR, the order stays ready", async (t) => {
  const client = await account();
  const names = ['a.example.internal', 'b.example.internal'];
  const pending = await client.newOrder(['c.example.internal']);
  isProblem(t, await client.post(pending.body.finalize, { csr: (await csrFor(['c.example.internal'])).csr }), 'orderNotReady', 403);
  const { url, order } = await client.readyOrder(names, responder.tokens);
  const wrong: [string, string[], string?][] = [
    ['a name short', [names[0]!]],
    ['a name more', [...names, 'c.example.internal']],
    ['another name', [names[0]!, 'c.example.internal']],
  ];
  for (const [label, sans, cn] of wrong) {
    t.comment(label);
    isProblem(t, await client.post(order.finalize, { csr: (await csrFor(sans, cn)).csr }), 'badCSR', 400, /names/);
  }
  // acme-client always puts the common name among the SANs; openssl does not have to.
  const { csr: pem } = await opensslCsr(
    dir,
    'cn-outside',
    [...KEY_ARGS.p256],
    ['-subj', '/CN=c.example.internal', '-addext', `subjectAltName=${names.map((name) => `DNS:${name}`).join(',')}`],
  );
  isProblem(t, await client.post(order.finalize, { csr: finalizeCsr(pem) }), 'badCSR', 400, /names/);
  // The right names on a compressed point: Go and Java could not read the certificate (RFC 5480 §2.2).
  const { keyFile } = await opensslCsr(dir, 'plain', [...KEY_ARGS.p256]);
  const compressedKey = dir.file('compressed.key');
  t.ok((await openssl(['ec', '-in', keyFile, '-conv_form', 'compressed', '-out', compressedKey])).ok);
  const sans = `subjectAltName=${names.map((name) => `DNS:${name}`).join(',')}`;
  const compressed = await openssl(['req', '-new', '-key', compressedKey, '-subj', `/CN=${names[0]}`, '-addext', sans]);
  isProblem(t, await client.post(order.finalize, { csr: finalizeCsr(compressed.stdout) }), 'badCSR', 400, /uncompressed P-256 point/);
  isProblem(t, await client.post(order.finalize, { csr: Buffer.from('not a CSR').toString('base64url') }), 'badCSR', 400);
  isProblem(t, await client.post(order.finalize, { csr: 'a+b/c=' }), 'malformed', 400);
  t.equal((await client.post(url, '')).body.status, 'ready', 'still ready after the refusals');
  const done = await client.post(order.finalize, { csr: (await csrFor([...names].reverse())).csr });
  t.equal(done.body.status, 'valid', `the right names in another order are accepted: ${JSON.stringify(done.body)}`);
});

t.test("a deactivated account's key is refused with 401 (§7.3.6), new-account included", async (t) => {
  const client = await account();
  t.equal((await client.post(client.kid!, { status: 'deactivated' })).body.status, 'deactivated');
  isProblem(
    t,
    await client.post(client.directory.newOrder!, { identifiers: [{ type: 'dns', value: 'a.example.internal' }] }),
    'unauthorized',
    401,
    /deactivated/,
  );
  const url = client.directory.newAccount!;
  isProblem(
    t,
    await client.post(url, { onlyReturnExisting: true }, { jwk: client.key.jwk, kid: undefined }),
    'unauthorized',
    401,
    /deactivated/,
  );
  isProblem(t, await client.newAccount(await eabKey(api, caA)), 'unauthorized', 401, /deactivated/);
});

t.test('an order whose authorization the account deactivated is invalid, and says why', async (t) => {
  const client = await account();
  const created = await client.newOrder(['b.example.internal']);
  const deactivated = await client.post(created.body.authorizations[0], { status: 'deactivated' });
  t.equal(deactivated.body.status, 'deactivated');
  const order = (await client.post(created.headers.get('location')!, '')).body;
  t.equal(order.status, 'invalid');
  t.match(
    order.error,
    { type: 'urn:ietf:params:acme:error:unauthorized', detail: /was deactivated by the account/ },
    'not "the order expired"',
  );
});

t.test('finalize with the CSR of a CA this service holds the key of: badCSR, nothing issued', async (t) => {
  const pending = await api.call('POST', '/v1/private-certificate-authorities', {
    type: 'SUBORDINATE',
    distinguished_name: { ...DN, common_name: 'a.example.internal' },
    key_algorithm: 'EC256',
  });
  t.equal(pending.status, 200, JSON.stringify(pending.body));
  const { csr: pem } = (await api.call('GET', `/v1/private-certificate-authorities/${pending.body.ca_id}/csr`)).body;
  const client = await account();
  const { order } = await client.readyOrder(['a.example.internal'], responder.tokens);
  const certificates = await prisma.certificate.count();
  isProblem(t, await client.post(order.finalize, { csr: finalizeCsr(pem) }), 'badCSR', 400, /a CA key held by this service/);
  t.equal(await prisma.certificate.count(), certificates, 'nothing issued');
});

t.test('a CA that cannot issue now refuses finalize as unauthorized, not badCSR; the order stays ready', async (t) => {
  const client = await account(caA2);
  const { url, order } = await client.readyOrder(['a.example.internal'], responder.tokens);
  t.equal((await api.call('POST', `/v1/private-certificate-authorities/${caA2}/disable`)).status, 204);
  const { csr } = await csrFor(['a.example.internal']);
  isProblem(t, await client.post(order.finalize, { csr }), 'unauthorized', 403, /does not issue now.*DISABLED/);
  t.equal((await client.post(url, '')).body.status, 'ready', 'the order can be finalized once the CA issues again');
  t.equal((await api.call('POST', `/v1/private-certificate-authorities/${caA2}/enable`)).status, 204);
  t.equal((await client.post(order.finalize, { csr })).body.status, 'valid');
});

t.test('a used-up certificate quota refuses finalize as rateLimited (429), not badCSR; the order stays ready', async (t) => {
  const client = await account(caA2);
  const { url, order } = await client.readyOrder(['a.example.internal'], responder.tokens);
  const domainId = (await prisma.certificateAuthority.findUniqueOrThrow({ where: { id: caA2 } })).domainId;
  const counted = async () =>
    (await prisma.$queryRawUnsafe<{ used: number }[]>('SELECT used FROM domain_certificate_usage WHERE domain_id = $1', domainId))[0]
      ?.used ?? 0;
  const before = await counted();
  // The quota's counter far past any quota the server can be configured with (an int, so not at its maximum).
  await prisma.$executeRawUnsafe(
    `INSERT INTO domain_certificate_usage (domain_id, used) VALUES ($1, 2000000000)
     ON CONFLICT (domain_id) DO UPDATE SET used = 2000000000`,
    domainId,
  );
  const { csr } = await csrFor(['a.example.internal']);
  isProblem(t, await client.post(order.finalize, { csr }), 'rateLimited', 429, /quota .* is used up/);
  t.equal((await client.post(url, '')).body.status, 'ready', 'the order can be finalized once there is room');
  await prisma.$executeRawUnsafe('UPDATE domain_certificate_usage SET used = $2 WHERE domain_id = $1', domainId, before);
  t.equal((await client.post(order.finalize, { csr })).body.status, 'valid');
});

t.test("a CA nearer its end than the policy's days issues up to its own not_after, not a refusal of every order", async (t) => {
  const caId = await acmeCa(api, policy, undefined, 'acme-root-ending', { type: 'DAY', value: 10 });
  const client = await account(caId);
  const { order } = await client.readyOrder(['c.example.internal'], responder.tokens);
  const done = await client.post(order.finalize, { csr: (await csrFor(['c.example.internal'])).csr });
  t.equal(done.body.status, 'valid', JSON.stringify(done.body));
  const certificate = await prisma.certificate.findUniqueOrThrow({ where: { id: String(done.body.certificate).split('/').pop()! } });
  const ca = await prisma.certificateAuthority.findUniqueOrThrow({ where: { id: caId } });
  const [leafEnd, caEnd] = await Promise.all(
    [certificate.certificateDer, ca.certificateDer!].map(async (der) => {
      const text = await certificateText(dir, toPem('CERTIFICATE', new Uint8Array(der)));
      return Date.parse(/Not After : (.+)/.exec(text)![1]!);
    }),
  );
  t.ok(leafEnd <= caEnd, `openssl: the certificate ends (${new Date(leafEnd).toISOString()}) no later than its CA`);
  t.ok(leafEnd > clock.now().getTime() + 9 * 24 * HOUR, "and is valid for the CA's remaining days, not a default 90");
});

t.test('two finalizes of one order with different CSRs: the order valid with its certificate, whatever the interleaving', async (t) => {
  const client = await account();
  const { url, order } = await client.readyOrder(['b.example.internal'], responder.tokens);
  const csrs = await Promise.all([csrFor(['b.example.internal']), csrFor(['b.example.internal'])]);
  const answers = await Promise.all(csrs.map(({ csr }) => client.post(order.finalize, { csr })));
  for (const answer of answers) {
    t.ok(answer.body.status === 'valid' || answer.body.type === 'urn:ietf:params:acme:error:orderNotReady', JSON.stringify(answer.body));
  }
  const final = (await client.post(url, '')).body;
  t.equal(final.status, 'valid', 'the order is not failed by the request that lost');
  t.ok(final.certificate, 'and names its certificate');
  const certificateId = String(final.certificate).split('/').pop()!;
  t.equal((await prisma.certificate.findUniqueOrThrow({ where: { id: certificateId } })).commonName, 'b.example.internal');
});

t.test('a certificate says only what the order proved: the CN, the identifiers, serverAuth + clientAuth', async (t) => {
  const client = await account();
  const finalizeWith = async (names: string[], reqArgs: string[]) => {
    const { order } = await client.readyOrder(names, responder.tokens);
    const { csr: pem } = await opensslCsr(dir, `proved-${names.length}`, [...KEY_ARGS.p256], reqArgs);
    const done = await client.post(order.finalize, { csr: finalizeCsr(pem) });
    t.equal(done.body.status, 'valid', JSON.stringify(done.body));
    const row = await prisma.certificate.findUniqueOrThrow({ where: { id: String(done.body.certificate).split('/').pop()! } });
    return certificateText(dir, toPem('CERTIFICATE', new Uint8Array(row.certificateDer)));
  };
  // O and OU authorize in some relying parties (Kubernetes groups); an EKU the account chose could sign code.
  const text = await finalizeWith(
    ['a.example.internal', 'b.example.internal'],
    [
      '-subj',
      '/C=US/O=system-masters/OU=Finance Admins/CN=a.example.internal',
      '-addext',
      'subjectAltName=DNS:a.example.internal,DNS:b.example.internal',
      '-addext',
      'extendedKeyUsage=codeSigning',
    ],
  );
  t.match(text, /Subject: CN ?= ?a\.example\.internal\n/, 'the subject is the common name alone');
  t.match(text, /Extended Key Usage: *\n *TLS Web Server Authentication, TLS Web Client Authentication\n/);
  t.match(text, /DNS:a\.example\.internal, DNS:b\.example\.internal/);
  // RFC 8555 §7.4: a dns identifier may be named by the common name alone; the certificate still carries the SAN.
  const cnOnly = await finalizeWith(['c.example.internal'], ['-subj', '/CN=c.example.internal']);
  t.match(cnOnly, /X509v3 Subject Alternative Name: *\n *DNS:c\.example\.internal\n/);

  // The account key is not a certificate key (it signs the account's requests, revocations included).
  const { order } = await client.readyOrder(['a.example.internal'], responder.tokens);
  const keyFile = await dir.write('account-key.pem', client.key.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString());
  const made = await openssl([
    'req',
    '-new',
    '-key',
    keyFile,
    '-subj',
    '/CN=a.example.internal',
    '-outform',
    'DER',
    '-out',
    dir.file('account-key.csr'),
  ]);
  t.ok(made.ok, made.stderr);
  const csr = (await dir.read('account-key.csr')).toString('base64url');
  isProblem(t, await client.post(order.finalize, { csr }), 'badCSR', 400, /must not be the account key/);
});

t.test(
  'failed challenges: connection (nothing listening), unauthorized (wrong key authorization, 404); authorization and order invalid',
  async (t) => {
    const client = await account();
    const attempt = async (name: string, answer?: (token: string) => string) => {
      const created = await client.newOrder([name]);
      const authorizationUrl = created.body.authorizations[0];
      const challenge = (await client.post(authorizationUrl, '')).body.challenges.find((item: { type: string }) => item.type === 'http-01');
      if (answer) responder.tokens.set(challenge.token, answer(challenge.token));
      const responded = await client.post(challenge.url, {});
      t.ok(responded.status < 500, `challenge response: ${responded.status}`);
      return {
        challenge: responded.body,
        authorization: (await client.post(authorizationUrl, '')).body,
        order: (await client.post(created.headers.get('location')!, '')).body,
        finalize: created.body.finalize,
      };
    };
    const dead = await attempt('dead.example.internal');
    t.match(dead.challenge, { status: 'invalid', error: { type: 'urn:ietf:params:acme:error:connection' } }, dead.challenge.error?.detail);
    t.equal(dead.authorization.status, 'invalid');
    t.match(dead.order, { status: 'invalid', error: { type: 'urn:ietf:params:acme:error:connection' } });

    const wrongKey = await attempt('wrong.example.internal', (token) => `${token}.not-this-accounts-thumbprint`);
    t.match(wrongKey.challenge, {
      status: 'invalid',
      error: { type: 'urn:ietf:params:acme:error:unauthorized', detail: /key authorization/ },
    });
    t.equal(wrongKey.authorization.status, 'invalid');
    t.equal(wrongKey.order.status, 'invalid');
    isProblem(t, await client.post(wrongKey.finalize, { csr: (await csrFor(['wrong.example.internal'])).csr }), 'orderNotReady', 403);
    const again = await client.post(wrongKey.challenge.url, {});
    t.equal(again.body.status, 'invalid', 'no second try on a failed challenge');

    const missing = await attempt('c.example.internal');
    t.match(missing.challenge, { status: 'invalid', error: { type: 'urn:ietf:params:acme:error:unauthorized', detail: /HTTP 404/ } });
    t.equal(missing.authorization.status, 'invalid');
  },
);

t.test('an expired order (ManualClock): read as invalid, its authorization expired, finalize and challenges refused', async (t) => {
  const client = await account();
  const created = await client.newOrder(['old.example.internal']);
  const url = created.headers.get('location')!;
  const authorizationUrl = created.body.authorizations[0];
  const challenge = (await client.post(authorizationUrl, '')).body.challenges.find((item: { type: string }) => item.type === 'http-01');
  const staleNonce = await client.nonce();
  clock.advance(25 * HOUR);
  const order = (await client.post(url, '')).body;
  t.match(order, { status: 'invalid', error: { type: /urn:ietf:params:acme:error:/ } }, 'the order reads invalid');
  t.equal((await client.post(authorizationUrl, '')).body.status, 'expired', 'its authorization reads expired');
  responder.tokens.set(challenge.token, client.keyAuthorization(challenge.token));
  const responded = await client.post(challenge.url, {});
  isProblem(t, responded, 'malformed', 403, /expired/);
  t.equal((await prisma.acmeChallenge.findFirstOrThrow({ where: { token: challenge.token } })).status, 'pending', 'nothing was validated');
  isProblem(
    t,
    await client.post(created.body.finalize, { csr: (await csrFor(['old.example.internal'])).csr }),
    'orderNotReady',
    403,
    /invalid/,
  );
  isProblem(
    t,
    await client.postBody(url, signJws(client.key, { nonce: staleNonce, url, kid: client.kid }, '')),
    'badNonce',
    400,
    /expired/,
  );
});

t.test('no reply of this file was a 5xx; every refusal was a problem document', async (t) => {
  t.ok(replies.length > 100, `${replies.length} replies`);
  t.same(
    replies.filter((reply) => reply.status >= 500).map((reply) => [reply.status, reply.body]),
    [],
    'no 5xx',
  );
  t.same(
    replies
      .filter((reply) => reply.status >= 400 && reply.type.split(';')[0] !== 'application/problem+json')
      .map((reply) => [reply.status, reply.type]),
    [],
    'refusals as application/problem+json',
  );
});
