/**
 * Access keys (§10.7): per-domain AK/SK pairs with permitted actions. The secret is needed again for every HMAC
 * verification, so it is stored sealed under the master key (aad = the access key id), never hashed.
 *
 * Verification reads the key's row on every request, so a deleted key fails at once in every process. Unsealing
 * costs two AES-GCM operations (40-60 µs), so a process keeps the secrets it unsealed, by the row's key and sealed
 * text: a row read again and still the same needs no second unsealing.
 */
import type { Action } from '../../auth/actions.ts';
import {
  checkSignedHead,
  type SignatureUse,
  type SignedHead,
  type SignedRequest,
  unknownAccessKey,
  verifySignedBody,
} from '../../auth/sdk-hmac.ts';
import type { Clock } from '../../clock.ts';
import type { Config } from '../../config.ts';
import type { Db } from '../../db/database.ts';
import type { SqlRunner } from '../../db/tx.ts';
import { advisoryLock } from '../../db/locks.ts';
import type { AccessKey } from '../../db/generated/client.ts';
import { errors } from '../../errors.ts';
import { LruMap } from '../../lru-map.ts';
import type { Sealer } from '../../keystore/sealing.ts';
import { recordAudit } from '../audit/audit-log.ts';
import type { RequestContext } from '../context.ts';
import { checkDescription, grantedActions, newAccessKeyId, newSecret } from './access-key-rules.ts';
import { claimSignature } from './signature-replay.ts';
import { ACTIVE, USABLE, USABLE_KEY } from './access-keys-sql.ts';
import type { NewAccessKey } from './access-key-input.ts';
import { issueTemporaryCredential, openSecurityToken, type TemporaryCredential } from './temporary-credentials.ts';

const DELETED = 'deleted';
/** Unsealed secrets a process keeps: far more than the keys that sign to one process in a while. */
const SECRETS_KEPT = 10_000;

const issuingKeyDeleted = () => errors.authenticationFailed('the access key that issued this security token is deleted');

interface UsableKeyRow {
  domain_id: string;
  sealed_secret: string;
  actions: string[];
}

/** What request verification needs to know about a usable key. */
export interface VerifiableKey {
  domainId: string;
  actions: Action[];
  secret: string;
}

/** The usable key an AK/SK-signed request names, found from the request's head before its body is read. */
export interface SigningKey extends VerifiableKey {
  head: SignedHead;
  /** Set for a temporary pair (X-Security-Token): the permanent key that issued it. */
  issuer?: string;
}

/** The key an AK/SK-signed request was verified with. */
export interface VerifiedKey {
  access: string;
  domainId: string;
  actions: Action[];
  /** Set for a temporary pair (X-Security-Token): the permanent key that issued it. */
  issuer?: string;
  /** What the replay cache records if the request changes anything. */
  use: SignatureUse;
}

export interface AccessKeyServiceDeps {
  db: Db;
  /** The raw runner (`database.query`): every signed request's look-up and claim are named statements. */
  sql: SqlRunner;
  clock: Clock;
  config: Pick<Config, 'region' | 'quotas'>;
  /** The master-key sealer, built once at composition. */
  sealer: Sealer;
}

export function createAccessKeyService({ db, sql, clock, config, sealer }: AccessKeyServiceDeps) {
  const secrets = new LruMap<string, string>(SECRETS_KEPT);
  function secretOf(access: string, sealedSecret: string): string {
    const entry = `${access} ${sealedSecret}`;
    const kept = secrets.get(entry);
    if (kept !== undefined) return kept;
    const secret = Buffer.from(sealer.unseal(sealedSecret, access)).toString('utf8');
    secrets.set(entry, secret);
    return secret;
  }

  /** The key and its secret if it exists and is not deleted; undefined otherwise. */
  async function findVerifiable(access: string): Promise<VerifiableKey | undefined> {
    const [key] = await sql<UsableKeyRow>(USABLE_KEY, [access]);
    if (!key) return undefined;
    return { domainId: key.domain_id, actions: key.actions as Action[], secret: secretOf(access, key.sealed_secret) };
  }

  /** An AK/SK-signed request's head judged without the database (format, X-Sdk-Date); a 401 AppError if unusable. */
  function judgeHead(headers: SignedRequest['headers']): { head: SignedHead; securityToken?: string } {
    const head = checkSignedHead(headers, clock.now(), { region: config.region });
    const securityToken = headers['x-security-token'];
    if (Array.isArray(securityToken)) throw errors.authenticationFailed("header 'x-security-token' must not repeat");
    return { head, securityToken };
  }

  /** The usable key a judged head names, from the database; a 401 AppError for an unknown or deleted one. */
  async function keyOf({ head, securityToken }: ReturnType<typeof judgeHead>): Promise<SigningKey> {
    const { access } = head.credential;
    // A permanent key verifies alone, whatever X-Security-Token says (§3.3: the value is ignored).
    const permanent = await findVerifiable(access);
    if (permanent) return { head, ...permanent };
    if (securityToken === undefined) throw unknownAccessKey(access);
    const temporary = openSecurityToken(sealer, securityToken, access, clock.now());
    const issuing = await findVerifiable(temporary.issuer);
    if (!issuing || issuing.domainId !== temporary.domainId) throw issuingKeyDeleted();
    return { head, ...issuing, secret: temporary.secret, issuer: temporary.issuer };
  }

  return {
    /** Throws 401 unless the domain's key `access` exists (the key a token minting a credential was exchanged for). */
    async requireExisting(domainId: string, access: string): Promise<void> {
      const key = await findVerifiable(access);
      if (key?.domainId !== domainId) {
        throw errors.authenticationFailed(`the access key this token was exchanged for, ${access}, is deleted: exchange a live key`);
      }
    },

    /** Creates a key for the caller's domain; the secret is returned here and never again. */
    async create(
      context: RequestContext,
      callerActions: ReadonlySet<string>,
      request: NewAccessKey,
    ): Promise<{ key: AccessKey; secret: string }> {
      const description = checkDescription(request.description);
      const actions = grantedActions(request.actions, callerActions);
      const access = newAccessKeyId();
      const secret = newSecret();
      const key = await db.$transaction(async (tx) => {
        // Counted under the domain's lock, so concurrent creations cannot pass the quota together.
        await advisoryLock(tx, 'accessKeyQuota', context.domainId);
        const used = await tx.accessKey.count({ where: { domainId: context.domainId, deletedAt: null } });
        if (used >= config.quotas.accessKey) {
          throw errors.conflictingState(`the access key quota is used up (${used} of ${config.quotas.accessKey}): delete a key first`);
        }
        const created = await tx.accessKey.create({
          data: {
            access,
            domainId: context.domainId,
            sealedSecret: sealer.seal(Buffer.from(secret, 'utf8'), access),
            status: ACTIVE,
            description,
            actions,
            createdAt: clock.now(),
          },
        });
        await recordAudit(tx, context, {
          action: 'pca:accessKey:create',
          resourceType: 'ACCESS_KEY',
          resourceId: access,
          detail: { actions },
        });
        return created;
      });
      return { key, secret };
    },

    /** The domain's usable keys, oldest first. */
    async list(context: RequestContext): Promise<AccessKey[]> {
      return db.accessKey.findMany({
        where: { domainId: context.domainId, ...USABLE },
        orderBy: [{ createdAt: 'asc' }, { access: 'asc' }],
      });
    },

    /** Deletes a key of the caller's domain; signatures with it fail from the commit on. */
    async remove(context: RequestContext, access: string): Promise<void> {
      await db.$transaction(async (tx) => {
        const { count } = await tx.accessKey.updateMany({
          where: { access, domainId: context.domainId, ...USABLE },
          data: { status: DELETED, deletedAt: clock.now() },
        });
        if (count === 0) throw errors.notFound(`access key '${access}'`);
        await recordAudit(tx, context, { action: 'pca:accessKey:delete', resourceType: 'ACCESS_KEY', resourceId: access });
      });
    },

    /**
     * The usable key an AK/SK-signed request names, judged from its head alone (the request's body is not read yet):
     * a 401 AppError for a malformed or stale head, or an unknown, deleted or expired key (a temporary pair's
     * security token and its still usable issuer). Its signature is checked by `verifyRequest` once the body is in.
     */
    signingKeyOf: (headers: SignedRequest['headers']): Promise<SigningKey> => keyOf(judgeHead(headers)),

    /**
     * Verifies an AK/SK-signed request (§3.2) once its body is in, then its signature; a 401 AppError for any failure.
     * Without `current`, the head and key are judged again as signingKeyOf does (a key deleted, or a pair's token
     * expired, while the body was on its way signs nothing). `current`, signingKeyOf's answer for a request with no
     * body, is used as it is: nothing came after its head. `hostOverride` is the host the client addressed when a
     * proxy rewrote Host.
     */
    async verifyRequest(request: SignedRequest, hostOverride?: string, current?: SigningKey): Promise<VerifiedKey> {
      const key = current ?? (await keyOf(judgeHead(request.headers)));
      const { access, use } = verifySignedBody(request, key.head, key.secret, hostOverride);
      return { access, domainId: key.domainId, actions: key.actions, use, ...(key.issuer && { issuer: key.issuer }) };
    },

    /** A verified signature's one use (signature-replay.ts): a second one gets 401. */
    claimSignature: (use: SignatureUse): Promise<void> => claimSignature(sql, use),

    /**
     * A temporary pair with the actions of the permanent key that signed the request (the context's actor). Stored
     * nowhere, so its audit event is the only record of who holds it.
     */
    async issueTemporary(context: RequestContext, durationSeconds: number): Promise<TemporaryCredential> {
      const issued = issueTemporaryCredential(sealer, { access: context.actor, domainId: context.domainId }, clock.now(), durationSeconds);
      await recordAudit(db, context, {
        action: 'pca:accessKey:createTemporary',
        resourceType: 'ACCESS_KEY',
        resourceId: issued.access,
        detail: { expires_at: issued.expiresAt.toISOString() },
      });
      return issued;
    },

    /** §3.5: the configured domain name, or the id. */
    async domainName(domainId: string): Promise<string> {
      const domain = await db.domain.findUnique({ where: { id: domainId } });
      return domain?.name || domainId;
    },
  };
}
export type AccessKeyService = ReturnType<typeof createAccessKeyService>;
