/**
 * The group-committed batch of plain certificates (issuance-service.ts's fast path), written with prepared raw
 * statements: no Prisma query runs on this path. A batch whose issuers this process has read before is one
 * statement (`writeAgainstRememberedIssuers`); the rest, and any request that one does not answer, are one
 * transaction (`writeInTransaction`). The requests of a domain last found short of quota skip both
 * (`writeShortOfQuota`).
 */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../../clock.ts';
import { insertRows, insertRowsWhere } from '../../db/bulk-insert.ts';
import { dbErrorKind, mayHaveCommitted } from '../../db/errors.ts';
import type { DatabaseHandle } from '../../db/database.ts';
import { clientErrorOf, errors } from '../../errors.ts';
import type { Metrics } from '../../metrics/metrics.ts';
import { auditRows, type AuditedChange } from '../audit/audit-log.ts';
import type { BillingHooks, CertificateIssue } from '../billing/usage-hooks.ts';
import type { RequestContext } from '../context.ts';
import { certificateQuotaUsedUp, certificatesUsed, releaseCertificateQuota, takeCertificateQuota } from './certificate-usage.ts';
import type { Pending } from '../../db/group-commit.ts';
import {
  answerOfHeldKey,
  claimIdempotencyKeys,
  claimRows,
  lookUpIdempotencyKey,
  releaseIdempotencyKeys,
  windowStart,
  type IdempotencyScope,
} from './idempotency.ts';
import type { IssuancePlan } from './issuance-plans.ts';
import type { IssuingCa, IssuingCaLoader } from './issuing-ca.ts';
import { heldCaKeyRefused, heldCaKeys } from './held-ca-keys.ts';
import { keysAsJson, rememberedIssuersGuard, spkiHex } from './issuance-sql.ts';

/** An Idempotency-Key request's key and body hash. */
export interface Idempotency {
  scope: IdempotencyScope;
  hash: string;
}

export interface BatchedIssuance {
  ctx: RequestContext;
  issuerId: string;
  plan: IssuancePlan;
  idempotency?: Idempotency;
}

/** A lone issuance's answer: the certificate's id, and whether it was issued now (not a held key's holder). */
export interface AloneAnswer {
  id: string;
  issued: boolean;
}

/** What the batch stores of one signed certificate. */
export interface SignedIssuance {
  id: string;
  certificate: Record<string, unknown>;
  change: AuditedChange;
  issue: CertificateIssue;
  caKeyAlgorithm: string;
}

export interface BatchWriterDeps {
  sql: Pick<DatabaseHandle, 'query' | 'transaction'>;
  clock: Clock;
  billing: Pick<BillingHooks, 'chargeCertificateIssues' | 'paidIssueRecords'>;
  metrics: Pick<Metrics, 'certificatesIssued' | 'issuanceBatchRedos'>;
  issuingCas: IssuingCaLoader;
  /** The certificates a domain may hold. */
  certificateQuota: number;
  signed(ctx: RequestContext, plan: IssuancePlan, issuer: IssuingCa, now: Date, id: string): Promise<SignedIssuance>;
  /** Issues one request alone (its own transaction, with retries): the fallback of a failed batch. */
  issueAlone(item: BatchedIssuance): Promise<AloneAnswer>;
}

/** How often each key occurs, in key order (so locks taken in this order cannot deadlock). */
function countBy(keys: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const key of [...keys].sort()) counts.set(key, (counts.get(key) ?? 0) + 1);
  return counts;
}

type Batch = Pending<BatchedIssuance, string>[];

/** The keys of a batch's CSRs (a server-made key is fresh: it cannot be a CA's). */
function csrKeys(batch: Batch): Uint8Array[] {
  return batch.flatMap(({ item: { plan } }) => (plan.genMode === 'CSR' ? [plan.spki] : []));
}

/** Past this many domains short of quota at once, the hints are dropped (each is found again by one batch). */
const MAX_DOMAINS_SHORT_OF_QUOTA = 10_000;

export function createBatchWriter(deps: BatchWriterDeps): (batch: Batch) => Promise<void> {
  const { clock, issuingCas, signed } = deps;

  /**
   * The domains the batch transaction last found short of quota: a hint, never the check. Their requests skip the
   * batch (`writeShortOfQuota`) until one of them is issued: a tenant hammering at its cap costs no signature, and its
   * keyed requests never fail a batch statement that other tenants' requests share.
   */
  const shortOfQuota = new Set<string>();

  function issueAloneWhileShort(domainId: string, pending: Batch[number]): void {
    if (shortOfQuota.size >= MAX_DOMAINS_SHORT_OF_QUOTA) shortOfQuota.clear();
    shortOfQuota.add(domainId);
    deps.issueAlone(pending.item).then(({ id, issued }) => {
      if (issued) shortOfQuota.delete(domainId);
      pending.resolve(id);
    }, pending.reject);
  }

  /**
   * Requests of domains short of quota. Where a domain's committed count shows its quota used up, its requests are
   * answered without a transaction: a keyless one refused, a keyed one with its key's certificate if an earlier
   * request has one (a replay), else refused too. The counts are read before the keys: a key found absent after its
   * domain was seen full was absent then too, so each refusal is one the request could have had at that moment (a
   * holder committing in between is found). The rest are issued alone, each taking the quota's next unit under lock
   * before it signs, or refused.
   */
  async function writeShortOfQuota(requests: Batch): Promise<void> {
    const usedUp = new Set<string>();
    for (const domainId of new Set(requests.map(({ item }) => item.ctx.domainId))) {
      // A failed read leaves its requests to the lone path, which meets (and reports) the same fault.
      const used = await certificatesUsed(deps.sql.query, domainId).catch(() => 0);
      if (used >= deps.certificateQuota) usedUp.add(domainId);
    }
    const now = clock.now();
    await Promise.all(
      requests.map(async (pending) => {
        const { ctx, idempotency } = pending.item;
        if (!usedUp.has(ctx.domainId)) return issueAloneWhileShort(ctx.domainId, pending);
        try {
          const replayed = idempotency && (await lookUpIdempotencyKey(deps.sql.query, idempotency.scope, idempotency.hash, now));
          if (replayed) pending.resolve(replayed);
          else pending.reject(certificateQuotaUsedUp(deps.certificateQuota));
        } catch (error) {
          if (clientErrorOf(error)) pending.reject(error);
          else issueAloneWhileShort(ctx.domainId, pending);
        }
      }),
    );
  }

  function answered(pending: Batch[number], id: string, caKeyAlgorithm: string): void {
    deps.metrics.certificatesIssued.inc({ ca_key_algorithm: caKeyAlgorithm });
    pending.resolve(id);
  }

  /**
   * The batch in one statement, with no transaction around it: signed against the issuers' rows as this process
   * last read them (no lock held while signing), then stored only if each issuer row still has the version it was
   * read at (nothing about it has changed since, so the checks made on it still hold) and each domain's quota has
   * room, all checked, locked and written inside that statement. Returns the requests it did not answer, for the
   * transaction: all of them if an issuer is not remembered or has changed, a CSR's key is a held CA key (the
   * transaction refuses that request and issues the rest), the batch uses free quota or needs
   * volume-tiered prices, or a domain with a key claimed in the batch is short of quota (the statement fails: its
   * claims must not stand); a request whose Idempotency-Key another request holds (a replay: the transaction answers
   * the holder's certificate, or 409); a keyless domain short of quota; a refusal (the fresh row may differ). Keys
   * are claimed in that statement too, before the quota (issuance-sql.ts).
   */
  async function writeAgainstRememberedIssuers(batch: Batch, now: Date): Promise<Batch> {
    const paidIssueRecords = deps.billing.paidIssueRecords;
    if (!paidIssueRecords) return batch;
    const remembered = batch.map(({ item }) => issuingCas.rememberedRow(item.issuerId));
    if (remembered.some((issuer) => !issuer || issuer.row.freeQuota > 0)) return batch;
    const signings = await Promise.all(
      batch.map(async (pending, at) => {
        const { ctx, plan } = pending.item;
        const issuer = remembered[at]!;
        if (issuer.row.domainId !== ctx.domainId) return { pending };
        try {
          const made = await signed(ctx, plan, await issuingCas.issuingCaOf(deps.sql.query, issuer.row, now), now, randomUUID());
          return { pending, made, issuer };
        } catch (error) {
          if (!clientErrorOf(error)) throw error;
          return { pending };
        }
      }),
    );
    const made = signings.flatMap(({ pending, made }) => (made ? [{ pending, made }] : []));
    if (made.length === 0) return batch;
    // The versions signed against (the remembered entries may have moved on since), of the issuers signed with only:
    // the statement locks them, and another domain's CA a request named is not to be locked for it.
    const issuers = new Map(signings.flatMap(({ issuer }) => (issuer ? [[issuer.row.id, issuer.version] as const] : [])));
    const stored = await insertRowsWhere<{ domain_id: string | null; held: string | null }>(
      deps.sql.query,
      rememberedIssuersGuard({
        issuers,
        now,
        domains: countBy(made.map(({ pending }) => pending.item.ctx.domainId)),
        quota: deps.certificateQuota,
        claims: claimRows(
          made.flatMap(({ pending, made }) => (pending.item.idempotency ? [{ ...pending.item.idempotency, certificateId: made.id }] : [])),
          now,
        ),
        windowStart: windowStart(now),
        csrKeys: keysAsJson(csrKeys(made.map(({ pending }) => pending))),
      }),
      ['certificates', made.map(({ made }) => made.certificate)],
      auditRows(made.map(({ pending, made }) => ({ context: pending.item.ctx, change: made.change }))),
      paidIssueRecords(made.map(({ made }) => made.issue)),
    );
    const grantedDomains = new Set(stored.flatMap(({ domain_id }) => (domain_id === null ? [] : [domain_id])));
    const held = new Set(stored.flatMap(({ held }) => (held === null ? [] : [held])));
    const left: Batch = signings.flatMap(({ pending, made }) => (made ? [] : [pending]));
    for (const { pending, made: certificate } of made) {
      if (grantedDomains.has(pending.item.ctx.domainId) && !held.has(certificate.id)) {
        answered(pending, certificate.id, certificate.caKeyAlgorithm);
      } else {
        left.push(pending);
      }
    }
    return left;
  }

  /**
   * Issues a group-committed batch in one transaction of prepared raw statements (`database.transaction`; no Prisma
   * query on this path): CSRs whose key is a held CA key refused first (one look-up for the batch, held-ca-keys.ts),
   * the batch's Idempotency-Keys claimed in one statement, the quota counter taken once per
   * domain, the distinct issuers locked FOR SHARE and read in one statement, multi-row inserts. A key
   * another transaction holds answers with that success's id (or 409) without issuing; a request refused on its own
   * (issuer, validity) is answered with its error, giving back its quota and key, without failing the others. The
   * requests of a domain whose quota has no room for all of them here give their keys back and are issued alone once
   * the transaction commits (each takes the quota's next unit, or is refused), as its later requests will be
   * (`shortOfQuota`): a domain at its quota does not fail its batch mates. If the transaction fails (serial collision,
   * deadlock), each request is issued alone and gets its own answer.
   */
  async function writeInTransaction(batch: Batch): Promise<void> {
    type Entry = { pending: Pending<BatchedIssuance, string>; id: string };
    const now = clock.now();
    let outcome: {
      accepted: (Entry & { caKeyAlgorithm: string })[];
      held: Entry[];
      refused: { pending: Entry['pending']; error: unknown }[];
      alone: Entry[];
    };
    try {
      outcome = await deps.sql.transaction(async (tx) => {
        // One look-up for the batch, first: a refused CSR claims no key and takes no quota (held-ca-keys.ts).
        const heldKeys = await heldCaKeys(tx, csrKeys(batch));
        const refused: { pending: Entry['pending']; error: unknown }[] = [];
        const entries: Entry[] = [];
        for (const pending of batch) {
          const { plan } = pending.item;
          if (plan.genMode === 'CSR' && heldKeys.has(spkiHex(plan.spki))) refused.push({ pending, error: heldCaKeyRefused() });
          else entries.push({ pending, id: randomUUID() });
        }
        // Keys before any other lock (claimIdempotencyKeys says why).
        const claimed = await claimIdempotencyKeys(
          tx,
          entries.flatMap(({ pending, id }) => (pending.item.idempotency ? [{ ...pending.item.idempotency, certificateId: id }] : [])),
          now,
        );
        const claimedOrKeyless: Entry[] = [];
        const held: Entry[] = [];
        for (const entry of entries) {
          const { idempotency } = entry.pending.item;
          if (!idempotency || claimed.has(entry.id)) {
            claimedOrKeyless.push(entry);
            continue;
          }
          try {
            held.push({ pending: entry.pending, id: await answerOfHeldKey(tx, idempotency.scope, idempotency.hash, now) });
          } catch (error) {
            if (!clientErrorOf(error)) throw error;
            refused.push({ pending: entry.pending, error });
          }
        }
        // The quota first (as alone): a domain's issuances then reach its issuers' rows one at a time, so the
        // free_quota update never waits on another issuance's share lock. Refused requests give theirs back.
        const short = new Set<string>();
        for (const [domainId, count] of countBy(claimedOrKeyless.map(({ pending }) => pending.item.ctx.domainId))) {
          if (!(await takeCertificateQuota(tx, domainId, count, deps.certificateQuota))) short.add(domainId);
        }
        const issuing = claimedOrKeyless.filter(({ pending }) => !short.has(pending.item.ctx.domainId));
        const alone = claimedOrKeyless.filter(({ pending }) => short.has(pending.item.ctx.domainId));
        const rows = await issuingCas.lockIssuingCaRows(
          tx,
          issuing.map(({ pending }) => ({ issuerId: pending.item.issuerId, domainId: pending.item.ctx.domainId })),
          now,
        );
        // Signed all at once: each signature is a round trip to the key store (the libuv pool, the token), so
        // signing one after another would hold the locks for the sum of those round trips.
        type Signing = Entry & ({ certificate: SignedIssuance } | { error: unknown });
        const signings = await Promise.all(
          issuing.map(async (entry): Promise<Signing> => {
            const { ctx, issuerId, plan } = entry.pending.item;
            try {
              const row = rows.get(issuerId);
              if (!row || row.domainId !== ctx.domainId) throw errors.notFound(`CA ${issuerId}`);
              return { ...entry, certificate: await signed(ctx, plan, await issuingCas.issuingCaOf(tx, row, now), now, entry.id) };
            } catch (error) {
              if (!clientErrorOf(error)) throw error;
              return { ...entry, error };
            }
          }),
        );
        const accepted: (Entry & { caKeyAlgorithm: string })[] = [];
        const failed: Entry[] = [];
        const made: SignedIssuance[] = [];
        for (const signing of signings) {
          if ('error' in signing) {
            refused.push(signing);
            failed.push(signing);
          } else {
            made.push(signing.certificate);
            accepted.push({ ...signing, caKeyAlgorithm: signing.certificate.caKeyAlgorithm });
          }
        }
        for (const [domainId, count] of countBy(failed.map(({ pending }) => pending.item.ctx.domainId))) {
          await releaseCertificateQuota(tx, domainId, count);
        }
        await releaseIdempotencyKeys(
          tx,
          [...failed, ...alone].flatMap(({ pending }) => (pending.item.idempotency ? [pending.item.idempotency.scope] : [])),
        );
        if (made.length > 0) {
          const freeQuotas = new Map([...rows.values()].map((row) => [row.id, row.freeQuota]));
          const billingRecords = await deps.billing.chargeCertificateIssues(
            tx,
            made.map((certificate) => certificate.issue),
            freeQuotas,
          );
          // The certificates, their audit events and billing records: one statement.
          await insertRows(
            tx,
            ['certificates', made.map((certificate) => certificate.certificate)],
            auditRows(made.map((certificate, index) => ({ context: accepted[index]!.pending.item.ctx, change: certificate.change }))),
            billingRecords,
          );
        }
        return { accepted, held, refused, alone };
      });
    } catch (error) {
      if (dbErrorKind(error) === 'unavailable') return failUnavailable(batch, error);
      deps.metrics.issuanceBatchRedos.inc({ write: 'transaction' });
      for (const { item, resolve, reject } of batch) deps.issueAlone(item).then(({ id }) => resolve(id), reject);
      return;
    }
    for (const { pending, id, caKeyAlgorithm } of outcome.accepted) answered(pending, id, caKeyAlgorithm);
    for (const { pending, id } of outcome.held) pending.resolve(id);
    for (const { pending, error } of outcome.refused) pending.reject(error);
    for (const { pending } of outcome.alone) issueAloneWhileShort(pending.item.ctx.domainId, pending);
  }

  async function writeBatched(batch: Batch): Promise<void> {
    let left = batch;
    try {
      left = await writeAgainstRememberedIssuers(batch, clock.now());
    } catch (error) {
      if (dbErrorKind(error) === 'unavailable') return failUnavailable(batch, error);
      // A statement Postgres refused (a serial collision, a deadlock) stored nothing: the transaction issues afresh.
      // Counted, so that a statement failing every time (a bug, a schema drift) shows as more than a slower service.
      deps.metrics.issuanceBatchRedos.inc({ write: 'statement' });
    }
    if (left.length > 0) await writeInTransaction(left);
  }

  /**
   * No batch is written again against an unavailable database: each caller gets 503. Where the connection was lost
   * before Postgres answered, the batch may even be stored, and issuing it again (new ids, new serials) would store
   * and bill each certificate twice; a caller that sent an Idempotency-Key gets, on retry, the one stored if it was.
   */
  function failUnavailable(batch: Batch, cause: unknown): void {
    const error = mayHaveCommitted(cause)
      ? errors.unavailable(
          'the database connection was lost while the certificate was being stored; retry with the same Idempotency-Key',
          cause,
        )
      : cause;
    for (const { reject } of batch) reject(error);
  }

  return async function writeBatch(whole: Batch): Promise<void> {
    const batched: Batch = [];
    const short: Batch = [];
    for (const pending of whole) (shortOfQuota.has(pending.item.ctx.domainId) ? short : batched).push(pending);
    await Promise.all([short.length > 0 && writeShortOfQuota(short), batched.length > 0 && writeBatched(batched)]);
  };
}
