/** ACME requests (RFC 8555 §6): the directory a URL names, replay nonces, and the JWS check of every POST. */
import { randomBytes } from 'node:crypto';
import { type Clock, HOUR_MS } from '../../clock.ts';
import type { Config } from '../../config.ts';
import type { Db } from '../../db/database.ts';
import type { AcmeAccount, CertificateAuthority } from '../../db/generated/client.ts';
import { effectiveStatus, existingCa } from '../ca/ca-rules.ts';
import type { RequestContext } from '../context.ts';
import { isUuid, parsePublicCaReference } from '../urn.ts';
import { storedAcmePolicy, type AcmePolicyDocument } from './acme-policy.ts';
import { problem } from './acme-problems.ts';
import { BASE64URL, parseJws, verifyJws, type Jwk, type ParsedJws } from './jws.ts';

/** What an ACME route answers: status, JSON body (or PEM text), Location, Link and Retry-After (seconds) headers. */
export interface AcmeReply {
  status: number;
  body?: unknown;
  pem?: string;
  location?: string;
  links?: string[];
  retryAfter?: number;
}

export const NONCE_LIFETIME_MS = HOUR_MS;

export interface Directory {
  ca: CertificateAuthority;
  policy: AcmePolicyDocument;
  base: string;
}

export interface Signed {
  jws: ParsedJws;
  /** Set when the JWS names an account by kid. */
  account?: AcmeAccount;
}

export const contextOf = (account: AcmeAccount, requestId: string): RequestContext => ({
  domainId: account.domainId,
  actor: `acme:account:${account.id}`,
  requestId,
});

export function createAcmeRequests({ db, clock, config }: { db: Db; clock: Clock; config: Pick<Config, 'region' | 'publicBaseUrl'> }) {
  /** The CA of a directory URL segment (id or URN), serving ACME; every other case reads as no directory. */
  async function directoryOf(reference: string): Promise<Directory> {
    const missing = () => problem('malformed', `no ACME directory for CA ${reference}`, 404);
    const parsed = parsePublicCaReference(reference, config.region);
    if (!parsed) throw missing();
    const { id, domainId } = parsed;
    const ca = await db.certificateAuthority.findFirst({
      where: { id, ...existingCa(clock.now()), ...(domainId !== undefined ? { domainId } : {}) },
    });
    if (!ca) throw missing();
    const policy = storedAcmePolicy(ca.acmePolicy);
    if (!policy.enabled || ca.genMode === 'CSR' || effectiveStatus(ca, clock.now()) === 'DELETED') throw missing();
    return { ca, policy, base: `${config.publicBaseUrl}/acme/${ca.id}` };
  }

  async function newNonce(): Promise<string> {
    const value = randomBytes(16).toString('base64url');
    await db.acmeNonce.create({ data: { value, expiresAt: new Date(clock.now().getTime() + NONCE_LIFETIME_MS) } });
    return value;
  }

  /**
   * Accepts a nonce once, on any instance: the row is deleted by the request that uses it. One that is not base64url
   * is malformed (RFC 8555 §6.5.2) and never reaches the database, which cannot even compare text holding a NUL.
   */
  async function consumeNonce(value: string | undefined): Promise<void> {
    if (!value) throw problem('badNonce', 'the protected header has no nonce');
    if (!BASE64URL.test(value)) throw problem('malformed', 'the nonce must be base64url without padding');
    const used = await db.acmeNonce.deleteMany({ where: { value, expiresAt: { gt: clock.now() } } });
    if (used.count === 0) throw problem('badNonce', 'the nonce is unknown, expired or already used');
  }

  /**
   * Checks a POST (§6.2-6.5): flattened JWS, `url` equal to the request's URL, a fresh nonce, then the signature by
   * the account of `kid` (which must belong to `directory` and be valid) or, where allowed, by an embedded `jwk`.
   */
  async function authenticate(directory: Directory, requestUrl: string, body: unknown, keyMode: 'kid' | 'jwk' | 'either'): Promise<Signed> {
    const jws = parseJws(body);
    if (jws.header.url !== requestUrl)
      throw problem('unauthorized', `the JWS url ${jws.header.url} is not this request's URL ${requestUrl}`);
    await consumeNonce(jws.header.nonce);
    if (jws.header.jwk) {
      if (keyMode === 'kid') throw problem('malformed', 'this request must name its account by kid, not carry a jwk');
      verifyJws(jws, jws.header.jwk);
      return { jws };
    }
    if (keyMode === 'jwk') throw problem('malformed', 'this request must carry the account key as jwk');
    const prefix = `${directory.base}/account/`;
    const accountId = jws.header.kid!.startsWith(prefix) ? jws.header.kid!.slice(prefix.length) : '';
    if (!isUuid(accountId)) throw problem('accountDoesNotExist', `kid ${jws.header.kid} is not an account of this directory`);
    const account = await db.acmeAccount.findUnique({ where: { id: accountId } });
    if (!account || account.caId !== directory.ca.id)
      throw problem('accountDoesNotExist', `kid ${jws.header.kid} is not an account of this directory`);
    verifyJws(jws, account.jwk as Jwk);
    // RFC 8555 §7.3.6: a deactivated (or revoked) account's key is refused with 401.
    if (account.status !== 'valid') throw problem('unauthorized', `the account is ${account.status}`, 401);
    return { jws, account };
  }

  return { directoryOf, newNonce, authenticate };
}

export type AcmeRequests = ReturnType<typeof createAcmeRequests>;
