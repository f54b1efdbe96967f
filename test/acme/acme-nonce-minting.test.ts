/**
 * Which ACME answers mint a Replay-Nonce (each one a stored row, kept an hour): only those for a directory that
 * exists, where a client can send it back. Unknown CAs, URLs naming no ACME resource, 405, 429 and fastify's refusals
 * before routing carry none and store nothing, and unknown URLs under /acme/ share the per-address public rate limit,
 * so no flood of them writes rows or goes unthrottled. Each case speaks from an address of its own (its own budget).
 */
import { randomUUID } from 'node:crypto';
import t, { type Test } from 'tap';
import { accountKey, signJws } from './jws-client.ts';
import { acmeCa, startAcmeServer } from './support.ts';

const PUBLIC_MAX = 5;
const server = await startAcmeServer({ env: { PUBLIC_RATE_LIMIT_MAX: String(PUBLIC_MAX), RATE_LIMIT_WINDOW_MS: '60000' } });
t.teardown(() => server.close());
const { app } = server.harness;
const prisma = server.harness.database.prisma;
const caId = await acmeCa(server.api);
const base = `${server.baseUrl}/acme/${caId}`;

let addresses = 0;
/** A client address no earlier request used: a fresh public rate-limit budget. */
const freshAddress = () => `198.51.100.${++addresses}`;

type Request = { method: 'GET' | 'HEAD' | 'POST'; path: string; body?: string; contentType?: string };
const send = (from: string, { method, path, body, contentType = 'application/jose+json' }: Request) =>
  app.inject({ method, url: path, remoteAddress: from, payload: body, headers: body === undefined ? {} : { 'content-type': contentType } });

/** Sends `request` and checks whether its answer carries a nonce and whether a nonce row was stored for it. */
async function expectNonce(t: Test, from: string, request: Request, status: number, minted: boolean) {
  const before = await prisma.acmeNonce.count();
  const reply = await send(from, request);
  const what = `${request.method} ${request.path.slice(0, 80)}`;
  t.equal(reply.statusCode, status, `${what}: ${status}`);
  t.equal(reply.headers['replay-nonce'] !== undefined, minted, `${what}: ${minted ? 'a' : 'no'} Replay-Nonce`);
  t.equal(await prisma.acmeNonce.count(), before + (minted ? 1 : 0), `${what}: ${minted ? 'one nonce' : 'no nonce'} stored`);
  return reply;
}

const key = accountKey('ES256');
const jws = JSON.stringify(signJws(key, { nonce: 'bm90LWEtbm9uY2U', url: `${base}/new-account`, jwk: key.jwk }, {}));

t.test('answers for no directory, or no resource, mint no nonce', async (t) => {
  const from = freshAddress();
  const unknownCa = `/acme/${randomUUID()}`;
  const cases: [Request, number][] = [
    [{ method: 'GET', path: `${unknownCa}/directory` }, 404],
    [{ method: 'HEAD', path: `${unknownCa}/new-nonce` }, 404],
    [{ method: 'POST', path: `${unknownCa}/new-account`, body: jws }, 404],
    [{ method: 'POST', path: `/acme/${caId}/no-such-resource`, body: jws }, 404],
    [{ method: 'GET', path: `/acme/${caId}/order/x` }, 405],
  ];
  for (const [request, status] of cases) await expectNonce(t, from, request, status, false);
  // Refused by fastify before routing: an undecodable escape.
  await expectNonce(t, freshAddress(), { method: 'POST', path: `/acme/${caId}/order/%ZZ`, body: jws }, 400, false);
});

t.test("a directory's new-nonce and its refusals mint one: badNonce carries the nonce to retry with", async (t) => {
  const from = freshAddress();
  await expectNonce(t, from, { method: 'HEAD', path: `/acme/${caId}/new-nonce` }, 200, true);
  await expectNonce(t, from, { method: 'GET', path: `/acme/${caId}/new-nonce` }, 204, true);
  const refused = await expectNonce(t, from, { method: 'POST', path: `/acme/${caId}/new-account`, body: jws }, 400, true);
  t.equal(refused.json().type, 'urn:ietf:params:acme:error:badNonce');
  const wrongType = await expectNonce(
    t,
    from,
    { method: 'POST', path: `/acme/${caId}/new-account`, body: jws, contentType: 'application/json' },
    415,
    true,
  );
  t.equal(wrongType.json().type, 'urn:ietf:params:acme:error:malformed');
});

t.test('unknown URLs under /acme/ are rate-limited per address like the public routes; a 429 mints no nonce', async (t) => {
  const from = freshAddress();
  for (let i = 0; i < PUBLIC_MAX; i++) await expectNonce(t, from, { method: 'GET', path: `/acme/${i}/x` }, 404, false);
  const throttled = await expectNonce(t, from, { method: 'GET', path: `/acme/${PUBLIC_MAX}/x` }, 429, false);
  t.equal(throttled.json().type, 'urn:ietf:params:acme:error:rateLimited', 'as a problem document');
  t.match(throttled.headers['retry-after'], /^[1-9]\d*$/);
  await expectNonce(t, from, { method: 'HEAD', path: `/acme/${caId}/new-nonce` }, 429, false);
  t.equal((await send(freshAddress(), { method: 'GET', path: '/acme/x/x' })).statusCode, 404, 'another address has its own budget');
});
