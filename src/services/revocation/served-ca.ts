/** The CAs the public PKI endpoints serve (§10.4): those with a certificate, not PENDING, not removed. */
import type { Db } from '../../db/database.ts';
import { existingCa } from '../ca/ca-rules.ts';
import { parsePublicCaReference } from '../urn.ts';

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
    select: {
      id: true,
      status: true,
      keyStore: true,
      keyRef: true,
      keyAlgorithm: true,
      signatureAlgorithm: true,
      certificateDer: true,
      removedAt: true,
      deleteTime: true,
    },
  });
  return ca as ServedCa | null;
}
