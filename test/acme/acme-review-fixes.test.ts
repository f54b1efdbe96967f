/**
 * ACME order and authorization state under interleavings, made deterministic by holding the server at one point
 * (its read of an order, or the CA key's signature) while the test sends the other request: an authorization
 * deactivated before finalize claims the order (nothing issued, RFC 8555 §7.1.6), or while it issues (refused); a
 * finalize by another instance while the order is processing (it neither issues nor fails the order); an issuance
 * that fails (the order ready again, §7.4). Then: which authorizations can be deactivated (§7.5.2), revocation by
 * an account holding authorizations for every name of the certificate (§7.6), the orders list in pages (§7.1.2.1),
 * and `dns` identifiers that are IPv4 addresses in disguise (RFC 8738 §3).
 */
import { randomUUID } from 'node:crypto';
import t, { type Test } from 'tap';
import { buildApp } from '../../src/app.ts';
import { errors } from '../../src/errors.ts';
import { signerOver, type KeyStores } from '../../src/keystore/index.ts';
import type { KeyStore } from '../../src/keystore/key-store.ts';
import { csrNamesMatch, type Identifier } from '../../src/services/acme/acme-identifiers.ts';
import { DN } from '../ca/support.ts';
import { acmeFixture, eabKey, startAcmeServer } from './support.ts';
import { RawAcme, accountKey, b64, csrFor, finalizeCsr, signJws, type Reply } from './jws-client.ts';

const HOUR = 3_600_000;

/** The CA key's next signature waits for the test (`hold`), or every signature fails while `failing`. */
const signing: { held: { reached: () => void; released: Promise<void> } | null; failing: boolean } = { held: null, failing: false };
let keyStores: KeyStores | undefined;
const server = await startAcmeServer({
  env: {
    ACME_STATIC_HOSTS: [
      ...['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'w', 'x'].map((name) => `${name}.example.internal=127.0.0.1`),
      'dead.example.internal=127.0.0.2',
    ].join(','),
  },
  wrapKeyStores: (stores) => {
    const wrap = (store: KeyStore): KeyStore => ({
      ...store,
      async sign(...args) {
        if (signing.failing) throw errors.unavailable('the key store is unreachable');
        const held = signing.held;
        if (held) {
          signing.held = null;
          held.reached();
          await held.released;
        }
        return store.sign(...args);
      },
    });
    const software = wrap(stores.software);
    const pkcs11 = stores.pkcs11 && wrap(stores.pkcs11);
    const get: KeyStores['get'] = (kind) => (kind === 'software' ? software : kind === 'pkcs11' && pkcs11 ? pkcs11 : stores.get(kind));
    keyStores = { ...stores, software, pkcs11, get, signerOf: signerOver(get) };
    return keyStores;
  },
});
const { responder, api, prisma, caId, directoryUrl } = await acmeFixture(t, server);

/** A point to hold the server at: `reached` once it is there, `release` lets it go on. */
function holdPoint() {
  let reached!: () => void;
  let release!: () => void;
  const reachedP = new Promise<void>((resolve) => {
    reached = resolve;
  });
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  return { reached, released, whenReached: reachedP, release };
}

/** Holds the next signature by the CA's key (the certificate's, in a finalize). */
function holdNextSignature() {
  const point = holdPoint();
  signing.held = { reached: point.reached, released: point.released };
  return point;
}

/** Holds the server right after its next read of order `orderId` (acmeOrder.findUnique), before it acts on it. */
const orderReads: { orderId: string; reached: () => void; released: Promise<void> }[] = [];
const orders = prisma.acmeOrder as unknown as { findUnique: (args: { where: { id: string } }) => Promise<unknown> };
const findOrder = orders.findUnique;
orders.findUnique = async function heldFindUnique(this: unknown, args) {
  const found = await findOrder.call(this, args);
  const index = orderReads.findIndex((read) => read.orderId === args.where.id);
  if (index >= 0) {
    const [read] = orderReads.splice(index, 1);
    read!.reached();
    await read!.released;
  }
  return found;
};
function holdNextOrderRead(orderId: string) {
  const point = holdPoint();
  orderReads.push({ orderId, reached: point.reached, released: point.released });
  return point;
}

async function account(): Promise<RawAcme> {
  const client = await new RawAcme(directoryUrl, accountKey('ES256')).init();
  const created = await client.newAccount(await eabKey(api, caId));
  if (created.status !== 201) throw new Error(`newAccount: ${created.status} ${JSON.stringify(created.body)}`);
  return client;
}

function isProblem(t: Test, reply: Reply, type: string, status: number, detail?: RegExp): void {
  t.equal(reply.status, status, `HTTP ${status} (${JSON.stringify(reply.body)})`);
  t.equal(reply.body?.type, `urn:ietf:params:acme:error:${type}`, type);
  if (detail) t.match(reply.body?.detail, detail);
}

const issuedCount = () => prisma.certificate.count({ where: { issuerId: caId } });
const idOf = (url: string) => url.split('/').pop()!;

// One certificate first, so that the server has read the issuer and issues later ones outside a transaction of its own.
{
  const client = await account();
  const { order } = await client.readyOrder(['x.example.internal'], responder.tokens);
  const done = await client.post(order.finalize, { csr: (await csrFor(['x.example.internal'])).csr });
  if (done.body.status !== 'valid') throw new Error(`warm-up finalize: ${JSON.stringify(done.body)}`);
}

t.test(
  'an authorization deactivated after finalize read the order ready, before it claimed it: orderNotReady, nothing issued',
  async (t) => {
    const client = await account();
    const { url, order } = await client.readyOrder(['a.example.internal'], responder.tokens);
    const before = await issuedCount();
    const held = holdNextOrderRead(idOf(url));
    const finalizing = client.post(order.finalize, { csr: (await csrFor(['a.example.internal'])).csr });
    await held.whenReached;
    const deactivated = await client.post(order.authorizations[0], { status: 'deactivated' });
    t.equal(deactivated.body.status, 'deactivated', 'the order was still ready: its authorization is deactivated');
    held.release();
    const answer = await finalizing;
    isProblem(t, answer, 'orderNotReady', 403, /invalid/);
    t.equal(await issuedCount(), before, 'no certificate issued (none the account could download or revoke)');
    const final = (await client.post(url, '')).body;
    t.equal(final.status, 'invalid');
    t.notOk(final.certificate, 'and it names no certificate');
  },
);

t.test('deactivating an authorization of an order being issued is refused; the issuance completes, the order valid', async (t) => {
  const client = await account();
  const { url, order } = await client.readyOrder(['b.example.internal'], responder.tokens);
  const held = holdNextSignature();
  const finalizing = client.post(order.finalize, { csr: (await csrFor(['b.example.internal'])).csr });
  await held.whenReached;
  t.equal((await client.post(url, '')).body.status, 'processing', 'the order is processing while its certificate is signed');
  const refused = await client.post(order.authorizations[0], { status: 'deactivated' });
  isProblem(t, refused, 'malformed', 409, /being finalized/);
  t.equal((await client.post(order.authorizations[0], '')).body.status, 'valid', 'the authorization is still valid');
  held.release();
  const answer = await finalizing;
  t.equal(answer.status, 200);
  t.equal(answer.body.status, 'valid');
  t.ok(answer.body.certificate, 'with its certificate');
  const final = (await client.post(url, '')).body;
  t.equal(final.status, 'valid');
  t.equal(final.certificate, answer.body.certificate);
  const deactivated = await client.post(order.authorizations[0], { status: 'deactivated' });
  t.equal(deactivated.body.status, 'deactivated', 'once the order is valid, the authorization can be deactivated');
  t.equal((await client.post(url, '')).body.status, 'valid', 'and the order stays valid');
});

t.test('a finalize by another instance while the order is processing neither issues nor fails the order', async (t) => {
  // Another instance of the service over the same database: it shares no in-process state with the first.
  const other = await buildApp({
    config: server.harness.config,
    database: server.harness.database,
    keyStores: keyStores!,
    logDestination: false,
    console: false,
  });
  t.teardown(() => other.close());
  await other.ready();
  // The CSR of a CA whose key this service holds: the issuance refuses it (badCSR), which used to fail the order.
  const pending = await api.call('POST', '/v1/private-certificate-authorities', {
    type: 'SUBORDINATE',
    distinguished_name: { ...DN, common_name: 'c.example.internal' },
    key_algorithm: 'EC256',
  });
  t.equal(pending.status, 200, JSON.stringify(pending.body));
  const heldKeyCsr = (await api.call('GET', `/v1/private-certificate-authorities/${pending.body.ca_id}/csr`)).body.csr as string;

  const client = await account();
  const { url, order } = await client.readyOrder(['c.example.internal'], responder.tokens);
  const held = holdNextSignature();
  const finalizing = client.post(order.finalize, { csr: (await csrFor(['c.example.internal'])).csr });
  await held.whenReached;
  const jws = signJws(client.key, { nonce: await client.nonce(), url: order.finalize, kid: client.kid }, { csr: finalizeCsr(heldKeyCsr) });
  const elsewhere = await other.inject({
    method: 'POST',
    url: new URL(order.finalize).pathname,
    headers: { 'content-type': 'application/jose+json' },
    payload: JSON.stringify(jws),
  });
  t.equal(elsewhere.statusCode, 403, elsewhere.body);
  t.equal(elsewhere.json().type, 'urn:ietf:params:acme:error:orderNotReady');
  t.equal((await client.post(url, '')).body.status, 'processing', 'the order is still processing, not failed');
  held.release();
  const answer = await finalizing;
  t.equal(answer.body.status, 'valid', JSON.stringify(answer.body));
  const final = (await client.post(url, '')).body;
  t.equal(final.status, 'valid');
  t.ok(final.certificate, 'the order names the certificate issued');
  const chain = await client.post(final.certificate, '');
  t.equal(chain.status, 200, 'which the account downloads');
});

t.test('an issuance that fails (the key store unreachable) leaves the order ready; finalizing again issues', async (t) => {
  const client = await account();
  const { url, order } = await client.readyOrder(['d.example.internal'], responder.tokens);
  const { csr } = await csrFor(['d.example.internal']);
  const before = await issuedCount();
  signing.failing = true;
  let failed: Reply;
  try {
    failed = await client.post(order.finalize, { csr });
  } finally {
    signing.failing = false;
  }
  t.ok(failed.status >= 500, `the failure is the server's (${failed.status} ${JSON.stringify(failed.body)})`);
  t.equal((await client.post(url, '')).body.status, 'ready', 'the order is ready again, not processing for good');
  t.equal(await issuedCount(), before, 'nothing issued');
  const retried = await client.post(order.finalize, { csr });
  t.equal(retried.status, 200);
  t.equal(retried.body.status, 'valid');
  t.equal(await issuedCount(), before + 1, 'one certificate');
});

t.test(
  'only a pending or valid authorization can be deactivated (RFC 8555 §7.1.6): invalid, deactivated, expired are malformed',
  async (t) => {
    const client = await account();
    const created = await client.newOrder(['e.example.internal']);
    const [authorization] = created.body.authorizations as string[];
    t.equal((await client.post(authorization!, { status: 'deactivated' })).body.status, 'deactivated', 'pending -> deactivated');
    isProblem(t, await client.post(authorization!, { status: 'deactivated' }), 'malformed', 400, /is deactivated/);

    const failing = await client.newOrder(['dead.example.internal']);
    const failed = failing.body.authorizations[0] as string;
    const challenge = (await client.post(failed, '')).body.challenges.find((item: { type: string }) => item.type === 'http-01');
    await client.post(challenge.url, {});
    t.equal((await client.post(failed, '')).body.status, 'invalid', 'a failed challenge made it invalid');
    isProblem(t, await client.post(failed, { status: 'deactivated' }), 'malformed', 400, /is invalid/);
    t.equal((await client.post(failed, '')).body.status, 'invalid', 'and it stays invalid');

    const expiring = await client.newOrder(['e.example.internal']);
    const expired = expiring.body.authorizations[0] as string;
    await prisma.acmeAuthorization.update({ where: { id: idOf(expired) }, data: { expiresAt: new Date(Date.now() - HOUR) } });
    isProblem(t, await client.post(expired, { status: 'deactivated' }), 'malformed', 400, /is expired/);
    t.equal((await prisma.acmeAuthorization.findUniqueOrThrow({ where: { id: idOf(expired) } })).status, 'pending', 'unchanged');

    const { order } = await client.readyOrder(['e.example.internal'], responder.tokens);
    t.equal((await client.post(order.authorizations[0], { status: 'deactivated' })).body.status, 'deactivated', 'valid -> deactivated');
  },
);

/** A certificate of the CA issued through the REST API (no ACME order), its DER in base64url. */
async function restCertificate(commonName: string, names: { type: string; value: string }[]): Promise<string> {
  const response = await api.call('POST', '/v1/private-certificates', {
    issuer_id: caId,
    key_algorithm: 'EC256',
    distinguished_name: { common_name: commonName },
    subject_alternative_names: names,
    validity: { type: 'DAY', value: 30 },
  });
  if (response.status !== 200) throw new Error(`issue: ${response.status} ${JSON.stringify(response.body)}`);
  const row = await prisma.certificate.findUniqueOrThrow({ where: { id: response.body.certificate_id as string } });
  return b64(Buffer.from(row.certificateDer));
}

t.test('revoke-cert by an account holding valid authorizations for every name of the certificate (RFC 8555 §7.6)', async (t) => {
  const owner = await account();
  const { order } = await owner.readyOrder(['g.example.internal'], responder.tokens);
  const issued = await owner.post(order.finalize, { csr: (await csrFor(['g.example.internal'])).csr });
  const row = await prisma.certificate.findUniqueOrThrow({ where: { id: idOf(issued.body.certificate) } });
  const ordered = b64(Buffer.from(row.certificateDer));

  const stranger = await account();
  isProblem(t, await stranger.post(stranger.directory.revokeCert!, { certificate: ordered }), 'unauthorized', 403, /neither ordered/);
  const proven = await stranger.readyOrder(['g.example.internal'], responder.tokens);
  const authorizationId = idOf(proven.order.authorizations[0]);
  await prisma.acmeAuthorization.update({ where: { id: authorizationId }, data: { expiresAt: new Date(Date.now() - HOUR) } });
  isProblem(t, await stranger.post(stranger.directory.revokeCert!, { certificate: ordered }), 'unauthorized', 403, /neither ordered/);
  await prisma.acmeAuthorization.update({ where: { id: authorizationId }, data: { expiresAt: new Date(Date.now() + HOUR) } });
  const revoked = await stranger.post(stranger.directory.revokeCert!, { certificate: ordered });
  t.equal(revoked.status, 200, `an account with a valid authorization for its one name revokes it (${JSON.stringify(revoked.body)})`);
  t.equal((await prisma.certificate.findUniqueOrThrow({ where: { id: row.id } })).status, 'REVOKED');

  // A DNS and an IP name: an authorization for each is needed.
  const mixed = await restCertificate('f.example.internal', [
    { type: 'DNS', value: 'f.example.internal' },
    { type: 'IP', value: '127.0.0.1' },
  ]);
  const holder = await account();
  await holder.readyOrder(['f.example.internal'], responder.tokens);
  isProblem(t, await holder.post(holder.directory.revokeCert!, { certificate: mixed }), 'unauthorized', 403, /neither ordered/);
  await holder.readyOrder(['127.0.0.1'], responder.tokens);
  t.equal((await holder.post(holder.directory.revokeCert!, { certificate: mixed })).status, 200, 'with the IP address proven too');

  // A wildcard name needs a wildcard authorization (proven by dns-01; set on the row here), not one of its base.
  const wildcard = await restCertificate('*.w.example.internal', [{ type: 'DNS', value: '*.w.example.internal' }]);
  const base = await account();
  const { order: baseOrder } = await base.readyOrder(['w.example.internal'], responder.tokens);
  isProblem(t, await base.post(base.directory.revokeCert!, { certificate: wildcard }), 'unauthorized', 403, /neither ordered/);
  await prisma.acmeAuthorization.update({ where: { id: idOf(baseOrder.authorizations[0]) }, data: { wildcard: true } });
  t.equal((await base.post(base.directory.revokeCert!, { certificate: wildcard })).status, 200, 'a wildcard authorization revokes it');

  // A name no identifier can be (an email address) is never authorized.
  const withEmail = await restCertificate('h.example.internal', [
    { type: 'DNS', value: 'h.example.internal' },
    { type: 'EMAIL', value: 'ops@example.internal' },
  ]);
  const other = await account();
  await other.readyOrder(['h.example.internal'], responder.tokens);
  isProblem(t, await other.post(other.directory.revokeCert!, { certificate: withEmail }), 'unauthorized', 403, /neither ordered/);
});

t.test('the orders list comes in pages with Link rel="next" (RFC 8555 §7.1.2.1)', async (t) => {
  const client = await account();
  const created = await client.newOrder(['a.example.internal']);
  const accountId = idOf(client.kid!);
  const first = await prisma.acmeOrder.findUniqueOrThrow({ where: { id: idOf(created.headers.get('location')!) } });
  // 204 more, several made in one millisecond (the cursor must not skip or repeat those).
  const now = Date.now();
  await prisma.acmeOrder.createMany({
    data: Array.from({ length: 204 }, (_, index) => ({
      id: randomUUID(),
      accountId,
      domainId: first.domainId,
      caId,
      status: 'pending',
      identifiers: [{ type: 'dns', value: 'a.example.internal' }],
      expiresAt: new Date(now + 24 * HOUR),
      createdAt: new Date(now - Math.floor(index / 7)),
    })),
  });
  const listUrl = `${server.baseUrl}/acme/${caId}/orders/${accountId}`;
  const seen: string[] = [];
  let next: string | undefined = listUrl;
  let pages = 0;
  while (next) {
    const page = await client.post(next, '');
    t.equal(page.status, 200, `page ${pages + 1}`);
    seen.push(...(page.body.orders as string[]));
    next = /<([^>]+)>;rel="next"/.exec(page.headers.get('link') ?? '')?.[1];
    pages++;
    if (pages > 5) break;
  }
  t.equal(pages, 3, 'three pages of at most 100');
  t.equal(seen.length, 205, 'every order listed');
  t.equal(new Set(seen).size, 205, 'none twice');
  const bad = await client.post(`${listUrl}?cursor=nonsense`, '');
  isProblem(t, bad, 'malformed', 400, /cursor/);
});

t.test('a dns identifier that is an IPv4 address in another spelling is refused, not issued as DNS:127.0.0.1 (RFC 8738 §3)', async (t) => {
  const client = await account();
  for (const value of ['0x7f.1', '2130706433.', '127.0.0.1', '1.2.3', '*.0x7f.1', 'ex%61mple.example.internal']) {
    const refused = await client.post(client.directory.newOrder!, { identifiers: [{ type: 'dns', value }] });
    isProblem(t, refused, 'rejectedIdentifier', 400);
  }
  const accepted = await client.post(client.directory.newOrder!, { identifiers: [{ type: 'dns', value: 'A.Example.Internal' }] });
  t.equal(accepted.status, 201, 'a host name in capitals is still one');
  t.same(accepted.body.identifiers, [{ type: 'dns', value: 'a.example.internal' }]);

  // An order stored before the rule: its CSR's DNS name in a numeric spelling does not match it.
  const stored: Identifier[] = [{ type: 'dns', value: '127.0.0.1' }];
  const csr = (dns: string[], commonName: string | null = null) => ({
    subjectAltNames: dns.map((value) => ({ type: 'DNS' as const, value })),
    subject: { common_name: commonName },
  });
  t.notOk(csrNamesMatch(stored, csr(['0x7f.1'])), 'a SAN 0x7f.1');
  t.notOk(csrNamesMatch(stored, csr([], '2130706433.')), 'a CN 2130706433.');
  t.notOk(csrNamesMatch([{ type: 'dns', value: 'example.internal' }], csr(['ex%61mple.internal'])), 'a percent escape');
  t.ok(csrNamesMatch([{ type: 'dns', value: '*.a.example' }], csr(['*.A.example'], '*.a.example')), 'a wildcard, any case');
});
