/** ACME accounts (RFC 8555 §7.3): created only through External Account Binding, updated, re-keyed, listed. */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../../clock.ts';
import type { Db } from '../../db/database.ts';
import { dbErrorKind } from '../../db/errors.ts';
import type { AcmeAccount } from '../../db/generated/client.ts';
import { eabSealingAad, type Sealer } from '../../keystore/sealing.ts';
import { recordAudit } from '../audit/audit-log.ts';
import { contacts } from './acme-identifiers.ts';
import { accountObject } from './acme-objects.ts';
import { AcmeProblem, problem } from './acme-problems.ts';
import { contextOf, type AcmeReply, type AcmeRequests, type Directory } from './acme-requests.ts';
import { parseJws, payloadObject, publicJwk, requirePostAsGet, thumbprint, unusableEabKey, verifyEab, verifyJws, type Jwk } from './jws.ts';

/**
 * The shape of every kid acme-admin-service mints (`eab_` and 22 base64url characters), with room to spare: any other
 * names no key, and is never looked up (Postgres refuses a NUL in text).
 */
const EAB_KID = /^[A-Za-z0-9_-]{1,64}$/;

/** Orders listed per page (RFC 8555 §7.1.2.1). */
export const ORDERS_PAGE = 100;

/** A page's `cursor` (`{milliseconds}.{order id}`, as listOrders writes it); null for the first page. */
function ordersCursor(value: string | null): { createdAt: Date; id: string } | null {
  if (value === null) return null;
  const match = /^(\d{1,15})\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/.exec(value);
  if (!match) throw problem('malformed', 'cursor is not one this server wrote');
  return { createdAt: new Date(Number(match[1])), id: match[2]! };
}

export function createAcmeAccounts({
  db,
  clock,
  sealer,
  requests,
}: {
  db: Db;
  clock: Clock;
  sealer: Sealer;
  requests: Pick<AcmeRequests, 'authenticate'>;
}) {
  const { authenticate } = requests;

  async function hmacKeyOf(directory: Directory, kid: string): Promise<Buffer | null> {
    if (!EAB_KID.test(kid)) return null;
    const key = await db.acmeEabKey.findUnique({ where: { kid } });
    if (!key || key.revokedAt || key.caId !== directory.ca.id || key.domainId !== directory.ca.domainId) return null;
    return Buffer.from(sealer.unseal(key.sealedHmacKey, eabSealingAad(kid)));
  }

  async function newAccount(directory: Directory, url: string, body: unknown, requestId: string): Promise<AcmeReply> {
    const { jws } = await authenticate(directory, url, body, 'jwk');
    const payload = payloadObject(jws);
    const jwk = publicJwk(jws.header.jwk!);
    const print = thumbprint(jwk);
    const existing = await db.acmeAccount.findUnique({ where: { caId_thumbprint: { caId: directory.ca.id, thumbprint: print } } });
    // RFC 8555 §7.3.6: no request authorized by a deactivated account's key is accepted, this one included.
    if (existing && existing.status !== 'valid') throw problem('unauthorized', `the account of this key is ${existing.status}`, 401);
    if (existing)
      return { status: 200, body: accountObject(directory.base, existing), location: `${directory.base}/account/${existing.id}` };
    if (payload.onlyReturnExisting === true) throw problem('accountDoesNotExist', 'no account exists with this key');
    if (payload.externalAccountBinding === undefined)
      throw problem('externalAccountRequired', 'this CA requires External Account Binding: ask its owner for an EAB key');
    const contact = contacts(payload.contact);
    const kid = await verifyEab(payload.externalAccountBinding, jwk, url, (name) => hmacKeyOf(directory, name));
    const id = randomUUID();
    try {
      const account = await db.$transaction(async (tx) => {
        // Read again under FOR SHARE: a revocation committed since the check above would miss this account, and one
        // still running waits for it (its deactivation of the key's accounts then includes this one).
        const [key] = await tx.$queryRaw<{ revoked: boolean }[]>`
          SELECT revoked_at IS NOT NULL AS revoked FROM acme_eab_keys WHERE kid = ${kid} FOR SHARE`;
        if (!key || key.revoked) throw unusableEabKey(kid);
        const created = await tx.acmeAccount.create({
          data: {
            id,
            domainId: directory.ca.domainId,
            caId: directory.ca.id,
            eabKid: kid,
            thumbprint: print,
            jwk: jwk as object,
            status: 'valid',
            contact,
            createdAt: clock.now(),
          },
        });
        await recordAudit(
          tx,
          { domainId: created.domainId, actor: `acme:eab:${kid}`, requestId },
          { action: 'pca:acme:newAccount', resourceType: 'ACME_ACCOUNT', resourceId: id, detail: { ca_id: directory.ca.id, eab_kid: kid } },
        );
        return created;
      });
      return { status: 201, body: accountObject(directory.base, account), location: `${directory.base}/account/${id}` };
    } catch (error) {
      // The same key registered concurrently: answer with that account.
      if (dbErrorKind(error) !== 'unique-violation') throw error;
      const raced = await db.acmeAccount.findUnique({ where: { caId_thumbprint: { caId: directory.ca.id, thumbprint: print } } });
      if (!raced) throw error;
      return { status: 200, body: accountObject(directory.base, raced), location: `${directory.base}/account/${raced.id}` };
    }
  }

  async function updateAccount(directory: Directory, url: string, accountId: string, body: unknown, requestId: string): Promise<AcmeReply> {
    const { jws, account } = await authenticate(directory, url, body, 'kid');
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
        if (data.status)
          await recordAudit(tx, contextOf(current, requestId), {
            action: 'pca:acme:deactivateAccount',
            resourceType: 'ACME_ACCOUNT',
            resourceId: current.id,
          });
        return updated;
      });
    }
    return { status: 200, body: accountObject(directory.base, current), location: `${directory.base}/account/${current.id}` };
  }

  /** RFC 8555 §7.3.5: the inner JWS, signed by the new key, names the account and its old key. */
  async function keyChange(directory: Directory, url: string, body: unknown, requestId: string): Promise<AcmeReply> {
    const { jws, account } = await authenticate(directory, url, body, 'kid');
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
    const keyHolder = () => db.acmeAccount.findUnique({ where: { caId_thumbprint: { caId: directory.ca.id, thumbprint: print } } });
    const keyTaken = (holder: { id: string }) =>
      new AcmeProblem('malformed', 'the new key is already the key of an account', {
        status: 409,
        headers: { location: `${directory.base}/account/${holder.id}` },
      });
    const holder = await keyHolder();
    if (holder) throw keyTaken(holder);
    let updated: AcmeAccount;
    try {
      updated = await db.$transaction(async (tx) => {
        const row = await tx.acmeAccount.update({ where: { id: account!.id }, data: { jwk: newKey as object, thumbprint: print } });
        await recordAudit(tx, contextOf(account!, requestId), {
          action: 'pca:acme:keyChange',
          resourceType: 'ACME_ACCOUNT',
          resourceId: account!.id,
          detail: { thumbprint: print },
        });
        return row;
      });
    } catch (error) {
      // Another account rolled over to this key since the check above.
      const raced = dbErrorKind(error) === 'unique-violation' ? await keyHolder() : null;
      if (!raced) throw error;
      throw keyTaken(raced);
    }
    return { status: 200, body: accountObject(directory.base, updated), location: `${directory.base}/account/${updated.id}` };
  }

  /**
   * RFC 8555 §7.1.2.1: the account's orders, newest first, ORDERS_PAGE at a time; a fuller list says where its next
   * page is (Link rel="next"), the URL with `cursor`: the creation time and id of the page's last order.
   */
  async function listOrders(directory: Directory, url: string, accountId: string, body: unknown): Promise<AcmeReply> {
    const { jws, account } = await authenticate(directory, url, body, 'kid');
    requirePostAsGet(jws);
    if (account!.id !== accountId) throw problem('unauthorized', 'an account can only list its own orders');
    const cursor = ordersCursor(new URL(url).searchParams.get('cursor'));
    const orders = await db.acmeOrder.findMany({
      where: {
        accountId,
        ...(cursor ? { OR: [{ createdAt: { lt: cursor.createdAt } }, { createdAt: cursor.createdAt, id: { lt: cursor.id } }] } : {}),
      },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: ORDERS_PAGE + 1,
      select: { id: true, createdAt: true },
    });
    const page = orders.slice(0, ORDERS_PAGE);
    const last = page.at(-1);
    const next =
      orders.length > ORDERS_PAGE && last
        ? `<${directory.base}/orders/${accountId}?cursor=${last.createdAt.getTime()}.${last.id}>;rel="next"`
        : undefined;
    return { status: 200, body: { orders: page.map(({ id }) => `${directory.base}/order/${id}`) }, ...(next ? { links: [next] } : {}) };
  }

  return { newAccount, updateAccount, keyChange, listOrders };
}
