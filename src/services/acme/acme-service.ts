/**
 * The ACME server of a CA (RFC 8555), one directory per CA at `/acme/{ca_id or URN}/`. Accounts exist only through
 * External Account Binding, which ties each to the EAB key's domain and CA: every request is checked against the
 * CA of its URL, so an account can never reach another CA (or tenant). Certificates are issued by the normal
 * issuance service (listed, billed, audited, revocable, in CRL and OCSP) with the CA's ACME policy as an extra
 * issuance policy. Nonces, accounts, orders, authorizations and challenges live in Postgres.
 */
import { createPublicKey, randomBytes, randomUUID } from 'node:crypto';
import type { Clock } from '../../clock.ts';
import type { Config } from '../../config.ts';
import type { Db } from '../../db/database.ts';
import type { AcmeAccount, AcmeAuthorization, AcmeChallenge, AcmeOrder, CertificateAuthority } from '../../db/generated/client.ts';
import { AppError, clientErrorOf } from '../../errors.ts';
import type { Sealer } from '../../keystore/sealing.ts';
import { parseCertificate } from '../../x509/certificate.ts';
import { parseCsr } from '../../x509/csr.ts';
import { parseIp, formatIp } from '../../x509/extensions.ts';
import { normalizeDnsName } from '../../x509/name-constraints.ts';
import { toPem } from '../../x509/pem.ts';
import { recordAudit } from '../audit/audit-log.ts';
import { caChain } from '../ca/issuer.ts';
import { effectiveStatus, existingCa } from '../ca/ca-rules.ts';
import type { IssuanceService } from '../certificates/issuance-service.ts';
import type { RequestContext } from '../context.ts';
import { evaluateIssuance } from '../policy/index.ts';
import type { RevocationServices } from '../revocation/index.ts';
import { REVOCATION_REASONS } from '../revocation/revocation-rules.ts';
import { isUuid } from '../urn.ts';
import { eabSealingAad } from './acme-admin-service.ts';
import { acmeIssuancePolicy, acmeValidityDays, storedAcmePolicy, type AcmePolicyDocument } from './acme-policy.ts';
import { AcmeProblem, problem, problemOfAppError, type ProblemDocument } from './acme-problems.ts';
import type { ChallengeValidator } from './challenge-validation.ts';
import { parseJws, payloadObject, publicJwk, requirePostAsGet, thumbprint, verifyEab, verifyJws, type Jwk, type ParsedJws } from './jws.ts';

export interface AcmeServiceDeps {
  db: Db;
  clock: Clock;
  config: Pick<Config, 'region' | 'publicBaseUrl'>;
  issuance: Pick<IssuanceService, 'createByCsr'>;
  revocations: Pick<RevocationServices['revocations'], 'revokeCertificate'>;
  validator: ChallengeValidator;
  /** The master-key sealer, built once at composition. */
  sealer: Sealer;
}

/** What an ACME route answers: status, JSON body (or PEM text), Location and Link headers. */
export interface AcmeReply {
  status: number;
  body?: unknown;
  pem?: string;
  location?: string;
  links?: string[];
}

export const NONCE_LIFETIME_MS = 3_600_000;
export const ORDER_LIFETIME_MS = 24 * 3_600_000;
const MAX_IDENTIFIERS = 100;
const MAX_CONTACTS = 10;
const REASON_NAMES = new Map<number, string>(Object.entries(REVOCATION_REASONS).map(([name, code]) => [code, name]));

type Identifier = { type: 'dns' | 'ip'; value: string };

interface Directory {
  ca: CertificateAuthority;
  policy: AcmePolicyDocument;
  base: string;
}

interface Signed {
  jws: ParsedJws;
  directory: Directory;
  /** Set when the JWS names an account by kid. */
  account?: AcmeAccount;
}

const iso = (date: Date | null | undefined): string | undefined => date?.toISOString();

export function createAcmeService({ db, clock, config, issuance, revocations, validator , sealer }: AcmeServiceDeps) {

  // -------------------------------------------------------------------------------------------------------------
  // Directory, nonces, request authentication

  /** The CA of a directory URL segment (id or URN), serving ACME; every other case reads as no directory. */
  async function directoryOf(reference: string): Promise<Directory> {
    const parts = reference.split(':');
    const urn = reference.startsWith('pca:') && parts.length === 5 && parts[1] === config.region && parts[3] === 'ca';
    const id = urn ? parts[4]! : reference;
    const missing = () => problem('malformed', `no ACME directory for CA ${reference}`, 404);
    if (!isUuid(id)) throw missing();
    const ca = await db.certificateAuthority.findFirst({ where: { id, ...existingCa(clock.now()), ...(urn ? { domainId: parts[2] } : {}) } });
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

  /** Accepts a nonce once, on any instance: the row is deleted by the request that uses it. */
  async function consumeNonce(value: string | undefined): Promise<void> {
    if (!value) throw problem('badNonce', 'the protected header has no nonce');
    const used = await db.acmeNonce.deleteMany({ where: { value, expiresAt: { gt: clock.now() } } });
    if (used.count === 0) throw problem('badNonce', 'the nonce is unknown, expired or already used');
  }

  /**
   * Checks a POST (§6.2-6.5): flattened JWS, `url` equal to the request's URL, a fresh nonce, then the signature by
   * the account of `kid` (which must belong to this directory and be valid) or, where allowed, by an embedded `jwk`.
   */
  async function authenticate(reference: string, requestUrl: string, body: unknown, keyMode: 'kid' | 'jwk' | 'either'): Promise<Signed> {
    const directory = await directoryOf(reference);
    const jws = parseJws(body);
    if (jws.header.url !== requestUrl) throw problem('unauthorized', `the JWS url ${jws.header.url} is not this request's URL ${requestUrl}`);
    await consumeNonce(jws.header.nonce);
    if (jws.header.jwk) {
      if (keyMode === 'kid') throw problem('malformed', 'this request must name its account by kid, not carry a jwk');
      verifyJws(jws, jws.header.jwk);
      return { jws, directory };
    }
    if (keyMode === 'jwk') throw problem('malformed', 'this request must carry the account key as jwk');
    const prefix = `${directory.base}/account/`;
    const accountId = jws.header.kid!.startsWith(prefix) ? jws.header.kid!.slice(prefix.length) : '';
    if (!isUuid(accountId)) throw problem('accountDoesNotExist', `kid ${jws.header.kid} is not an account of this directory`);
    const account = await db.acmeAccount.findUnique({ where: { id: accountId } });
    if (!account || account.caId !== directory.ca.id) throw problem('accountDoesNotExist', `kid ${jws.header.kid} is not an account of this directory`);
    verifyJws(jws, account.jwk as Jwk);
    if (account.status !== 'valid') throw problem('unauthorized', `the account is ${account.status}`);
    return { jws, directory, account };
  }

  const contextOf = (account: AcmeAccount, requestId: string): RequestContext => ({ domainId: account.domainId, actor: `acme:account:${account.id}`, requestId });

  // -------------------------------------------------------------------------------------------------------------
  // Objects

  function accountObject(base: string, account: AcmeAccount) {
    return { status: account.status, contact: account.contact, orders: `${base}/orders/${account.id}`, createdAt: account.createdAt.toISOString() };
  }

  function effectiveOrderStatus(order: AcmeOrder, now: Date): string {
    return ['pending', 'ready'].includes(order.status) && order.expiresAt <= now ? 'invalid' : order.status;
  }

  async function orderObject(base: string, order: AcmeOrder) {
    const now = clock.now();
    const authorizations = await db.acmeAuthorization.findMany({ where: { orderId: order.id }, orderBy: { id: 'asc' }, select: { id: true } });
    const status = effectiveOrderStatus(order, now);
    return {
      status,
      expires: iso(order.expiresAt),
      identifiers: order.identifiers,
      authorizations: authorizations.map(({ id }) => `${base}/authz/${id}`),
      finalize: `${base}/order/${order.id}/finalize`,
      ...(order.certificateId ? { certificate: `${base}/cert/${order.certificateId}` } : {}),
      ...(order.error ? { error: order.error } : status === 'invalid' ? { error: problem('malformed', 'the order expired').document() } : {}),
    };
  }

  function challengeObject(base: string, challenge: AcmeChallenge) {
    return {
      type: challenge.type,
      url: `${base}/chall/${challenge.id}`,
      status: challenge.status,
      token: challenge.token,
      ...(challenge.validatedAt ? { validated: iso(challenge.validatedAt) } : {}),
      ...(challenge.error ? { error: challenge.error } : {}),
    };
  }

  async function authorizationObject(base: string, authorization: AcmeAuthorization) {
    const challenges = await db.acmeChallenge.findMany({ where: { authorizationId: authorization.id }, orderBy: { type: 'asc' } });
    const status = authorization.status === 'pending' && authorization.expiresAt <= clock.now() ? 'expired' : authorization.status;
    return {
      identifier: { type: authorization.identifierType, value: authorization.identifierValue },
      status,
      expires: iso(authorization.expiresAt),
      challenges: challenges.map((challenge) => challengeObject(base, challenge)),
      ...(authorization.wildcard ? { wildcard: true } : {}),
    };
  }

  // -------------------------------------------------------------------------------------------------------------
  // Accounts

  function contacts(value: unknown): string[] {
    if (value === undefined) return [];
    if (!Array.isArray(value) || value.length > MAX_CONTACTS) throw problem('malformed', `contact must be an array of at most ${MAX_CONTACTS} URLs`);
    return value.map((item) => {
      if (typeof item !== 'string' || !/^mailto:[^@\s,]+@[^@\s,]+$/.test(item) || item.length > 256) {
        throw problem('unsupportedContact', `contact ${String(item)} must be a mailto: URL with one address`);
      }
      return item;
    });
  }

  async function hmacKeyOf(directory: Directory, kid: string): Promise<Buffer | null> {
    const key = await db.acmeEabKey.findUnique({ where: { kid } });
    if (!key || key.revokedAt || key.caId !== directory.ca.id || key.domainId !== directory.ca.domainId) return null;
    return Buffer.from(sealer.unseal(key.sealedHmacKey, eabSealingAad(kid)));
  }

  async function newAccount(reference: string, url: string, body: unknown, requestId: string): Promise<AcmeReply> {
    const { jws, directory } = await authenticate(reference, url, body, 'jwk');
    const payload = payloadObject(jws);
    const jwk = publicJwk(jws.header.jwk!);
    const print = thumbprint(jwk);
    const existing = await db.acmeAccount.findUnique({ where: { caId_thumbprint: { caId: directory.ca.id, thumbprint: print } } });
    if (existing) return { status: 200, body: accountObject(directory.base, existing), location: `${directory.base}/account/${existing.id}` };
    if (payload.onlyReturnExisting === true) throw problem('accountDoesNotExist', 'no account exists with this key');
    if (payload.externalAccountBinding === undefined) throw problem('externalAccountRequired', 'this CA requires External Account Binding: ask its owner for an EAB key');
    const contact = contacts(payload.contact);
    const kid = await verifyEab(payload.externalAccountBinding, jwk, url, (name) => hmacKeyOf(directory, name));
    const id = randomUUID();
    try {
      const account = await db.$transaction(async (tx) => {
        const created = await tx.acmeAccount.create({
          data: { id, domainId: directory.ca.domainId, caId: directory.ca.id, eabKid: kid, thumbprint: print, jwk: jwk as object, status: 'valid', contact, createdAt: clock.now() },
        });
        await recordAudit(tx, { domainId: created.domainId, actor: `acme:eab:${kid}`, requestId }, { action: 'pca:acme:newAccount', resourceType: 'ACME_ACCOUNT', resourceId: id, detail: { ca_id: directory.ca.id, eab_kid: kid } });
        return created;
      });
      return { status: 201, body: accountObject(directory.base, account), location: `${directory.base}/account/${id}` };
    } catch (error) {
      // The same key registered concurrently: answer with that account.
      const raced = await db.acmeAccount.findUnique({ where: { caId_thumbprint: { caId: directory.ca.id, thumbprint: print } } });
      if (!raced) throw error;
      return { status: 200, body: accountObject(directory.base, raced), location: `${directory.base}/account/${raced.id}` };
    }
  }

  async function updateAccount(reference: string, url: string, accountId: string, body: unknown, requestId: string): Promise<AcmeReply> {
    const { jws, directory, account } = await authenticate(reference, url, body, 'kid');
    if (account!.id !== accountId) throw problem('unauthorized', 'an account can only read or change itself');
    let current = account!;
    if (jws.payloadText !== '') {
      const payload = payloadObject(jws);
      const data: { contact?: string[]; status?: string } = {};
      if (payload.contact !== undefined) data.contact = contacts(payload.contact);
      if (payload.status !== undefined) {
        if (payload.status !== 'deactivated') throw problem('malformed', 'an account status can only be changed to deactivated');
        data.status = 'deactivated';
      }
      current = await db.$transaction(async (tx) => {
        const updated = await tx.acmeAccount.update({ where: { id: current.id }, data });
        if (data.status) await recordAudit(tx, contextOf(current, requestId), { action: 'pca:acme:deactivateAccount', resourceType: 'ACME_ACCOUNT', resourceId: current.id });
        return updated;
      });
    }
    return { status: 200, body: accountObject(directory.base, current), location: `${directory.base}/account/${current.id}` };
  }

  /** §7.3.5: the inner JWS, signed by the new key, names the account and its old key. */
  async function keyChange(reference: string, url: string, body: unknown, requestId: string): Promise<AcmeReply> {
    const { jws, directory, account } = await authenticate(reference, url, body, 'kid');
    const inner = parseJws(payloadObject(jws));
    if (!inner.header.jwk) throw problem('malformed', 'the inner JWS must carry the new key as jwk');
    if (inner.header.url !== url) throw problem('malformed', 'the inner JWS url must equal the outer one');
    if (inner.header.nonce !== undefined) throw problem('malformed', 'the inner JWS must not carry a nonce');
    verifyJws(inner, inner.header.jwk);
    const change = payloadObject(inner);
    if (change.account !== jws.header.kid) throw problem('malformed', 'the inner payload must name this account');
    if (typeof change.oldKey !== 'object' || change.oldKey === null || thumbprint(change.oldKey as Jwk) !== account!.thumbprint) {
      throw problem('unauthorized', "oldKey is not the account's current key");
    }
    const newKey = publicJwk(inner.header.jwk);
    const print = thumbprint(newKey);
    const holder = await db.acmeAccount.findUnique({ where: { caId_thumbprint: { caId: directory.ca.id, thumbprint: print } } });
    if (holder) throw new AcmeProblem('malformed', 'the new key is already the key of an account', { status: 409, headers: { location: `${directory.base}/account/${holder.id}` } });
    const updated = await db.$transaction(async (tx) => {
      const row = await tx.acmeAccount.update({ where: { id: account!.id }, data: { jwk: newKey as object, thumbprint: print } });
      await recordAudit(tx, contextOf(account!, requestId), { action: 'pca:acme:keyChange', resourceType: 'ACME_ACCOUNT', resourceId: account!.id, detail: { thumbprint: print } });
      return row;
    });
    return { status: 200, body: accountObject(directory.base, updated), location: `${directory.base}/account/${updated.id}` };
  }

  async function listOrders(reference: string, url: string, accountId: string, body: unknown): Promise<AcmeReply> {
    const { jws, directory, account } = await authenticate(reference, url, body, 'kid');
    requirePostAsGet(jws);
    if (account!.id !== accountId) throw problem('unauthorized', "an account can only list its own orders");
    const orders = await db.acmeOrder.findMany({ where: { accountId }, orderBy: { createdAt: 'desc' }, take: 100, select: { id: true } });
    return { status: 200, body: { orders: orders.map(({ id }) => `${directory.base}/order/${id}`) } };
  }

  // -------------------------------------------------------------------------------------------------------------
  // Orders

  function identifierOf(value: unknown, index: number): Identifier {
    const item = value as { type?: unknown; value?: unknown } | null;
    if (typeof item !== 'object' || item === null || typeof item.value !== 'string') throw problem('malformed', `identifiers[${index}] must be {type, value}`);
    if (item.type === 'ip') {
      const ip = parseIp(item.value);
      if (ip === null) throw problem('malformed', `identifiers[${index}] ${item.value} is not an IP address`);
      return { type: 'ip', value: formatIp(ip) };
    }
    if (item.type !== 'dns') throw problem('unsupportedIdentifier', `identifiers[${index}] type ${String(item.type)} is not supported (dns, ip)`);
    const wildcard = item.value.startsWith('*.');
    const name = normalizeDnsName(wildcard ? item.value.slice(2) : item.value);
    if (name === null || !name.includes('.') || name.includes('*')) throw problem('rejectedIdentifier', `identifiers[${index}] ${item.value} is not a host name`);
    return { type: 'dns', value: wildcard ? `*.${name}` : name };
  }

  /** The names judged by the issuance evaluator against the ACME policy; the first refusal is rejectedIdentifier. */
  function checkPolicy(directory: Directory, identifiers: Identifier[]): void {
    const now = clock.now();
    // The ACME policy holds only name and lifetime rules: the key and EKUs given here are never judged by it.
    const violation = evaluateIssuance(
      { policies: [acmeIssuancePolicy(directory.policy)], chainConstraints: [] },
      { kind: 'ENTITY', names: identifiers.map((identifier, index) => ({ type: identifier.type === 'ip' ? ('IP' as const) : ('DNS' as const), value: identifier.value, field: `identifiers[${index}]` })), notBefore: now, notAfter: now, keyAlgorithm: 'EC256', extendedKeyUsages: [] },
    );
    if (violation) throw problem('rejectedIdentifier', violation.message);
  }

  async function newOrder(reference: string, url: string, body: unknown, requestId: string): Promise<AcmeReply> {
    const { jws, directory, account } = await authenticate(reference, url, body, 'kid');
    const payload = payloadObject(jws);
    if (payload.notBefore !== undefined || payload.notAfter !== undefined) {
      throw problem('malformed', `notBefore and notAfter are not supported: certificates are valid ${acmeValidityDays(directory.policy)} days from issuance`);
    }
    if (!Array.isArray(payload.identifiers) || payload.identifiers.length === 0 || payload.identifiers.length > MAX_IDENTIFIERS) {
      throw problem('malformed', `identifiers must be an array of 1-${MAX_IDENTIFIERS} identifiers`);
    }
    const seen = new Set<string>();
    const identifiers = payload.identifiers.map(identifierOf).filter((identifier) => {
      const key = `${identifier.type}:${identifier.value}`;
      return !seen.has(key) && seen.add(key);
    });
    checkPolicy(directory, identifiers);
    const now = clock.now();
    const expiresAt = new Date(now.getTime() + ORDER_LIFETIME_MS);
    const orderId = randomUUID();
    const order = await db.$transaction(async (tx) => {
      const created = await tx.acmeOrder.create({
        data: { id: orderId, accountId: account!.id, domainId: account!.domainId, caId: directory.ca.id, status: 'pending', identifiers, expiresAt, createdAt: now },
      });
      for (const identifier of identifiers) {
        const authorizationId = randomUUID();
        const wildcard = identifier.value.startsWith('*.');
        await tx.acmeAuthorization.create({
          data: { id: authorizationId, orderId, accountId: account!.id, identifierType: identifier.type, identifierValue: wildcard ? identifier.value.slice(2) : identifier.value, wildcard, status: 'pending', expiresAt },
        });
        // A wildcard can be proven only in DNS (§7.1.3); an IP address has no DNS name to hold a TXT record.
        const types = wildcard ? ['dns-01'] : identifier.type === 'ip' ? ['http-01', 'tls-alpn-01'] : ['http-01', 'dns-01', 'tls-alpn-01'];
        await tx.acmeChallenge.createMany({ data: types.map((type) => ({ id: randomUUID(), authorizationId, type, token: randomBytes(32).toString('base64url'), status: 'pending' })) });
      }
      await recordAudit(tx, contextOf(account!, requestId), { action: 'pca:acme:newOrder', resourceType: 'CA', resourceId: directory.ca.id, detail: { order_id: orderId, identifiers } });
      return created;
    });
    return { status: 201, body: await orderObject(directory.base, order), location: `${directory.base}/order/${orderId}` };
  }

  async function ownOrder(account: AcmeAccount, orderId: string): Promise<AcmeOrder> {
    const order = isUuid(orderId) ? await db.acmeOrder.findUnique({ where: { id: orderId } }) : null;
    if (!order || order.accountId !== account.id) throw problem('malformed', `order ${orderId} not found`, 404);
    return order;
  }

  async function getOrder(reference: string, url: string, orderId: string, body: unknown): Promise<AcmeReply> {
    const { jws, directory, account } = await authenticate(reference, url, body, 'kid');
    requirePostAsGet(jws);
    const order = await ownOrder(account!, orderId);
    return { status: 200, body: await orderObject(directory.base, order), location: `${directory.base}/order/${order.id}` };
  }

  /** The CSR's names (SANs and a common name) must be exactly the order's identifiers (§7.4). */
  function csrNamesMatch(order: AcmeOrder, csr: Awaited<ReturnType<typeof parseCsr>>): boolean {
    const wanted = new Set((order.identifiers as Identifier[]).map((identifier) => `${identifier.type}:${identifier.value}`));
    const given = new Set<string>();
    for (const name of csr.subjectAltNames) {
      if (name.type === 'DNS') given.add(`dns:${normalizeDnsName(name.value) ?? name.value}`);
      else if (name.type === 'IP') given.add(`ip:${formatIp(parseIp(name.value) ?? new Uint8Array())}`);
      else return false;
    }
    const cn = csr.subject.common_name;
    if (cn && !given.has(`dns:${cn.toLowerCase()}`) && !given.has(`ip:${cn}`)) return false;
    return given.size === wanted.size && [...given].every((name) => wanted.has(name));
  }

  async function failOrder(orderId: string, error: AcmeProblem): Promise<void> {
    await db.acmeOrder.updateMany({ where: { id: orderId, status: 'processing' }, data: { status: 'invalid', error: error.document() as object } });
  }

  /**
   * §7.4: issues through the normal issuance service. The order moves ready -> processing first; the issuance runs
   * under an Idempotency-Key of the order, so a retried or concurrent finalize of a processing order gets the same
   * certificate, never a second one.
   */
  async function finalize(reference: string, url: string, orderId: string, body: unknown, requestId: string): Promise<AcmeReply> {
    const { jws, directory, account } = await authenticate(reference, url, body, 'kid');
    const order = await ownOrder(account!, orderId);
    const status = effectiveOrderStatus(order, clock.now());
    if (status !== 'ready' && status !== 'processing') throw problem('orderNotReady', `the order is ${status}, not ready`);
    const payload = payloadObject(jws);
    if (typeof payload.csr !== 'string' || !/^[A-Za-z0-9_-]+$/.test(payload.csr)) throw problem('malformed', 'csr must be the base64url DER of a CSR');
    const pem = toPem('CERTIFICATE REQUEST', Buffer.from(payload.csr, 'base64url'));
    let csr;
    try {
      csr = await parseCsr(pem);
    } catch (error) {
      throw problem('badCSR', (error as Error).message);
    }
    if (!csrNamesMatch(order, csr)) throw problem('badCSR', "the CSR's names are not exactly the order's identifiers");
    await db.acmeOrder.updateMany({ where: { id: order.id, status: 'ready' }, data: { status: 'processing' } });
    let certificateId: string;
    try {
      certificateId = await issuance.createByCsr(
        contextOf(account!, requestId),
        { issuer_id: directory.ca.id, csr: pem, validity: { type: 'DAY', value: acmeValidityDays(directory.policy) } },
        `acme-order:${order.id}`,
        { extraPolicies: [acmeIssuancePolicy(directory.policy)] },
      );
    } catch (error) {
      const refused = clientErrorOf(error);
      if (!refused || refused.statusCode >= 500) throw error;
      const refusal = problem('badCSR', `the CA refused the certificate: ${refused.message}`);
      await failOrder(order.id, refusal);
      throw refusal;
    }
    await db.acmeOrder.updateMany({ where: { id: order.id, status: 'processing' }, data: { status: 'valid', certificateId } });
    const done = await db.acmeOrder.findUniqueOrThrow({ where: { id: order.id } });
    return { status: 200, body: await orderObject(directory.base, done), location: `${directory.base}/order/${order.id}` };
  }

  // -------------------------------------------------------------------------------------------------------------
  // Authorizations and challenges

  async function ownAuthorization(account: AcmeAccount, authorizationId: string): Promise<AcmeAuthorization> {
    const authorization = isUuid(authorizationId) ? await db.acmeAuthorization.findUnique({ where: { id: authorizationId } }) : null;
    if (!authorization || authorization.accountId !== account.id) throw problem('malformed', `authorization ${authorizationId} not found`, 404);
    return authorization;
  }

  async function getAuthorization(reference: string, url: string, authorizationId: string, body: unknown): Promise<AcmeReply> {
    const { jws, directory, account } = await authenticate(reference, url, body, 'kid');
    let authorization = await ownAuthorization(account!, authorizationId);
    if (jws.payloadText !== '') {
      if (payloadObject(jws).status !== 'deactivated') throw problem('malformed', 'an authorization can only be changed to deactivated');
      authorization = await db.$transaction(async (tx) => {
        const updated = await tx.acmeAuthorization.update({ where: { id: authorization.id }, data: { status: 'deactivated' } });
        await tx.acmeOrder.updateMany({ where: { id: authorization.orderId, status: { in: ['pending', 'ready'] } }, data: { status: 'invalid' } });
        return updated;
      });
    }
    return { status: 200, body: await authorizationObject(directory.base, authorization) };
  }

  /**
   * §7.5.1: the client says it is ready; the challenge is validated in this request (so any instance, or a Lambda,
   * can answer it). Only the request that moves it pending -> processing validates. The outcome updates the
   * challenge, its authorization and, when every authorization is valid, the order (ready) in one transaction.
   */
  async function respondToChallenge(reference: string, url: string, challengeId: string, body: unknown): Promise<AcmeReply> {
    const { jws, directory, account } = await authenticate(reference, url, body, 'kid');
    const challenge = isUuid(challengeId) ? await db.acmeChallenge.findUnique({ where: { id: challengeId } }) : null;
    if (!challenge) throw problem('malformed', `challenge ${challengeId} not found`, 404);
    const authorization = await ownAuthorization(account!, challenge.authorizationId);
    const up = `<${directory.base}/authz/${authorization.id}>;rel="up"`;
    const now = clock.now();
    if (jws.payloadText === '' || challenge.status !== 'pending' || authorization.status !== 'pending') {
      return { status: 200, body: challengeObject(directory.base, challenge), links: [up] };
    }
    if (authorization.expiresAt <= now) throw problem('malformed', 'the authorization has expired', 403);
    const claimed = await db.acmeChallenge.updateMany({ where: { id: challenge.id, status: 'pending' }, data: { status: 'processing' } });
    if (claimed.count === 0) return { status: 200, body: challengeObject(directory.base, await db.acmeChallenge.findUniqueOrThrow({ where: { id: challenge.id } })), links: [up] };
    const keyAuthorization = `${challenge.token}.${account!.thumbprint}`;
    let failure: ProblemDocument | null = null;
    try {
      await validator.validate({ type: challenge.type, token: challenge.token, identifier: { type: authorization.identifierType, value: authorization.identifierValue }, keyAuthorization });
    } catch (error) {
      failure = (error instanceof AcmeProblem ? error : problem('connection', String(error))).document();
    }
    const result = await db.$transaction(async (tx) => {
      // The order row serializes its authorizations' outcomes: the last one to become valid sees the others valid.
      await tx.$queryRaw`SELECT 1 FROM acme_orders WHERE id = ${authorization.orderId}::uuid FOR UPDATE`;
      const validatedAt = clock.now();
      const updated = await tx.acmeChallenge.update({
        where: { id: challenge.id },
        data: failure ? { status: 'invalid', error: failure as object } : { status: 'valid', validatedAt },
      });
      await tx.acmeAuthorization.updateMany({ where: { id: authorization.id, status: 'pending' }, data: { status: failure ? 'invalid' : 'valid' } });
      if (failure) {
        await tx.acmeOrder.updateMany({ where: { id: authorization.orderId, status: 'pending' }, data: { status: 'invalid', error: failure as object } });
      } else {
        const open = await tx.acmeAuthorization.count({ where: { orderId: authorization.orderId, status: { not: 'valid' } } });
        if (open === 0) await tx.acmeOrder.updateMany({ where: { id: authorization.orderId, status: 'pending' }, data: { status: 'ready' } });
      }
      return updated;
    });
    return { status: 200, body: challengeObject(directory.base, result), links: [up] };
  }

  // -------------------------------------------------------------------------------------------------------------
  // Certificates

  /** §7.4.2: the certificate and its CA chain up to the root; the alternate chain leaves the root out. */
  async function certificateChain(reference: string, url: string, certificateId: string, alternate: boolean, body: unknown): Promise<AcmeReply> {
    const { jws, directory, account } = await authenticate(reference, url, body, 'kid');
    requirePostAsGet(jws);
    const order = isUuid(certificateId) ? await db.acmeOrder.findFirst({ where: { certificateId, accountId: account!.id } }) : null;
    const certificate = order ? await db.certificate.findUnique({ where: { id: certificateId } }) : null;
    if (!certificate) throw problem('malformed', `certificate ${certificateId} not found`, 404);
    const chain = await caChain(db, directory.ca);
    const withRoot = [new Uint8Array(certificate.certificateDer), ...chain];
    const blocks = alternate ? withRoot.slice(0, Math.max(1, withRoot.length - 1)) : withRoot;
    return {
      status: 200,
      // RFC 7468 as ACME clients read it: LF line breaks and one after each END line (certbot and lego split on them).
      pem: blocks.map((der) => `${toPem('CERTIFICATE', der).replaceAll('\r\n', '\n')}\n`).join(''),
      links: alternate ? [] : [`<${directory.base}/cert/${certificateId}/alternate>;rel="alternate"`],
    };
  }

  /** §7.6: by the account that ordered the certificate, or by the certificate's own key (jwk). */
  async function revokeCertificate(reference: string, url: string, body: unknown, requestId: string): Promise<AcmeReply> {
    const { jws, directory, account } = await authenticate(reference, url, body, 'either');
    const payload = payloadObject(jws);
    if (typeof payload.certificate !== 'string') throw problem('malformed', 'certificate must be the base64url DER of the certificate');
    const der = new Uint8Array(Buffer.from(payload.certificate, 'base64url'));
    let parsed;
    try {
      parsed = parseCertificate(der);
    } catch {
      throw problem('malformed', 'certificate is not a DER X.509 certificate');
    }
    const reasonCode = payload.reason ?? 0;
    const reason = typeof reasonCode === 'number' ? REASON_NAMES.get(reasonCode) : undefined;
    if (reason === undefined) throw problem('badRevocationReason', `reason ${String(reasonCode)} is not a revocation reason this CA uses`);
    const row = await db.certificate.findFirst({ where: { issuerId: directory.ca.id, serialNumber: parsed.serialHex, deletedAt: null } });
    if (!row || !Buffer.from(row.certificateDer).equals(der)) throw problem('malformed', 'this CA issued no such certificate', 404);
    if (account) {
      const ordered = await db.acmeOrder.findFirst({ where: { certificateId: row.id, accountId: account.id } });
      if (!ordered) throw problem('unauthorized', 'this account did not order this certificate');
    } else {
      const spki = createPublicKey({ key: jws.header.jwk as never, format: 'jwk' }).export({ format: 'der', type: 'spki' });
      if (!Buffer.from(parsed.spki).equals(spki)) throw problem('unauthorized', "the JWS is signed neither by an account nor by the certificate's key");
    }
    if (row.status === 'REVOKED') throw problem('alreadyRevoked', 'the certificate is already revoked');
    const ctx: RequestContext = account ? contextOf(account, requestId) : { domainId: row.domainId, actor: 'acme:certificate-key', requestId };
    try {
      await revocations.revokeCertificate(ctx, row.id, reason);
    } catch (error) {
      if (error instanceof AppError && /already revoked/.test(error.message)) throw problem('alreadyRevoked', 'the certificate is already revoked');
      throw error;
    }
    return { status: 200 };
  }

  return {
    async directory(reference: string) {
      const { base } = await directoryOf(reference);
      return {
        newNonce: `${base}/new-nonce`,
        newAccount: `${base}/new-account`,
        newOrder: `${base}/new-order`,
        revokeCert: `${base}/revoke-cert`,
        keyChange: `${base}/key-change`,
        meta: { externalAccountRequired: true },
      };
    },
    directoryUrl: (reference: string) => `${config.publicBaseUrl}/acme/${reference}/directory`,
    newNonce,
    /** newNonce answers only for a directory that exists. */
    checkDirectory: (reference: string) => directoryOf(reference).then(() => undefined),
    newAccount,
    updateAccount,
    keyChange,
    listOrders,
    newOrder,
    getOrder,
    finalize,
    getAuthorization,
    respondToChallenge,
    certificateChain,
    revokeCertificate,
    problemOf(error: unknown): AcmeProblem | null {
      if (error instanceof AcmeProblem) return error;
      const clientError = clientErrorOf(error);
      return clientError ? problemOfAppError(clientError) : null;
    },
  };
}

export type AcmeService = ReturnType<typeof createAcmeService>;
