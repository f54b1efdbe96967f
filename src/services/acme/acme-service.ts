/**
 * The ACME server of a CA (RFC 8555), one directory per CA at `/acme/{ca_id or URN}/`. Accounts exist only through
 * External Account Binding, which ties each to the EAB key's domain and CA: every request is checked against the
 * CA of its URL, so an account can never reach another CA (or tenant). Certificates are issued by the normal
 * issuance service (listed, billed, audited, revocable, in CRL and OCSP) with the CA's ACME policy as an extra
 * issuance policy. Nonces, accounts, orders, authorizations and challenges live in Postgres.
 */
import { createPublicKey, randomBytes, randomUUID } from 'node:crypto';
import { type Clock, DAY_MS } from '../../clock.ts';
import type { Config } from '../../config.ts';
import type { Db } from '../../db/database.ts';
import type { AcmeAccount, AcmeAuthorization, AcmeChallenge, AcmeOrder } from '../../db/generated/client.ts';
import { lockRow } from '../../db/locks.ts';
import { AppError, clientErrorOf } from '../../errors.ts';
import type { Sealer } from '../../keystore/sealing.ts';
import { parseCertificate } from '../../x509/certificate.ts';
import { parseCsr } from '../../x509/csr.ts';
import { toPem } from '../../x509/pem.ts';
import { recordAudit } from '../audit/audit-log.ts';
import { issueRefusal } from '../ca/issuer.ts';
import { caChain } from '../ca/ca-store.ts';
import { CertificateQuotaUsedUp } from '../certificates/certificate-usage.ts';
import type { IssuanceService } from '../certificates/issuance-service.ts';
import type { RequestContext } from '../context.ts';
import { evaluateIssuance } from '../policy/index.ts';
import type { RevocationServices } from '../revocation/index.ts';
import { REVOCATION_REASONS } from '../revocation/revocation-rules.ts';
import { isUuid } from '../urn.ts';
import { directoryUrl } from './acme-admin-service.ts';
import { createAcmeAccounts } from './acme-accounts.ts';
import { certificateIdentifiers, csrNamesMatch, orderIdentifiers, subjectAltNamesOf, type Identifier } from './acme-identifiers.ts';
import { challengeObject, createAcmeObjects, effectiveOrderStatus } from './acme-objects.ts';
import { acmeIssuancePolicy, acmeValidity, acmeValidityDays } from './acme-policy.ts';
import { AcmeProblem, problem, problemOfAppError, type ProblemDocument } from './acme-problems.ts';
import { contextOf, createAcmeRequests, type AcmeReply, type Directory } from './acme-requests.ts';
import type { ChallengeValidator } from './challenge-validation.ts';
import { payloadObject, requirePostAsGet } from './jws.ts';

export interface AcmeServiceDeps {
  db: Db;
  clock: Clock;
  config: Pick<Config, 'region' | 'publicBaseUrl'>;
  issuance: Pick<IssuanceService, 'finalizeAcmeOrder' | 'acmeOrderCertificate'>;
  revocations: Pick<RevocationServices['revocations'], 'revokeCertificate'>;
  validator: ChallengeValidator;
  /** The master-key sealer, built once at composition. */
  sealer: Sealer;
}

export type { AcmeReply } from './acme-requests.ts';

export const ORDER_LIFETIME_MS = DAY_MS;
/** Most validations take well under a second; none outlasts the validator's deadline (VALIDATION_DEADLINE_MS). */
const PROCESSING_RETRY_AFTER_SECONDS = 2;
const REASON_NAMES = new Map<number, string>(Object.entries(REVOCATION_REASONS).map(([name, code]) => [code, name]));

/** A JWK's SubjectPublicKeyInfo DER, to compare with a certificate's or a CSR's key. */
const spkiOfJwk = (jwk: unknown): Buffer => createPublicKey({ key: jwk as never, format: 'jwk' }).export({ format: 'der', type: 'spki' });

/**
 * How old a finalize's claim of an order (processing) must be before another finalize may take it: the claimant died
 * before its issuing commit (a Lambda timeout, a killed worker), or the order would stay processing for good. Four
 * times the longest an HTTP request runs on Lambda (29 s), far past an issuance's 15 s transaction bound; a claimant
 * still running then issues under the same Idempotency-Key, so the order still gets one certificate.
 */
export const ORDER_CLAIM_STALE_MS = 2 * 60_000;

/**
 * How old a challenge's claim (processing) must be before another request may validate it again: its validator died
 * (a Lambda timeout, a killed worker) before writing the outcome. Twelve times a validation's deadline
 * (VALIDATION_DEADLINE_MS); an outcome is written only under the claim that validated it, so a late claimant's is dropped.
 */
export const CHALLENGE_CLAIM_STALE_MS = 2 * 60_000;

/** A row processing under a claim at least `staleMs` old: its claimant may have died, so another may take it. */
const isStale = (row: { status: string; processingSince: Date | null }, staleMs: number, now: Date): boolean =>
  row.status === 'processing' && row.processingSince !== null && row.processingSince.getTime() <= now.getTime() - staleMs;

/**
 * Only before the order expires: its finalize's Idempotency-Key, which a certificate issued by the dead claimant would
 * hold, outlives the order (24 h from the issuance, which came after the order's creation; orders live ORDER_LIFETIME_MS
 * from it), so a claim taken again always finds such a certificate rather than issuing a second one.
 */
const isStaleClaim = (order: AcmeOrder, now: Date): boolean => isStale(order, ORDER_CLAIM_STALE_MS, now) && order.expiresAt > now;

const isStaleChallengeClaim = (challenge: AcmeChallenge, now: Date): boolean => isStale(challenge, CHALLENGE_CLAIM_STALE_MS, now);

export function createAcmeService({ db, clock, config, issuance, revocations, validator, sealer }: AcmeServiceDeps) {
  const { directoryOf, newNonce, authenticate } = createAcmeRequests({ db, clock, config });
  const { orderObject, authorizationObject } = createAcmeObjects({ db, clock });
  const accounts = createAcmeAccounts({ db, clock, sealer, requests: { authenticate } });

  // -------------------------------------------------------------------------------------------------------------
  // Orders

  /** The names judged by the issuance evaluator against the ACME policy; the first refusal is rejectedIdentifier. */
  function checkPolicy(directory: Directory, identifiers: Identifier[]): void {
    const now = clock.now();
    // The ACME policy holds only name and lifetime rules: the key and EKUs given here are never judged by it.
    const violation = evaluateIssuance(
      { policies: [acmeIssuancePolicy(directory.policy)], chainConstraints: [] },
      {
        kind: 'ENTITY',
        names: identifiers.map((identifier, index) => ({
          type: identifier.type === 'ip' ? ('IP' as const) : ('DNS' as const),
          value: identifier.value,
          field: `identifiers[${index}]`,
        })),
        notBefore: now,
        notAfter: now,
        keyAlgorithm: 'EC256',
        extendedKeyUsages: [],
      },
    );
    if (violation) throw problem('rejectedIdentifier', violation.message);
  }

  async function newOrder(directory: Directory, url: string, body: unknown, requestId: string): Promise<AcmeReply> {
    const { jws, account } = await authenticate(directory, url, body, 'kid');
    const payload = payloadObject(jws);
    if (payload.notBefore !== undefined || payload.notAfter !== undefined) {
      throw problem(
        'malformed',
        `notBefore and notAfter are not supported: certificates are valid ${acmeValidityDays(directory.policy)} days from issuance`,
      );
    }
    const identifiers = orderIdentifiers(payload.identifiers);
    checkPolicy(directory, identifiers);
    const now = clock.now();
    const expiresAt = new Date(now.getTime() + ORDER_LIFETIME_MS);
    const orderId = randomUUID();
    const order = await db.$transaction(async (tx) => {
      const created = await tx.acmeOrder.create({
        data: {
          id: orderId,
          accountId: account!.id,
          domainId: account!.domainId,
          caId: directory.ca.id,
          status: 'pending',
          identifiers,
          expiresAt,
          createdAt: now,
        },
      });
      for (const identifier of identifiers) {
        const authorizationId = randomUUID();
        const wildcard = identifier.value.startsWith('*.');
        await tx.acmeAuthorization.create({
          data: {
            id: authorizationId,
            orderId,
            accountId: account!.id,
            identifierType: identifier.type,
            identifierValue: wildcard ? identifier.value.slice(2) : identifier.value,
            wildcard,
            status: 'pending',
            expiresAt,
          },
        });
        // A wildcard can be proven only in DNS (RFC 8555 §7.1.3); an IP address has no DNS name to hold a TXT record.
        const types = wildcard ? ['dns-01'] : identifier.type === 'ip' ? ['http-01', 'tls-alpn-01'] : ['http-01', 'dns-01', 'tls-alpn-01'];
        await tx.acmeChallenge.createMany({
          data: types.map((type) => ({
            id: randomUUID(),
            authorizationId,
            type,
            token: randomBytes(32).toString('base64url'),
            status: 'pending',
          })),
        });
      }
      await recordAudit(tx, contextOf(account!, requestId), {
        action: 'pca:acme:newOrder',
        resourceType: 'CA',
        resourceId: directory.ca.id,
        detail: { order_id: orderId, identifiers },
      });
      return created;
    });
    return { status: 201, body: await orderObject(directory.base, order), location: `${directory.base}/order/${orderId}` };
  }

  async function ownOrder(account: AcmeAccount, orderId: string): Promise<AcmeOrder> {
    const order = isUuid(orderId) ? await db.acmeOrder.findUnique({ where: { id: orderId } }) : null;
    if (!order || order.accountId !== account.id) throw problem('malformed', `order ${orderId} not found`, 404);
    return order;
  }

  async function getOrder(directory: Directory, url: string, orderId: string, body: unknown): Promise<AcmeReply> {
    const { jws, account } = await authenticate(directory, url, body, 'kid');
    requirePostAsGet(jws);
    const found = await ownOrder(account!, orderId);
    const order = (found.status === 'processing' && (await settleIssued(found))) || found;
    return { status: 200, body: await orderObject(directory.base, order), location: `${directory.base}/order/${order.id}` };
  }

  /**
   * An order left processing though its certificate was issued (its finalize failed, or died, after the issuing
   * commit, before the order named the certificate) becomes valid with that certificate, which its Idempotency-Key
   * names. Null when no issuance of it committed: its finalize is still issuing, or failed before it issued.
   */
  async function settleIssued(order: AcmeOrder): Promise<AcmeOrder | null> {
    const certificateId = await issuance.acmeOrderCertificate(order.domainId, order.id);
    if (!certificateId) return null;
    await db.acmeOrder.updateMany({ where: { id: order.id, status: 'processing' }, data: { status: 'valid', certificateId } });
    const settled = await db.acmeOrder.findUniqueOrThrow({ where: { id: order.id } });
    return settled.status === 'valid' ? settled : null;
  }

  /**
   * Moves the order ready -> processing for this request alone: under the order row's lock (which authorization
   * deactivation and challenge outcomes take too), only while it is ready, unexpired and every authorization of it
   * valid and unexpired, or while it is processing under a stale claim (see isStaleClaim). False when another request
   * claimed it first, or it changed (an authorization deactivated).
   */
  async function claimOrder(orderId: string): Promise<boolean> {
    return db.$transaction(async (tx) => {
      await lockRow(tx, 'acme_orders', orderId);
      const now = clock.now();
      const order = await tx.acmeOrder.findUnique({ where: { id: orderId } });
      if (!order || (effectiveOrderStatus(order, now) !== 'ready' && !isStaleClaim(order, now))) return false;
      const unproven = await tx.acmeAuthorization.count({
        where: { orderId, OR: [{ status: { not: 'valid' } }, { expiresAt: { lte: now } }] },
      });
      if (unproven > 0) return false;
      const claimed = await tx.acmeOrder.updateMany({
        where: { id: orderId, status: order.status, processingSince: order.processingSince },
        data: { status: 'processing', processingSince: now },
      });
      return claimed.count === 1;
    });
  }

  /** The claimed order's outcome: from processing only, which no other request leaves while this one holds it. */
  async function settleOrder(orderId: string, data: { status: string; error?: object }): Promise<void> {
    const settled = await db.acmeOrder.updateMany({ where: { id: orderId, status: 'processing' }, data });
    if (settled.count !== 1) throw new Error(`ACME order ${orderId} left processing while its finalize held it`);
  }

  /**
   * RFC 8555 §7.4: issues through the normal issuance service. The request that claims the order (ready -> processing,
   * claimOrder) alone issues and decides the order; another finalize meanwhile is refused (orderNotReady) until the
   * claim is stale (ORDER_CLAIM_STALE_MS: its finalize died), and so is deactivating one of its authorizations (it
   * cannot invalidate an order being issued). The issuance runs with the
   * order's id as Idempotency-Key (in a scope of its own, out of REST callers' reach), so a retry after a failure
   * whose certificate was written nonetheless gets that certificate, never a second one. An issuance that fails
   * (a 5xx) puts the order back to ready, to be finalized again.
   */
  async function finalize(directory: Directory, url: string, orderId: string, body: unknown, requestId: string): Promise<AcmeReply> {
    const { jws, account } = await authenticate(directory, url, body, 'kid');
    const order = await ownOrder(account!, orderId);
    const status = effectiveOrderStatus(order, clock.now());
    if (status === 'processing') {
      // A finalize whose issuance committed but whose order write failed: this one answers as it would have.
      const issued = await settleIssued(order);
      if (issued) return { status: 200, body: await orderObject(directory.base, issued), location: `${directory.base}/order/${order.id}` };
      // A finalize that died before its issuing commit: its claim goes stale, and this one may take it.
      if (!isStaleClaim(order, clock.now())) throw problem('orderNotReady', 'the order is being finalized by another request');
    } else if (status !== 'ready') throw problem('orderNotReady', `the order is ${status}, not ready`);
    const payload = payloadObject(jws);
    if (typeof payload.csr !== 'string' || !/^[A-Za-z0-9_-]+$/.test(payload.csr))
      throw problem('malformed', 'csr must be the base64url DER of a CSR');
    const pem = toPem('CERTIFICATE REQUEST', Buffer.from(payload.csr, 'base64url'));
    let csr: Awaited<ReturnType<typeof parseCsr>>;
    try {
      csr = await parseCsr(pem);
    } catch (error) {
      throw problem('badCSR', (error as Error).message);
    }
    if (!csrNamesMatch(order.identifiers as Identifier[], csr))
      throw problem('badCSR', "the CSR's names are not exactly the order's identifiers");
    // The account key signs the account's requests (revocation included); a certificate gets a key of its own.
    if (spkiOfJwk(account!.jwk).equals(csr.spki)) throw problem('badCSR', "the certificate's key must not be the account key");
    // A CA that cannot issue now (disabled, expired, frozen) is no fault of the CSR: the order stays ready for later.
    const now = clock.now();
    const caRefusal = issueRefusal(directory.ca, now, 'the directory');
    if (caRefusal) throw problem('unauthorized', `the CA does not issue now: ${caRefusal.message}`);
    const validity = acmeValidity(directory.policy, directory.ca.notAfter, now);
    if (!validity) throw problem('unauthorized', 'the CA does not issue now: its validity ends within the hour');
    if (!(await claimOrder(order.id))) {
      const current = effectiveOrderStatus(await db.acmeOrder.findUniqueOrThrow({ where: { id: order.id } }), clock.now());
      throw current === 'processing'
        ? problem('orderNotReady', 'the order is being finalized by another request')
        : problem('orderNotReady', `the order is ${current}, not ready`);
    }
    let certificateId: string;
    try {
      certificateId = await issuance.finalizeAcmeOrder(
        contextOf(account!, requestId),
        { issuer_id: directory.ca.id, csr: pem, validity },
        order.id,
        { extraPolicies: [acmeIssuancePolicy(directory.policy)], provenNames: subjectAltNamesOf(order.identifiers as Identifier[]) },
      );
    } catch (error) {
      const refused = clientErrorOf(error);
      if (!refused || refused.statusCode >= 500) {
        // No fault of the CSR or the order (a key store or the database failed): it can be finalized again. Should
        // that write fail too, the issuance's error is the answer.
        await settleOrder(order.id, { status: 'ready' }).catch(() => undefined);
        throw error;
      }
      // The tenant's quota is no fault of the CSR: the order goes back to ready, to be finalized once there is room.
      if (refused instanceof CertificateQuotaUsedUp) {
        await settleOrder(order.id, { status: 'ready' });
        throw problem('rateLimited', refused.message, 429);
      }
      // The order's Idempotency-Key names an earlier issuance from another CSR (one whose reply was lost, the order
      // put back to ready): that certificate is the order's, as a retry with its CSR would have been answered.
      if (refused.statusCode === 409) {
        if (!(await settleIssued(order))) await settleOrder(order.id, { status: 'ready' });
        throw problem('orderNotReady', `the order was finalized with another CSR: ${refused.message}`);
      }
      const refusal = problem('badCSR', `the CA refused the certificate: ${refused.message}`);
      await settleOrder(order.id, { status: 'invalid', error: refusal.document() as object });
      throw refusal;
    }
    // Another request may have settled it valid with this certificate meanwhile (settleIssued).
    const settled = await db.acmeOrder.updateMany({
      where: { id: order.id, status: 'processing' },
      data: { status: 'valid', certificateId },
    });
    const done = await db.acmeOrder.findUniqueOrThrow({ where: { id: order.id } });
    if (settled.count !== 1 && done.certificateId !== certificateId)
      throw new Error(`ACME order ${order.id} left processing while its finalize held it`);
    return { status: 200, body: await orderObject(directory.base, done), location: `${directory.base}/order/${order.id}` };
  }

  // -------------------------------------------------------------------------------------------------------------
  // Authorizations and challenges

  async function ownAuthorization(account: AcmeAccount, authorizationId: string): Promise<AcmeAuthorization> {
    const authorization = isUuid(authorizationId) ? await db.acmeAuthorization.findUnique({ where: { id: authorizationId } }) : null;
    if (!authorization || authorization.accountId !== account.id)
      throw problem('malformed', `authorization ${authorizationId} not found`, 404);
    return authorization;
  }

  /**
   * RFC 8555 §7.5.2: the account deactivates a pending or valid authorization (any other is refused, §7.1.6), and its
   * order, pending or ready, becomes invalid. Under the order row's lock, as finalize claims the order: an order being
   * finalized (processing) cannot lose an authorization until its certificate is issued or refused.
   */
  async function deactivateAuthorization(authorization: AcmeAuthorization): Promise<AcmeAuthorization> {
    return db.$transaction(async (tx) => {
      await lockRow(tx, 'acme_orders', authorization.orderId);
      const order = await tx.acmeOrder.findUnique({ where: { id: authorization.orderId }, select: { status: true } });
      if (order?.status === 'processing') {
        throw new AcmeProblem(
          'malformed',
          'the order of this authorization is being finalized: it can be deactivated once the order is valid or invalid',
          {
            status: 409,
            headers: { 'retry-after': String(PROCESSING_RETRY_AFTER_SECONDS) },
          },
        );
      }
      const now = clock.now();
      const deactivated = await tx.acmeAuthorization.updateMany({
        where: { id: authorization.id, status: { in: ['pending', 'valid'] }, expiresAt: { gt: now } },
        data: { status: 'deactivated' },
      });
      if (deactivated.count === 0) {
        const current = await tx.acmeAuthorization.findUniqueOrThrow({ where: { id: authorization.id } });
        const status = ['pending', 'valid'].includes(current.status) && current.expiresAt <= now ? 'expired' : current.status;
        throw problem('malformed', `the authorization is ${status}: only a pending or valid one can be deactivated`);
      }
      const reason = problem('unauthorized', `authorization ${authorization.id} was deactivated by the account`);
      await tx.acmeOrder.updateMany({
        where: { id: authorization.orderId, status: { in: ['pending', 'ready'] } },
        data: { status: 'invalid', error: reason.document() as object },
      });
      return tx.acmeAuthorization.findUniqueOrThrow({ where: { id: authorization.id } });
    });
  }

  async function getAuthorization(directory: Directory, url: string, authorizationId: string, body: unknown): Promise<AcmeReply> {
    const { jws, account } = await authenticate(directory, url, body, 'kid');
    let authorization = await ownAuthorization(account!, authorizationId);
    if (jws.payloadText !== '') {
      if (payloadObject(jws).status !== 'deactivated') throw problem('malformed', 'an authorization can only be changed to deactivated');
      authorization = await deactivateAuthorization(authorization);
    } else {
      authorization = await revalidateStaleChallenges(authorization, account!);
    }
    return { status: 200, body: await authorizationObject(directory.base, authorization) };
  }

  /**
   * RFC 8555 §7.5.1: the client says it is ready; the challenge is validated in this request (so any instance, or a Lambda,
   * can answer it). Only the request that claims it (pending -> processing) validates; see claimAndValidate.
   */
  async function respondToChallenge(directory: Directory, url: string, challengeId: string, body: unknown): Promise<AcmeReply> {
    const { jws, account } = await authenticate(directory, url, body, 'kid');
    const challenge = isUuid(challengeId) ? await db.acmeChallenge.findUnique({ where: { id: challengeId } }) : null;
    if (!challenge) throw problem('malformed', `challenge ${challengeId} not found`, 404);
    const authorization = await ownAuthorization(account!, challenge.authorizationId);
    const up = `<${directory.base}/authz/${authorization.id}>;rel="up"`;
    // RFC 8555 §7.5.1: a challenge still processing tells the client when to look again.
    const reply = (current: AcmeChallenge): AcmeReply => ({
      status: 200,
      body: challengeObject(directory.base, current),
      links: [up],
      ...(current.status === 'processing' ? { retryAfter: PROCESSING_RETRY_AFTER_SECONDS } : {}),
    });
    const now = clock.now();
    const asked = jws.payloadText !== '' && challenge.status === 'pending';
    if ((!asked && !isStaleChallengeClaim(challenge, now)) || authorization.status !== 'pending') return reply(challenge);
    if (authorization.expiresAt <= now) {
      if (asked) throw problem('malformed', 'the authorization has expired', 403);
      return reply(challenge);
    }
    return reply(await claimAndValidate(challenge, authorization, account!));
  }

  /**
   * Claims the challenge (pending, or processing under a stale claim: its validator died before writing the outcome)
   * and validates it. The outcome updates the challenge, its authorization and, when every authorization is valid, the
   * order (ready) in one transaction, under this claim only; should that fail, the challenge goes back to pending, to be
   * validated by the client's next POST. Returns the challenge as it then is (another request's claim if it won).
   */
  async function claimAndValidate(
    challenge: AcmeChallenge,
    authorization: AcmeAuthorization,
    account: AcmeAccount,
  ): Promise<AcmeChallenge> {
    const now = clock.now();
    const claimable = isStaleChallengeClaim(challenge, now)
      ? { status: 'processing', processingSince: challenge.processingSince }
      : { status: 'pending' };
    const claimed = await db.acmeChallenge.updateMany({
      where: { id: challenge.id, ...claimable },
      data: { status: 'processing', processingSince: now },
    });
    if (claimed.count === 0) return db.acmeChallenge.findUniqueOrThrow({ where: { id: challenge.id } });
    const claim = { id: challenge.id, status: 'processing', processingSince: now };
    try {
      return await validateClaimed(challenge, authorization, account, claim);
    } catch (error) {
      // Should that write fail too, the first error is the answer.
      await db.acmeChallenge.updateMany({ where: claim, data: { status: 'pending', processingSince: null } }).catch(() => undefined);
      throw error;
    }
  }

  /** A poll of a pending authorization validates again a challenge of it whose claim is stale (see claimAndValidate). */
  async function revalidateStaleChallenges(authorization: AcmeAuthorization, account: AcmeAccount): Promise<AcmeAuthorization> {
    const now = clock.now();
    if (authorization.status !== 'pending' || authorization.expiresAt <= now) return authorization;
    const stale = await db.acmeChallenge.findMany({
      where: {
        authorizationId: authorization.id,
        status: 'processing',
        processingSince: { lte: new Date(now.getTime() - CHALLENGE_CLAIM_STALE_MS) },
      },
    });
    let current = authorization;
    // One challenge decides the authorization (RFC 8555 §7.1.6): none is validated once it is no longer pending.
    for (const challenge of stale) {
      if (current.status !== 'pending') break;
      await claimAndValidate(challenge, current, account);
      current = await db.acmeAuthorization.findUniqueOrThrow({ where: { id: authorization.id } });
    }
    return current;
  }

  /** Validates the challenge this request claimed (processing) and writes the outcome; returns the challenge as written. */
  async function validateClaimed(
    challenge: AcmeChallenge,
    authorization: AcmeAuthorization,
    account: AcmeAccount,
    claim: { id: string; status: string; processingSince: Date },
  ): Promise<AcmeChallenge> {
    const keyAuthorization = `${challenge.token}.${account.thumbprint}`;
    let failure: ProblemDocument | null = null;
    try {
      await validator.validate({
        type: challenge.type,
        token: challenge.token,
        identifier: { type: authorization.identifierType, value: authorization.identifierValue },
        keyAuthorization,
      });
    } catch (error) {
      failure = (error instanceof AcmeProblem ? error : problem('connection', String(error))).document();
    }
    return db.$transaction(async (tx) => {
      // The order row serializes its authorizations' outcomes: the last one to become valid sees the others valid.
      await lockRow(tx, 'acme_orders', authorization.orderId);
      const validatedAt = clock.now();
      const written = await tx.acmeChallenge.updateMany({
        where: claim,
        data: failure ? { status: 'invalid', error: failure as object } : { status: 'valid', validatedAt },
      });
      const updated = await tx.acmeChallenge.findUniqueOrThrow({ where: { id: challenge.id } });
      // Taken over as stale while this validation ran: the outcome is the claimant's that holds it.
      if (written.count === 0) return updated;
      const decided = await tx.acmeAuthorization.updateMany({
        where: { id: authorization.id, status: 'pending' },
        data: { status: failure ? 'invalid' : 'valid' },
      });
      // Another challenge of it decided the authorization first: the order follows the authorization, not this outcome.
      if (decided.count === 0) return updated;
      if (failure) {
        await tx.acmeOrder.updateMany({
          where: { id: authorization.orderId, status: 'pending' },
          data: { status: 'invalid', error: failure as object },
        });
      } else {
        const open = await tx.acmeAuthorization.count({ where: { orderId: authorization.orderId, status: { not: 'valid' } } });
        if (open === 0)
          await tx.acmeOrder.updateMany({ where: { id: authorization.orderId, status: 'pending' }, data: { status: 'ready' } });
      }
      return updated;
    });
  }

  // -------------------------------------------------------------------------------------------------------------
  // Certificates

  /** RFC 8555 §7.4.2: the certificate and its CA chain up to the root; the alternate chain leaves the root out. */
  async function certificateChain(
    directory: Directory,
    url: string,
    certificateId: string,
    alternate: boolean,
    body: unknown,
  ): Promise<AcmeReply> {
    const { jws, account } = await authenticate(directory, url, body, 'kid');
    requirePostAsGet(jws);
    const order = isUuid(certificateId) ? await db.acmeOrder.findFirst({ where: { certificateId, accountId: account!.id } }) : null;
    // A certificate deleted through the API is gone for its ACME account too.
    const certificate = order ? await db.certificate.findFirst({ where: { id: certificateId, deletedAt: null } }) : null;
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

  /**
   * RFC 8555 §7.6: whether the account holds a valid, unexpired authorization (of this CA: an account is one CA's) for
   * every identifier of the certificate: each DNS and IP subject alternative name, and its common name. A wildcard
   * name needs a wildcard authorization of its base, another name one of its own; a name of another type (email,
   * URI) or a common name that is neither a host name nor an IP address cannot be authorized, so it refuses.
   */
  async function holdsAuthorizationsFor(account: AcmeAccount, der: Uint8Array): Promise<boolean> {
    const identifiers = certificateIdentifiers(der);
    if (identifiers === null || identifiers.length === 0) return false;
    const wanted = identifiers.map(({ type, value }) => {
      const wildcard = type === 'dns' && value.startsWith('*.');
      return { identifierType: type, identifierValue: wildcard ? value.slice(2) : value, wildcard };
    });
    const held = await db.acmeAuthorization.findMany({
      where: { accountId: account.id, status: 'valid', expiresAt: { gt: clock.now() }, OR: wanted },
      select: { identifierType: true, identifierValue: true, wildcard: true },
    });
    const key = (item: { identifierType: string; identifierValue: string; wildcard: boolean }) =>
      `${item.identifierType}:${item.wildcard ? '*.' : ''}${item.identifierValue}`;
    const proven = new Set(held.map(key));
    return wanted.every((item) => proven.has(key(item)));
  }

  /** RFC 8555 §7.6: by the account that ordered the certificate or holds authorizations for its names, or by its own key (jwk). */
  async function revokeCertificate(directory: Directory, url: string, body: unknown, requestId: string): Promise<AcmeReply> {
    const { jws, account } = await authenticate(directory, url, body, 'either');
    const payload = payloadObject(jws);
    if (typeof payload.certificate !== 'string') throw problem('malformed', 'certificate must be the base64url DER of the certificate');
    const der = new Uint8Array(Buffer.from(payload.certificate, 'base64url'));
    let parsed: ReturnType<typeof parseCertificate>;
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
      if (!ordered && !(await holdsAuthorizationsFor(account, der)))
        throw problem('unauthorized', 'this account neither ordered this certificate nor holds valid authorizations for all its names');
    } else {
      if (!spkiOfJwk(jws.header.jwk).equals(parsed.spki))
        throw problem('unauthorized', "the JWS is signed neither by an account nor by the certificate's key");
    }
    if (row.status === 'REVOKED') throw problem('alreadyRevoked', 'the certificate is already revoked');
    const ctx: RequestContext = account
      ? contextOf(account, requestId)
      : { domainId: row.domainId, actor: 'acme:certificate-key', requestId };
    try {
      await revocations.revokeCertificate(ctx, row.id, reason);
    } catch (error) {
      if (error instanceof AppError && /already revoked/.test(error.message))
        throw problem('alreadyRevoked', 'the certificate is already revoked');
      throw error;
    }
    return { status: 200 };
  }

  return {
    /** The directory object (RFC 8555 §7.1.1): the URLs of its resources. */
    directoryObject({ base }: Directory) {
      return {
        newNonce: `${base}/new-nonce`,
        newAccount: `${base}/new-account`,
        newOrder: `${base}/new-order`,
        revokeCert: `${base}/revoke-cert`,
        keyChange: `${base}/key-change`,
        meta: { externalAccountRequired: true },
      };
    },
    directoryUrl: (reference: string) => directoryUrl(config.publicBaseUrl, reference),
    directoryOf,
    newNonce,
    ...accounts,
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
