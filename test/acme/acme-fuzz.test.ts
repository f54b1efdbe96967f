/**
 * Robustness of the ACME protocol routes (RFC 8555), which the OpenAPI-driven route fuzz does not reach (they are
 * left out of the document): flattened JWS bodies from a registered account, mutated at each layer —
 *   - the envelope: members missing, retyped, added, not base64url (not re-signed);
 *   - the protected header: alg, jwk (keys of every kind and broken ones), kid, nonce, url — re-signed by the
 *     account key, so the mutated header itself is what the server judges;
 *   - the payload, re-signed: new-account with its External Account Binding, new-order identifiers, finalize CSRs
 *     (DER mutated), revoke-cert certificates (DER mutated) and reasons, key-change's inner JWS, account updates;
 *   - the signature bytes, the body's raw bytes and its Content-Type;
 *   - the URL: the CA's id, the resource's id or its name replaced by junk (NUL, non-ASCII, header syntax, unknown
 *     ids, URNs).
 * Every answer is a 2xx, or a 4xx problem document (application/problem+json, an ACME error type, its own status);
 * never a 5xx. Successes and badNonce refusals carry a Replay-Nonce (RFC 8555 §6.5 requires it there; answers that
 * reached no directory carry none). Seeded (FUZZ_SEED replays a run), FUZZ_SCALE multiplies the count.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import t from 'tap';
import { fuzzCases, fuzzer } from '../helpers/fuzz.ts';
import { RawAcme, accountKey, b64, csrFor, eabJws, read, signJws, type AccountKey, type Reply } from './jws-client.ts';
import { acmeCa, eabKey, http01Responder, startAcmeServer } from './support.ts';

const NAMES = ['a.example.internal', 'b.example.internal'];
const server = await startAcmeServer({ env: { ACME_STATIC_HOSTS: NAMES.map((name) => `${name}=127.0.0.1`).join(',') } });
t.teardown(() => server.close());
const responder = await http01Responder(server.http01Port);
t.teardown(() => responder.close());
const caId = await acmeCa(server.api, { enabled: true, allowed_identifiers: ['*.example.internal'] });
const directoryUrl = `${server.baseUrl}/acme/${caId}/directory`;

const client = await new RawAcme(directoryUrl, accountKey('ES256')).init();
const registered = await client.newAccount(await eabKey(server.api, caId));
if (registered.status !== 201) throw new Error(`newAccount: ${registered.status} ${JSON.stringify(registered.body)}`);
const { directory } = client;
const ordersUrl = registered.body.orders as string;

/** A ready order to finalize; another is made when it is finalized or failed (a CSR the CA refused fails it). */
async function readyOrder(): Promise<{ url: string; finalize: string }> {
  const { url, order } = await client.readyOrder(NAMES, responder.tokens);
  return { url, finalize: order.finalize as string };
}
let ready = await readyOrder();
const goodCsr = await csrFor(NAMES);
const goodCsrDer = Buffer.from(goodCsr.csr, 'base64url');

// An issued certificate (its order then valid) for revoke-cert and the certificate URL.
const issued = await readyOrder();
const finalized = await client.post(issued.finalize, { csr: goodCsr.csr });
if (finalized.status !== 200) throw new Error(`finalize: ${finalized.status} ${JSON.stringify(finalized.body)}`);
const certificateUrl = finalized.body.certificate as string;
const chain = (await client.post(certificateUrl, '')).body as string;
const certificateDer = Buffer.from(chain.split('-----END CERTIFICATE-----')[0]!.replace(/-----[^-]+-----|\s/g, ''), 'base64');
const authorizationUrl = finalized.body.authorizations[0] as string;
const challengeUrl = (await client.post(authorizationUrl, '')).body.challenges[0].url as string;

const { pick, integer, chance, mutateBytes, jsonJunk, mutateJson } = fuzzer(t, 0x8555);

const publicJwk = (pair: { publicKey: { export(options: { format: 'jwk' }): unknown } }) =>
  pair.publicKey.export({ format: 'jwk' }) as Record<string, string>;

/** Account keys ACME refuses or that cannot verify: small RSA, other curves, X25519, private members, broken members. */
const ecJwk = client.key.jwk;
const ODD_JWKS: Record<string, unknown>[] = [
  publicJwk(generateKeyPairSync('rsa', { modulusLength: 1024 })),
  publicJwk(generateKeyPairSync('ec', { namedCurve: 'secp256k1' })),
  publicJwk(generateKeyPairSync('ec', { namedCurve: 'P-384' })),
  publicJwk(generateKeyPairSync('x25519')),
  publicJwk(generateKeyPairSync('ed448')),
  client.key.privateKey.export({ format: 'jwk' }) as Record<string, unknown>,
  { ...ecJwk, x: ecJwk.y },
  { ...ecJwk, x: 'AAAA' },
  { ...ecJwk, y: undefined },
  { ...ecJwk, crv: 'P-999' },
  { kty: 'RSA', n: b64(Buffer.alloc(2048, 0xff)), e: 'AQAB' },
  { kty: 'RSA', n: b64(Buffer.alloc(256, 0xff)), e: b64(Buffer.alloc(256, 0xff)) },
  { kty: 'oct', k: 'c2VjcmV0' },
  { kty: 'OKP', crv: 'Ed25519', x: '' },
  { kty: 'EC' },
  {},
];

/** Hostile values for any member: the fuzzer's, and the names, encodings and shapes ACME uses. */
const JUNK: (() => unknown)[] = [
  ...jsonJunk,
  () => 'AAAA====',
  () => 'not base64url!',
  () => b64(mutateBytes(goodCsrDer)),
  () => pick(['none', 'HS256', 'RS256', 'ES384', 'ES512', 'EdDSA', 'PS256', 'ES256K']),
  () => pick([directory.newOrder, directory.newAccount, `${server.baseUrl}/acme/${caId}/order/x`, 'http://evil.example/']),
  () => pick([client.kid, `${client.kid}x`, `${server.baseUrl}/acme/${caId}/account/00000000-0000-0000-0000-000000000000`]),
  () => structuredClone(pick(ODD_JWKS)),
  () => ({ type: pick(['dns', 'ip', 'email', 'x']), value: pick(['*.example.internal', '127.0.0.1', 'a..b', '*', 'é.example.internal']) }),
  () => Array.from({ length: 300 }, () => ({ type: 'dns', value: 'c.example.internal' })),
];
const junk = (): unknown => pick(JUNK)();

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/**
 * Path segments as they go on the wire: escapes (an undecodable one too), long ones (one past the router's 2,048),
 * ids of nothing, URNs, header syntax. Dot segments are left out: fetch resolves them, so the request would name a
 * URL outside the ACME routes.
 */
const PATH_JUNK = [
  '%00',
  '%ZZ',
  'x'.repeat(2000),
  'x'.repeat(3000),
  '00000000-0000-0000-0000-000000000000',
  caId.toUpperCase(),
  `pca:cn-north-4:${'0'.repeat(32)}:ca:${caId}`,
  encodeURIComponent('é😀\u202e'),
  encodeURIComponent('<x>;rel="y", \r\n'),
  '',
];

/** Where a case goes, who signs it, and the unmutated payload ('' for POST-as-GET). */
interface Target {
  url: string;
  key: AccountKey;
  /** The account's key id, or the request's own jwk (new-account; revoke-cert by the certificate's key). */
  identity: 'kid' | 'jwk';
  payload: unknown;
  /** After the answer: what an accepted request changed (a new account key, a finalized order). */
  after?: (reply: Reply) => Promise<void>;
}

const certificateKey: AccountKey = (() => {
  const privateKey = createPrivateKey(goodCsr.key);
  return { alg: 'ES256', privateKey, jwk: createPublicKey(privateKey).export({ format: 'jwk' }) as Record<string, string> };
})();

async function nextTarget(): Promise<Target> {
  const certificate = () => b64(chance(0.3) ? certificateDer : mutateBytes(certificateDer));
  const account = { key: client.key, identity: 'kid' as const };
  switch (integer(11)) {
    case 0: {
      const key = accountKey('ES256');
      const eab = await eabKey(server.api, caId);
      const binding = eabJws(eab, key.jwk, directory.newAccount!);
      return { url: directory.newAccount!, key, identity: 'jwk', payload: { termsOfServiceAgreed: true, externalAccountBinding: binding } };
    }
    case 1:
      return { url: directory.newOrder!, ...account, payload: { identifiers: NAMES.map((value) => ({ type: 'dns', value })) } };
    case 2:
      return {
        url: ready.finalize,
        ...account,
        payload: { csr: b64(chance(0.1) ? goodCsrDer : mutateBytes(goodCsrDer)) },
        // Finalized, or failed by a CSR the CA refused: later CSRs go to a fresh ready order.
        after: async (reply) => {
          if (reply.status === 200 || reply.body?.type === 'urn:ietf:params:acme:error:orderNotReady') ready = await readyOrder();
        },
      };
    case 3:
      return { url: directory.revokeCert!, ...account, payload: { certificate: certificate(), reason: pick([0, 1, 4, 9]) } };
    case 4:
      return { url: directory.revokeCert!, key: certificateKey, identity: 'jwk', payload: { certificate: certificate() } };
    case 5: {
      // RFC 8555 §7.3.5: the inner JWS, by a new key over the account and its current key.
      const next = accountKey('ES256');
      const inner = signJws(next, { url: directory.keyChange, jwk: next.jwk }, { account: client.kid, oldKey: client.key.jwk });
      return {
        url: directory.keyChange!,
        ...account,
        payload: inner,
        after: async (reply) => {
          if (reply.status === 200) client.key = next; // an unmutated key-change (a harmless Content-Type variant) rolled the key
        },
      };
    }
    case 6:
      return { url: client.kid!, ...account, payload: { contact: ['mailto:fuzz@example.internal'] } };
    default:
      return {
        url: pick([ordersUrl, ready.url, authorizationUrl, challengeUrl, certificateUrl]),
        ...account,
        payload: chance(0.5) ? {} : '',
      };
  }
}

let nonce = await client.nonce();
const failures: string[] = [];
const statuses = new Map<string, number>();

/** Posts `body` to `url`; checks the answer and keeps its nonce for the next request. */
async function send(what: string, url: string, body: string | Buffer, contentType: string): Promise<Reply> {
  const reply = await read(
    await fetch(url, {
      method: 'POST',
      headers: { 'content-type': contentType },
      body: typeof body === 'string' ? body : new Uint8Array(body),
    }),
  );
  nonce = reply.headers.get('replay-nonce') ?? (await client.nonce());
  const problemType = reply.status >= 400 ? (reply.body?.type as string | undefined) : undefined;
  const seen = `${reply.status}${problemType ? ` ${problemType.replace('urn:ietf:params:acme:error:', '')}` : ''}`;
  statuses.set(seen, (statuses.get(seen) ?? 0) + 1);
  const wrong =
    reply.status >= 500
      ? 'a 5xx'
      : reply.status >= 400 && reply.type.split(';')[0] !== 'application/problem+json'
        ? `a refusal of type ${reply.type}`
        : reply.status >= 400 && (!problemType?.startsWith('urn:ietf:params:acme:error:') || reply.body?.status !== reply.status)
          ? 'a problem document without an ACME type or its status'
          : (reply.status < 400 || problemType === 'urn:ietf:params:acme:error:badNonce') && reply.headers.get('replay-nonce') === null
            ? 'no Replay-Nonce'
            : undefined;
  if (wrong)
    failures.push(
      `${what} → ${reply.status} (${wrong}): ${JSON.stringify(reply.body).slice(0, 300)}\n  sent: ${String(body).slice(0, 600)}`,
    );
  return reply;
}

async function oneCase(): Promise<void> {
  const target = await nextTarget();
  const identity = target.identity === 'kid' ? { kid: client.kid } : { jwk: target.key.jwk };
  const header = { nonce, url: target.url, ...identity };
  const signed = (protectedHeader: Record<string, unknown>, payload: unknown) => signJws(target.key, protectedHeader, payload);
  const jose = 'application/jose+json';
  const { payload } = target;
  let what: string;
  let body: string | Buffer;
  let contentType = jose;
  let url = target.url;
  switch (integer(8)) {
    case 0: {
      // The protected header mutated (sometimes first given an odd jwk), then signed: the header is what is judged.
      what = 'header';
      const base = chance(0.3) ? { nonce, url: target.url, jwk: structuredClone(pick(ODD_JWKS)) } : header;
      body = JSON.stringify(signed(mutateJson({ alg: target.key.alg, ...base }, junk), payload));
      break;
    }
    case 1: // the payload mutated, then signed
      what = 'payload';
      body = JSON.stringify(signed(header, payload !== '' && typeof payload === 'object' ? mutateJson(payload as object, junk) : junk()));
      break;
    case 2:
      what = 'envelope';
      body = JSON.stringify(mutateJson(signed(header, payload), junk));
      break;
    case 3: {
      what = 'signature';
      const jws = signed(header, payload);
      body = JSON.stringify({ ...jws, signature: b64(mutateBytes(Buffer.from(jws.signature, 'base64url'))) });
      break;
    }
    case 4:
      what = 'raw bytes';
      body = mutateBytes(Buffer.from(JSON.stringify(signed(header, payload))));
      break;
    case 5: // the target's own payload (a mutated CSR or certificate, a fresh account's binding), signed as it should be
      what = 'as made';
      body = JSON.stringify(signed(header, payload));
      break;
    case 6: {
      // The CA's id, the resource's id or its name replaced, named in the header too: the id checks, and URLs under
      // /acme/ that name nothing.
      const segments = target.url.split('/');
      const ca = segments.indexOf('acme') + 1;
      const ids = segments.flatMap((segment, at) => (at > ca && UUID.test(segment) ? [at] : []));
      const at = chance(0.2) ? ca + 1 + integer(segments.length - ca - 1) : ids.length > 0 && chance(0.5) ? pick(ids) : ca;
      segments[at] = pick(PATH_JUNK);
      url = segments.join('/');
      what = 'path';
      body = JSON.stringify(signed({ ...header, url }, payload));
      break;
    }
    default:
      what = 'content type';
      contentType = pick([
        'application/json',
        'text/plain',
        `${jose}; charset=utf-8`,
        'application/jose',
        'application/x-www-form-urlencoded',
      ]);
      body = JSON.stringify(signed(header, payload));
  }
  const reply = await send(`${what} to ${url}`, url, body, contentType);
  await target.after?.(reply);
}

t.test(
  `mutated ACME requests (${fuzzCases(400)}): 2xx or 4xx problem documents, nonces where RFC 8555 requires them, never a 5xx`,
  async (t) => {
    for (let i = 0; i < fuzzCases(400); i++) await oneCase();
    t.same(failures, [], `${failures.length} wrong answers`);
    t.comment(`answers: ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`);
    t.ok((statuses.get('400 malformed') ?? 0) > 0, 'malformed requests refused');
    t.ok(
      [...statuses.keys()].some((status) => status.startsWith('2')),
      'some requests still valid, and answered',
    );
  },
);
