/**
 * A raw ACME client for tests that need to shape every byte of a request (negative tests, EdDSA account keys,
 * which acme-client does not support): flattened JWS signed with node:crypto, nonces from the server, replies
 * read as they came. Every reply is checked to be no 5xx by the caller.
 */
import acme from 'acme-client';
import { createHash, createHmac, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { parseSinglePem } from '../../src/x509/pem.ts';

export type Alg = 'ES256' | 'RS256' | 'EdDSA';
export interface AccountKey {
  alg: Alg;
  privateKey: KeyObject;
  jwk: Record<string, string>;
}

export interface Reply {
  status: number;
  type: string;
  headers: Headers;
  /** Parsed JSON for JSON and problem documents, text otherwise. */
  body: any;
}

export function accountKey(alg: Alg): AccountKey {
  const pair =
    alg === 'EdDSA'
      ? generateKeyPairSync('ed25519')
      : alg === 'RS256'
        ? generateKeyPairSync('rsa', { modulusLength: 2048 })
        : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { alg, privateKey: pair.privateKey, jwk: pair.publicKey.export({ format: 'jwk' }) as Record<string, string> };
}

/** base64url without padding, as JWS writes every part. */
export const b64 = (value: string | Buffer): string => Buffer.from(value).toString('base64url');

/** The flattened JWS of `payload` ('' for POST-as-GET) under `header`, signed by `key`. */
export function signJws(
  key: AccountKey,
  header: Record<string, unknown>,
  payload: unknown,
): { protected: string; payload: string; signature: string } {
  const protected64 = b64(JSON.stringify({ alg: key.alg, ...header }));
  const payload64 = payload === '' ? '' : b64(JSON.stringify(payload));
  const data = Buffer.from(`${protected64}.${payload64}`);
  const signature =
    key.alg === 'EdDSA'
      ? sign(null, data, key.privateKey)
      : sign('sha256', data, key.alg === 'ES256' ? { key: key.privateKey, dsaEncoding: 'ieee-p1363' } : key.privateKey);
  return { protected: protected64, payload: payload64, signature: b64(signature) };
}

/** The External Account Binding of §7.3.4 for `jwk`, HS256 with the EAB key. */
export function eabJws(eab: { kid: string; hmac_key: string }, jwk: Record<string, string>, url: string) {
  const protected64 = b64(JSON.stringify({ alg: 'HS256', kid: eab.kid, url }));
  const payload64 = b64(JSON.stringify(jwk));
  const signature = createHmac('sha256', Buffer.from(eab.hmac_key, 'base64url')).update(`${protected64}.${payload64}`).digest();
  return { protected: protected64, payload: payload64, signature: b64(signature) };
}

/** RFC 7638, computed here independently of the server's code. */
export function thumbprintOf(jwk: Record<string, string>): string {
  const members = jwk.kty === 'EC' ? ['crv', 'kty', 'x', 'y'] : jwk.kty === 'RSA' ? ['e', 'kty', 'n'] : ['crv', 'kty', 'x'];
  return createHash('sha256')
    .update(JSON.stringify(Object.fromEntries(members.map((name) => [name, jwk[name]]))))
    .digest('base64url');
}

/** Every reply any RawAcme received, for file-wide checks (no 5xx, refusals as problem documents). */
export const replies: Reply[] = [];

export async function read(response: Response): Promise<Reply> {
  const type = response.headers.get('content-type') ?? '';
  const text = await response.text();
  const reply = { status: response.status, type, headers: response.headers, body: /json/.test(type) && text ? JSON.parse(text) : text };
  replies.push(reply);
  return reply;
}

/** A CSR (base64url DER, as finalize takes it) for `names`, the first as common name, by acme-client's crypto. */
export async function csrFor(names: string[], commonName = names[0]): Promise<{ key: Buffer; csr: string }> {
  // A copy: acme-client adds the common name to the array it is given.
  const [key, pem] = await acme.crypto.createCsr({ commonName, altNames: [...names] }, await acme.crypto.createPrivateEcdsaKey());
  return { key, csr: finalizeCsr(pem.toString()) };
}

/** A PEM CSR as finalize carries it (RFC 8555 §7.4): its DER in base64url. */
export const finalizeCsr = (pem: string): string =>
  Buffer.from(parseSinglePem(pem, 'CERTIFICATE REQUEST', 'the test CSR')).toString('base64url');

/** One directory of the server, spoken to by one account key. */
export class RawAcme {
  kid?: string;
  directory!: Record<string, string>;
  constructor(
    readonly directoryUrl: string,
    public key: AccountKey,
  ) {}

  async init(): Promise<this> {
    this.directory = (await read(await fetch(this.directoryUrl))).body;
    return this;
  }

  async nonce(): Promise<string> {
    const response = await fetch(this.directory.newNonce!, { method: 'HEAD' });
    return response.headers.get('replay-nonce')!;
  }

  /** Posts a JWS body as given (for requests shaped by hand). */
  async postBody(url: string, body: unknown, contentType = 'application/jose+json'): Promise<Reply> {
    return read(
      await fetch(url, {
        method: 'POST',
        headers: { 'content-type': contentType },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      }),
    );
  }

  /** Signs and posts `payload` to `url`; `header` overrides or adds protected members (url, nonce, jwk, kid). */
  async post(url: string, payload: unknown, header: Record<string, unknown> = {}): Promise<Reply> {
    const identity = this.kid ? { kid: this.kid } : { jwk: this.key.jwk };
    return this.postBody(url, signJws(this.key, { nonce: await this.nonce(), url, ...identity, ...header }, payload));
  }

  async newAccount(eab: { kid: string; hmac_key: string }): Promise<Reply> {
    const url = this.directory.newAccount!;
    const reply = await this.post(
      url,
      { termsOfServiceAgreed: true, externalAccountBinding: eabJws(eab, this.key.jwk, url) },
      { jwk: this.key.jwk, kid: undefined },
    );
    if (reply.status === 201 || reply.status === 200) this.kid = reply.headers.get('location')!;
    return reply;
  }

  /** Host names as `dns` identifiers, IP addresses as `ip` ones. */
  newOrder(names: string[]): Promise<Reply> {
    return this.post(this.directory.newOrder!, { identifiers: names.map((value) => ({ type: isIP(value) ? 'ip' : 'dns', value })) });
  }

  /** The key authorization of a challenge token under the current account key. */
  /**
   * An order for `names` whose http-01 challenges were answered through `tokens` (the test's http-01 responder):
   * returns the order's URL and its object once ready.
   */
  async readyOrder(names: string[], tokens: Map<string, string>): Promise<{ url: string; order: any }> {
    const created = await this.newOrder(names);
    if (created.status !== 201) throw new Error(`newOrder: ${created.status} ${JSON.stringify(created.body)}`);
    const url = created.headers.get('location')!;
    for (const authorization of created.body.authorizations as string[]) {
      const challenge = (await this.post(authorization, '')).body.challenges.find((item: { type: string }) => item.type === 'http-01');
      tokens.set(challenge.token, this.keyAuthorization(challenge.token));
      await this.post(challenge.url, {});
    }
    const order = (await this.post(url, '')).body;
    if (order.status !== 'ready') throw new Error(`order not ready: ${JSON.stringify(order)}`);
    return { url, order };
  }

  keyAuthorization(token: string): string {
    return `${token}.${thumbprintOf(this.key.jwk)}`;
  }
}
