/**
 * Master-key rotation: every sealed item (software CA keys, server-made certificate keys, access-key secrets, ACME
 * EAB keys) is re-wrapped under the new master key in one transaction. Only the wrapped data keys change; the CA keys
 * themselves, and so every certificate they signed, stay the same.
 *
 * Each update is conditional on the sealed value the rotation read: a row changed meanwhile (a removed CA's key
 * destroyed by clearing key_ref, an access key deleted, an item re-wrapped by a concurrent rotation) is skipped, so
 * the rotation never writes back a key that was destroyed after its read.
 */
import type { Db } from '../db/database.ts';
import { createSealer, eabSealingAad } from './sealing.ts';
import { rewrapKeyRef } from './software-key-store.ts';

export interface RotationCounts {
  caKeys: number;
  certificateKeys: number;
  accessKeySecrets: number;
  eabKeys: number;
}

/** The master keys a deployment opens sealed items with (config: MASTER_KEY, OTHER_MASTER_KEYS). */
export interface OpeningKeys {
  masterKey: Uint8Array;
  otherMasterKeys: readonly Uint8Array[];
}

/**
 * Re-wraps, in one transaction, every sealed item not yet under `newMasterKey`, opening it with `keys`; returns how
 * many of each kind it re-wrapped. Items already under the new key (sealed by instances running with it) are left.
 */
export async function rotateMasterKey(db: Db, keys: OpeningKeys, newMasterKey: Uint8Array): Promise<RotationCounts> {
  const current = createSealer(keys.masterKey, keys.otherMasterKeys);
  const next = createSealer(newMasterKey);
  if (current.fingerprint === next.fingerprint && keys.otherMasterKeys.length === 0) {
    throw new Error('the new master key equals the current one, and no other master key is configured: nothing to re-wrap');
  }
  return db.$transaction(
    async (tx) => {
      const counts: RotationCounts = { caKeys: 0, certificateKeys: 0, accessKeySecrets: 0, eabKeys: 0 };
      const cas = await tx.certificateAuthority.findMany({
        where: { keyStore: 'software', keyRef: { not: null } },
        select: { id: true, keyRef: true },
      });
      for (const ca of cas) {
        const keyRef = rewrapKeyRef(ca.keyRef!, current, next);
        if (keyRef === ca.keyRef) continue;
        const { count } = await tx.certificateAuthority.updateMany({ where: { id: ca.id, keyRef: ca.keyRef }, data: { keyRef } });
        counts.caKeys += count;
      }
      // Sealed certificate keys are bound to the certificate id, access-key secrets to the access key id.
      const certificates = await tx.certificate.findMany({
        where: { sealedPrivateKey: { not: null } },
        select: { id: true, sealedPrivateKey: true },
      });
      for (const certificate of certificates) {
        const sealedPrivateKey = current.rewrap(certificate.sealedPrivateKey!, certificate.id, next);
        if (sealedPrivateKey === certificate.sealedPrivateKey) continue;
        const { count } = await tx.certificate.updateMany({
          where: { id: certificate.id, sealedPrivateKey: certificate.sealedPrivateKey },
          data: { sealedPrivateKey },
        });
        counts.certificateKeys += count;
      }
      const accessKeys = await tx.accessKey.findMany({ select: { access: true, sealedSecret: true } });
      for (const key of accessKeys) {
        const sealedSecret = current.rewrap(key.sealedSecret, key.access, next);
        if (sealedSecret === key.sealedSecret) continue;
        const { count } = await tx.accessKey.updateMany({
          where: { access: key.access, sealedSecret: key.sealedSecret },
          data: { sealedSecret },
        });
        counts.accessKeySecrets += count;
      }
      const eabKeys = await tx.acmeEabKey.findMany({ select: { kid: true, sealedHmacKey: true } });
      for (const key of eabKeys) {
        const sealedHmacKey = current.rewrap(key.sealedHmacKey, eabSealingAad(key.kid), next);
        if (sealedHmacKey === key.sealedHmacKey) continue;
        const { count } = await tx.acmeEabKey.updateMany({
          where: { kid: key.kid, sealedHmacKey: key.sealedHmacKey },
          data: { sealedHmacKey },
        });
        counts.eabKeys += count;
      }
      return counts;
    },
    { timeout: 10 * 60_000, maxWait: 60_000 },
  );
}
