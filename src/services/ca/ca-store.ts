/**
 * Where services find and lock CA rows: the caller's own CA (another domain's is indistinguishable from a missing
 * one, a removed one is gone), read after its row lock when the caller is about to change or rely on it.
 */
import { lockCaRows, type RowLockMode } from '../../db/locks.ts';
import type { Reader, Tx } from '../../db/tx.ts';
import type { CertificateAuthority } from '../../db/generated/client.ts';
import { errors } from '../../errors.ts';
import { parsePemBlocks } from '../../x509/pem.ts';
import type { RequestContext } from '../context.ts';
import { existingCa } from './ca-rules.ts';

/** The caller's CA, not removed by `now`; 404 otherwise. */
export async function findOwnCa(db: Reader, ctx: RequestContext, caId: string, now: Date): Promise<CertificateAuthority> {
  const row = await db.certificateAuthority.findFirst({ where: { id: caId, domainId: ctx.domainId, ...existingCa(now) } });
  if (!row) throw errors.notFound(`CA ${caId}`);
  return row;
}

/** `findOwnCa` under the row's lock, held until the transaction ends (the read sees the state the lock guards). */
export async function lockOwnCa(tx: Reader, ctx: RequestContext, caId: string, mode: RowLockMode, now: Date): Promise<CertificateAuthority> {
  await lockCaRows(tx, [caId], mode);
  return findOwnCa(tx, ctx, caId, now);
}

/** Several CAs (any domain) locked in id order and read; a CA missing from the map is absent or removed. */
export async function lockCas(tx: Tx, ids: readonly string[], mode: RowLockMode, now: Date): Promise<Map<string, CertificateAuthority>> {
  await lockCaRows(tx, ids, mode);
  const rows = await tx.certificateAuthority.findMany({ where: { id: { in: [...new Set(ids)] }, ...existingCa(now) } });
  return new Map(rows.map((row) => [row.id, row]));
}

const MAX_CHAIN_DEPTH = 16;

/**
 * A CA's certificate followed by its parents up to the root: parents in this service by `issuer_id`, and the
 * PEM chain given at import where the parent is outside. Stops at a root (no parent and no imported chain).
 */
export async function caChain(db: Reader, row: CertificateAuthority): Promise<Uint8Array[]> {
  const chain: Uint8Array[] = [];
  let current: CertificateAuthority | null = row;
  while (current && chain.length < MAX_CHAIN_DEPTH) {
    if (!current.certificateDer) break;
    chain.push(new Uint8Array(current.certificateDer));
    if (!current.issuerId) {
      if (current.importedChainPem) chain.push(...parsePemBlocks(current.importedChainPem, 'CERTIFICATE', 'certificate_chain'));
      break;
    }
    current = await db.certificateAuthority.findUnique({ where: { id: current.issuerId } });
  }
  return chain;
}
