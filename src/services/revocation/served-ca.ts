/** The CAs the public PKI endpoints serve (§10.4): those with a certificate, not PENDING, not removed. */
import type { Db } from '../../db/database.ts';
import { existingCa } from '../ca/ca-rules.ts';
import { isUuid } from '../urn.ts';

/** A CA as the public endpoints see it. */
export interface ServedCa {
  id: string;
  status: string;
  keyStore: string | null;
  keyRef: string | null;
  keyAlgorithm: string | null;
  signatureAlgorithm: string | null;
  certificateDer: Uint8Array;
  removedAt: Date | null;
  deleteTime: Date | null;
}

/**
 * `{ca_id}` of a public URL: a bare id, or a URN of this region whose domain is the CA's own (§10.4).
 * Returns the id and the domain the URN names, or null for anything else.
 */
export function parsePublicCaReference(reference: string, region: string): { id: string; domainId?: string } | null {
  if (isUuid(reference)) return { id: reference };
  const parts = reference.split(':');
  if (parts.length !== 5 || parts[0] !== 'pca' || parts[1] !== region || !parts[2] || parts[3] !== 'ca' || !isUuid(parts[4])) return null;
  return { id: parts[4], domainId: parts[2] };
}

/** The CA behind a public `{ca_id}`, or null (404): not removed by `now`. */
export async function findServedCa(db: Db, region: string, reference: string, now: Date): Promise<ServedCa | null> {
  const parsed = parsePublicCaReference(reference, region);
  if (!parsed) return null;
  const ca = await db.certificateAuthority.findFirst({
    where: {
      id: parsed.id,
      ...existingCa(now),
      status: { not: 'PENDING' },
      certificateDer: { not: null },
      ...(parsed.domainId ? { domainId: parsed.domainId } : {}),
    },
    select: { id: true, status: true, keyStore: true, keyRef: true, keyAlgorithm: true, signatureAlgorithm: true, certificateDer: true, removedAt: true, deleteTime: true },
  });
  return ca as ServedCa | null;
}
