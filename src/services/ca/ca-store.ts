/**
 * Where services find and lock CA rows: the caller's own CA (another domain's is indistinguishable from a missing
 * one, a removed one is gone), read after its row lock when the caller is about to change or rely on it.
 */
import { rowOfColumns } from '../../db/columns.ts';
import type { SqlStatement } from '../../db/database.ts';
import type { RowLockMode } from '../../db/locks.ts';
import { runnerOf, type Executor, type Reader } from '../../db/tx.ts';
import type { CertificateAuthority } from '../../db/generated/client.ts';
import { errors } from '../../errors.ts';
import { parsePemBlocks } from '../../x509/pem.ts';
import type { RequestContext } from '../context.ts';
import { releasedBefore } from '../billing/prepaid.ts';
import { isUuid } from '../urn.ts';
import { CA_BY_ID, LOCK_EXISTING_CAS_FOR_SHARE, LOCK_OWN_EXISTING_CA, OWN_EXISTING_CA } from './ca-sql.ts';

/**
 * The caller's CA, not removed by `now`; 404 otherwise. One named statement, so that a request that only reads its
 * CA (the issuance's plan) runs on the raw runner without Prisma.
 */
export function findOwnCa(db: Executor, ctx: RequestContext, caId: string, now: Date): Promise<CertificateAuthority> {
  return ownCa(db, OWN_EXISTING_CA, ctx, caId, now);
}

/** `findOwnCa` under the row's lock, held until the transaction ends (the read sees the state the lock guards). */
export function lockOwnCa(tx: Reader, ctx: RequestContext, caId: string, mode: RowLockMode, now: Date): Promise<CertificateAuthority> {
  return ownCa(tx, LOCK_OWN_EXISTING_CA[mode], ctx, caId, now);
}

async function ownCa(db: Executor, statement: SqlStatement, ctx: RequestContext, caId: string, now: Date): Promise<CertificateAuthority> {
  const [raw] = isUuid(caId) ? await runnerOf(db)<Record<string, unknown>>(statement, [caId, ctx.domainId, now, releasedBefore(now)]) : [];
  if (!raw) throw errors.notFound(`CA ${caId}`);
  return caRowOf(raw);
}

/** A CA row and the version it was read at (its xmin), to tell later whether the row has changed since. */
export interface VersionedCa {
  row: CertificateAuthority;
  version: string;
}

/**
 * Several CAs of the given domains locked FOR SHARE in id order and read, in one statement; a CA missing from the map
 * is absent, removed or of another domain. (CA ids are uuids: the array literal holds nothing to escape.)
 */
export async function shareLockCas(
  tx: Executor,
  ids: readonly string[],
  domainIds: readonly string[],
  now: Date,
): Promise<Map<string, VersionedCa>> {
  const rows = await runnerOf(tx)<Record<string, unknown>>(LOCK_EXISTING_CAS_FOR_SHARE, [
    `{${[...new Set(ids)].join(',')}}`,
    now,
    releasedBefore(now),
    [...new Set(domainIds)],
  ]);
  return new Map(
    rows.map(({ row_version, ...raw }) => {
      const row = caRowOf(raw);
      return [row.id, { row, version: String(row_version) }];
    }),
  );
}

/** A raw CA row as Prisma's model reads it. */
const caRowOf = (raw: Record<string, unknown>) => rowOfColumns<CertificateAuthority>(raw, ['crlPublishedNumber']);

const MAX_CHAIN_DEPTH = 16;

/**
 * A CA's certificate followed by its parents up to the root: parents in this service by `issuer_id`, and the
 * PEM chain given at import where the parent is outside. Stops at a root (no parent and no imported chain).
 */
export async function caChain(db: Executor, row: CertificateAuthority): Promise<Uint8Array[]> {
  const chain: Uint8Array[] = [];
  let current: CertificateAuthority | null = row;
  while (current && chain.length < MAX_CHAIN_DEPTH) {
    if (!current.certificateDer) break;
    chain.push(new Uint8Array(current.certificateDer));
    if (!current.issuerId) {
      if (current.importedChainPem) chain.push(...parsePemBlocks(current.importedChainPem, 'CERTIFICATE', 'certificate_chain'));
      break;
    }
    const [parent]: (Record<string, unknown> | undefined)[] = await runnerOf(db)<Record<string, unknown>>(CA_BY_ID, [current.issuerId]);
    current = parent ? caRowOf(parent) : null;
  }
  return chain;
}
