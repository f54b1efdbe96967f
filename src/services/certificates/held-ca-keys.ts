/**
 * Create-by-CSR (a certificate, a CSR-issued INTERMEDIATE_CA, an ACME order) refuses a CSR whose key is the key of a
 * CA this service holds, whatever its tenant: certified again, that key would have certificates that outlive the
 * CA's revocation. Such a CA is activated, not certified from a CSR.
 *
 * A read made before or inside the issuing write is exact: a CSR signed by a held key can only exist once that CA's
 * row, with its key_ref and public_key_spki, is committed (the key is made in the CA's creation, and the CSR export
 * reads the committed row), so no CA holding the key can commit after the read.
 */
import { runnerOf, type Executor } from '../../db/tx.ts';
import { errors } from '../../errors.ts';
import { HELD_CA_KEYS, keysAsJson } from './issuance-sql.ts';

/** The same words for every tenant: they must not tell whether the CA is the caller's or another tenant's. */
export const heldCaKeyRefused = () =>
  errors.invalidParameter(
    "the CSR's key is a CA key held by this service: a CA whose key is held here is activated " +
      '(POST /v1/private-certificate-authorities/{ca_id}/activate), not certified from a CSR',
  );

/** Those of `spkis` that are held CA keys, in hex (`spkiHex`); no statement when there are none to look up. */
export async function heldCaKeys(tx: Executor, spkis: readonly Uint8Array[]): Promise<Set<string>> {
  if (spkis.length === 0) return new Set();
  const rows = await runnerOf(tx)<{ spki: string }>(HELD_CA_KEYS, [keysAsJson(spkis)]);
  return new Set(rows.map(({ spki }) => spki));
}
