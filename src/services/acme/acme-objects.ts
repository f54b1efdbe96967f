/** The JSON objects of ACME resources (RFC 8555 §7.1): accounts, orders, authorizations, challenges. */
import type { Clock } from '../../clock.ts';
import type { Db } from '../../db/database.ts';
import type { AcmeAccount, AcmeAuthorization, AcmeChallenge, AcmeOrder } from '../../db/generated/client.ts';
import { problem } from './acme-problems.ts';

const iso = (date: Date | null | undefined): string | undefined => date?.toISOString();

export function accountObject(base: string, account: AcmeAccount) {
  return {
    status: account.status,
    contact: account.contact,
    orders: `${base}/orders/${account.id}`,
    createdAt: account.createdAt.toISOString(),
  };
}

/** A pending or ready order past its expiry is invalid, whatever its row says. */
export function effectiveOrderStatus(order: AcmeOrder, now: Date): string {
  return ['pending', 'ready'].includes(order.status) && order.expiresAt <= now ? 'invalid' : order.status;
}

export function challengeObject(base: string, challenge: AcmeChallenge) {
  return {
    type: challenge.type,
    url: `${base}/chall/${challenge.id}`,
    status: challenge.status,
    token: challenge.token,
    ...(challenge.validatedAt ? { validated: iso(challenge.validatedAt) } : {}),
    ...(challenge.error ? { error: challenge.error } : {}),
  };
}

/** The objects that read their children (an order's authorizations, an authorization's challenges). */
export function createAcmeObjects({ db, clock }: { db: Db; clock: Clock }) {
  async function orderObject(base: string, order: AcmeOrder) {
    const now = clock.now();
    const authorizations = await db.acmeAuthorization.findMany({
      where: { orderId: order.id },
      orderBy: { id: 'asc' },
      select: { id: true },
    });
    const status = effectiveOrderStatus(order, now);
    return {
      status,
      expires: iso(order.expiresAt),
      identifiers: order.identifiers,
      authorizations: authorizations.map(({ id }) => `${base}/authz/${id}`),
      finalize: `${base}/order/${order.id}/finalize`,
      ...(order.certificateId ? { certificate: `${base}/cert/${order.certificateId}` } : {}),
      ...(order.error
        ? { error: order.error }
        : status === 'invalid'
          ? { error: problem('malformed', 'the order expired').document() }
          : {}),
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

  return { orderObject, authorizationObject };
}
