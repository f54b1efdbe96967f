/**
 * CRL generation and reads (§10.4, §10.5). A revocation's CRL is signed before the revoke call returns (§4.4.6),
 * and a CA's state change first signs a CRL a revocation still waits for; the `crl-refresh` job signs what those
 * missed (a failed signing) and re-signs at half a CRL's validity; a reader that would get a stale or lapsed CRL
 * gets a new one signed first. One advisory lock per CA serialises signers across instances; the number is
 * max + 1 under that lock (and the (ca_id, crl_number) key backs it), so CRL numbers strictly increase per CA.
 */
import type { Clock } from '../../clock.ts';
import type { Config } from '../../config.ts';
import type { Db } from '../../db/database.ts';
import { advisoryLockWithin } from '../../db/locks.ts';
import { errors } from '../../errors.ts';
import type { KeyStores } from '../../keystore/index.ts';
import type { Metrics } from '../../metrics/metrics.ts';
import type { HashAlgorithm } from '../../x509/algorithms.ts';
import { caKeyIdentifier, parseCertificate } from '../../x509/certificate.ts';
import { buildCrl, type BuiltCrl, type EncodedEntries } from '../../x509/crl.ts';
import { toPem } from '../../x509/pem.ts';
import type { RequestContext, Tx } from '../context.ts';
import { resolveCaReference } from '../urn.ts';
import { crlCacheControl, crlValidityMs, isCrlDue, isCrlUnusable, isSigningStatus, type CrlState } from './revocation-rules.ts';
import { existingCa } from '../ca/ca-rules.ts';
import {
  CRL_PAGING_WORK_MEM_SQL,
  crlPagesSql,
  dueCrlCaIdsSql,
  insertCrlFromSegmentsSql,
  insertCrlHeadAndTailSql,
  pageCrlEntriesSql,
} from './revocation-sql.ts';
import type { ErrorLog } from '../publication/publication-service.ts';
import { createCrlBytesCache } from './crl-bytes-cache.ts';
import { findServedCa } from './served-ca.ts';

export interface CrlServiceDeps {
  db: Db;
  clock: Clock;
  keyStores: KeyStores;
  config: Pick<Config, 'region' | 'databaseQueryWaitMs'>;
  metrics: Pick<Metrics, 'crlGeneration' | 'crlSize'>;
  log: ErrorLog;
}

export interface StoredCrl {
  crlNumber: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  revokedCount: number;
  der: Uint8Array;
}

/** The CA columns CRL signing needs. */
const SIGNING_FIELDS = {
  id: true,
  status: true,
  keyStore: true,
  keyRef: true,
  keyAlgorithm: true,
  publicKeySpki: true,
  signatureAlgorithm: true,
  certificateDer: true,
  crlValidDays: true,
  crlStaleSince: true,
  removedAt: true,
  deleteTime: true,
} as const;

interface SigningCaRow {
  status: string;
  keyStore: string | null;
  keyRef: string | null;
  keyAlgorithm: string | null;
  signatureAlgorithm: string | null;
  certificateDer: Uint8Array | null;
  removedAt: Date | null;
  deleteTime: Date | null;
}

/** A CA signs CRLs and OCSP answers while it holds its key and is not removed (DELETED ones too, while pending). */
export function maySign(ca: SigningCaRow, now: Date): boolean {
  const removed = ca.removedAt !== null || (ca.deleteTime !== null && ca.deleteTime.getTime() <= now.getTime());
  return !removed && isSigningStatus(ca.status) && !!ca.keyRef && !!ca.keyStore && !!ca.certificateDer;
}

interface EntryPage {
  seq: number;
  count: number;
  byte_length: number;
}

/** The CA's CRL entries, paged into `crl_segments` by Postgres (see pageCrlEntriesSql), read back a few pages at a time. */
async function* readEntryPages(tx: Tx, caId: string, crlNumber: bigint, pages: EntryPage[]): AsyncGenerator<EncodedEntries> {
  const PAGES_PER_READ = 4;
  for (let index = 0; index < pages.length; index += PAGES_PER_READ) {
    const batch = pages.slice(index, index + PAGES_PER_READ);
    const rows = await tx.$queryRaw<{ bytes: Uint8Array }[]>(crlPagesSql(caId, crlNumber, batch[0]!.seq, batch.at(-1)!.seq));
    for (const [at, { bytes }] of rows.entries()) yield { der: bytes, count: batch[at]!.count };
  }
}

/**
 * Stores a signed CRL whose entries are already `crl_segments` pages 1..n: its head and tail become pages 0 and
 * n + 1, and Postgres assembles `crls.der` from them, so no large value goes through a query parameter (Prisma
 * carries parameters as base64 inside JSON: a CRL of tens of MiB would cost seconds and several times its size).
 */
async function storeCrl(tx: Tx, caId: string, crl: Omit<StoredCrl, 'der'>, built: BuiltCrl, pageCount: number): Promise<void> {
  const { crlNumber } = crl;
  const { der, entries } = built;
  const part = (start: number, end: number) => Buffer.from(der.buffer, der.byteOffset + start, end - start);
  await tx.$executeRaw(insertCrlHeadAndTailSql(caId, crlNumber, part(0, entries.start), pageCount + 1, part(entries.end, der.length)));
  await tx.$executeRaw(insertCrlFromSegmentsSql(caId, crl));
  await tx.crlSegment.deleteMany({ where: { caId, crlNumber } });
}

/** How long a signer waits for the CA's CRL lock (another signer's turn), then how long its own signing may take. */
const CRL_LOCK_WAIT_MS = 60_000;
const SIGNING_TRANSACTION = { maxWait: 60_000, timeout: CRL_LOCK_WAIT_MS + 300_000 };

export function createCrlService({ db, clock, keyStores, config, metrics, log }: CrlServiceDeps) {
  // Each wait for the CRL lock stays well under the pool's statement bound (src/db/locks.ts advisoryLockWithin).
  const lockWaitSliceMs = Math.min(10_000, Math.max(100, Math.floor(config.databaseQueryWaitMs / 2)));
  const bytesCache = createCrlBytesCache();

  /**
   * The CA's newest CRL: its facts from Postgres, its bytes from the cache when they are that CRL's, else read with
   * them in one statement (two signings between a read of the facts and one of the bytes could delete that CRL).
   */
  async function latestCrl(client: Tx | Db, caId: string): Promise<StoredCrl | null> {
    const facts = { crlNumber: true, thisUpdate: true, nextUpdate: true, revokedCount: true } as const;
    const newest = { where: { caId }, orderBy: { crlNumber: 'desc' as const } };
    const head = await client.crl.findFirst({ ...newest, select: facts });
    if (!head) return null;
    const cached = bytesCache.get(caId, head.crlNumber);
    if (cached) return { ...head, der: cached };
    const crl = await client.crl.findFirst({ ...newest, select: { ...facts, der: true } });
    if (crl) bytesCache.set(caId, crl.crlNumber, crl.der);
    return crl;
  }

  /**
   * Signs the CA's next CRL if `needed` still holds once this instance has the CA's CRL lock (another signer may
   * have just done it). Returns the CA's newest CRL either way (null when it has none and cannot sign).
   */
  async function signIfNeeded(
    caId: string,
    needed: (state: CrlState, now: Date) => boolean,
  ): Promise<{ crl: StoredCrl | null; signed: boolean }> {
    return db.$transaction(async (tx) => {
      // A large CRL's signing holds this lock for seconds: the next signer waits its turn, in waits under the bound.
      await advisoryLockWithin(tx, 'crlSigning', caId, CRL_LOCK_WAIT_MS, lockWaitSliceMs);
      const ca = await tx.certificateAuthority.findUnique({ where: { id: caId }, select: SIGNING_FIELDS });
      const latest = await tx.crl.findFirst({
        where: { caId },
        orderBy: { crlNumber: 'desc' },
        select: { crlNumber: true, thisUpdate: true, nextUpdate: true },
      });
      const now = clock.now();
      if (!ca || !maySign(ca, now) || !needed({ crlStaleSince: ca.crlStaleSince, latest }, now)) {
        return { crl: await latestCrl(tx, caId), signed: false };
      }

      const certificate = parseCertificate(ca.certificateDer!);
      const crlNumber = (latest?.crlNumber ?? 0n) + 1n;
      // A CRL states whole seconds (RFC 5280 §5.1.2.4): the stored times are the DER's, so the API's agree with it.
      const thisUpdate = new Date(Math.floor(now.getTime() / 1000) * 1000);
      const nextUpdate = new Date(thisUpdate.getTime() + crlValidityMs(ca.crlValidDays));
      const signer = keyStores.signerOf(ca)!;
      const stopTimer = metrics.crlGeneration.startTimer();
      await tx.$executeRaw(CRL_PAGING_WORK_MEM_SQL);
      const pages = await tx.$queryRaw<EntryPage[]>(pageCrlEntriesSql(caId, crlNumber, now));
      const built = await buildCrl(
        {
          issuerName: certificate.subjectDer,
          authorityKeyIdentifier: caKeyIdentifier(certificate),
          crlNumber,
          thisUpdate,
          nextUpdate,
          hash: (ca.signatureAlgorithm ?? certificate.signatureHash ?? 'SHA256') as HashAlgorithm,
          entries: readEntryPages(tx, caId, crlNumber, pages),
          entriesByteLength: pages.reduce((total, page) => total + page.byte_length, 0),
        },
        signer,
      );
      stopTimer();
      metrics.crlSize.observe(built.der.length);
      const stored = { crlNumber, thisUpdate, nextUpdate, revokedCount: built.revokedCount, der: built.der };
      await storeCrl(tx, caId, stored, built, pages.length);
      // Only the newest CRL is served; its predecessor stays for readers that raced this signer.
      await tx.crl.deleteMany({ where: { caId, crlNumber: { lt: crlNumber - 1n } } });
      if (ca.crlStaleSince) {
        // Cleared only if no revocation marked the CA again meanwhile (the mark strictly increases).
        await tx.certificateAuthority.updateMany({ where: { id: caId, crlStaleSince: ca.crlStaleSince }, data: { crlStaleSince: null } });
      }
      return { crl: stored, signed: true };
    }, SIGNING_TRANSACTION);
  }

  /**
   * Signings queued per CA in this process. A caller joins the signing that starts after the one in progress (which
   * may have read the revocations before the caller's change, or before the reader looked), so a burst of revokes or
   * of CRL readers costs two signings and holds one connection, not one each while the lock is taken elsewhere (an
   * unauthenticated CRL burst would otherwise hold the whole pool). A queued signing signs when a revocation waits,
   * and, once a reader has joined it, also when the CRL is missing or lapsed.
   */
  const queued = new Map<string, { done: Promise<void>; forReaders: boolean }>();
  const running = new Map<string, Promise<void>>();

  function queueSigning(caId: string, forReader: boolean): Promise<void> {
    const waiting = queued.get(caId);
    if (waiting) {
      waiting.forReaders ||= forReader;
      return waiting.done;
    }
    const previous = running.get(caId) ?? Promise.resolve();
    const signing = { forReaders: forReader, done: Promise.resolve() };
    signing.done = previous
      .catch(() => undefined)
      .then(async () => {
        queued.delete(caId);
        running.set(caId, signing.done);
        await signIfNeeded(caId, (state, now) => state.crlStaleSince !== null || (signing.forReaders && isCrlUnusable(state, now)));
      })
      .finally(() => {
        if (running.get(caId) === signing.done) running.delete(caId);
      });
    queued.set(caId, signing);
    return signing.done;
  }

  /** Signs the CA's CRL if a committed revocation waits for it; returns once it is signed (or nothing waited). */
  const signStale = (caId: string): Promise<void> => queueSigning(caId, false);

  /**
   * The CRL to hand a reader: the stored one, unless it is missing, lapsed or a revocation waits and the CA can
   * still sign, in which case a new one is signed first (a client fetching right after a revoke sees it). Should that
   * signing fail (the token unreachable, say), the reader still gets the stored CRL, marked `stale`: relying parties
   * that get none fail closed or open, while those that fetched before the revoke hold that one anyway.
   */
  async function crlForReader(caId: string): Promise<{ crl: StoredCrl | null; stale: boolean }> {
    const ca = await db.certificateAuthority.findUnique({ where: { id: caId }, select: SIGNING_FIELDS });
    const latest = await latestCrl(db, caId);
    const now = clock.now();
    if (!ca || !maySign(ca, now) || !isCrlUnusable({ crlStaleSince: ca.crlStaleSince, latest }, now)) return { crl: latest, stale: false };
    try {
      await queueSigning(caId, true);
    } catch (error) {
      if (!latest) throw error;
      log.error({ err: error, caId }, 'signing a CRL for its reader failed: the stored CRL is served');
      return { crl: latest, stale: true };
    }
    return { crl: await latestCrl(db, caId), stale: false };
  }

  const currentCrl = async (caId: string): Promise<StoredCrl | null> => (await crlForReader(caId)).crl;

  /** CAs that can sign and whose CRL is due: a revocation waits, half its validity passed, or CRL enabled and none yet. */
  async function dueCaIds(now: Date): Promise<string[]> {
    const rows = await db.$queryRaw<{ id: string }[]>(dueCrlCaIdsSql(now));
    return rows.map((row) => row.id);
  }

  return {
    currentCrl,
    maySign,
    signStale,

    /** The `crl-refresh` job: signs every due CRL; one CA's failure is reported and does not stop the others. */
    async refreshDue(onFailure: (caId: string, error: unknown) => void): Promise<{ due: number; signed: number; failed: number }> {
      const ids = await dueCaIds(clock.now());
      let signed = 0;
      let failed = 0;
      for (const id of ids) {
        try {
          if ((await signIfNeeded(id, isCrlDue)).signed) signed++;
        } catch (error) {
          failed++;
          onFailure(id, error);
        }
      }
      return { due: ids.length, signed, failed };
    },

    /**
     * `GET /crl/{ca_id}.crl`: the DER CRL, its Cache-Control and its ETag (the CA and CRL number: a CRL's bytes never
     * change), or null when the CA is not served (404). A stale CRL (its successor could not be signed) is sent
     * `no-cache`: a cache keeping it until its nextUpdate would hide a revocation for days after the signer is back.
     */
    async publicCrl(reference: string): Promise<{ der: Uint8Array; cacheControl: string; etag: string } | null> {
      const ca = await findServedCa(db, config.region, reference, clock.now());
      if (!ca) return null;
      const { crl, stale } = await crlForReader(ca.id);
      if (!crl) return null;
      const cacheControl = stale ? 'no-cache' : crlCacheControl(crl.nextUpdate, clock.now());
      return { der: crl.der, cacheControl, etag: `"${ca.id}-${crl.crlNumber}"` };
    },

    /** Signs the CA's next CRL now, whatever its state (tests, and the first CRL of a newly enabled CA). */
    signNow: async (caId: string) => (await signIfNeeded(caId, () => true)).crl,

    /** §10.5: the caller's CA's current CRL in PEM with its facts. */
    async readCrl(context: RequestContext, reference: string) {
      const id = resolveCaReference(reference, { region: config.region, domainId: context.domainId, field: 'ca_id' });
      const ca = await db.certificateAuthority.findFirst({
        where: { id, domainId: context.domainId, ...existingCa(clock.now()) },
        select: { id: true, certificateDer: true },
      });
      if (!ca) throw errors.notFound(`CA ${id}`);
      if (!ca.certificateDer) throw errors.conflictingState('the CA has no certificate yet, so it has no CRL');
      const crl = await currentCrl(ca.id);
      if (!crl) throw errors.conflictingState('no CRL is available for this CA: its key is not held here');
      return crl;
    },
  };
}
export type CrlService = ReturnType<typeof createCrlService>;

export const crlPem = (der: Uint8Array): string => toPem('X509 CRL', der);
