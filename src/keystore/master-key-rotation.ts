/**
 * Master-key rotation: every sealed item (software CA keys, server-made certificate keys, access-key secrets, ACME
 * EAB keys) is re-wrapped under the new master key in one transaction. Only the wrapped data keys change; the CA keys
 * themselves, and so every certificate they signed, stay the same.
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

export async function rotateMasterKey(db: Db, currentMasterKey: Uint8Array, newMasterKey: Uint8Array): Promise<RotationCounts> {
  const current = createSealer(currentMasterKey);
  const next = createSealer(newMasterKey);
  if (current.fingerprint === next.fingerprint) throw new Error('the new master key equals the current one');
  return db.$transaction(
    async (tx) => {
      const cas = await tx.certificateAuthority.findMany({
        where: { keyStore: 'software', keyRef: { not: null } },
        select: { id: true, keyRef: true },
      });
      for (const ca of cas) {
        await tx.certificateAuthority.update({ where: { id: ca.id }, data: { keyRef: rewrapKeyRef(ca.keyRef!, current, next) } });
      }
      // Sealed certificate keys are bound to the certificate id, access-key secrets to the access key id.
      const certificates = await tx.certificate.findMany({
        where: { sealedPrivateKey: { not: null } },
        select: { id: true, sealedPrivateKey: true },
      });
      for (const certificate of certificates) {
        await tx.certificate.update({
          where: { id: certificate.id },
          data: { sealedPrivateKey: current.rewrap(certificate.sealedPrivateKey!, certificate.id, next) },
        });
      }
      const accessKeys = await tx.accessKey.findMany({ select: { access: true, sealedSecret: true } });
      for (const key of accessKeys) {
        await tx.accessKey.update({
          where: { access: key.access },
          data: { sealedSecret: current.rewrap(key.sealedSecret, key.access, next) },
        });
      }
      const eabKeys = await tx.acmeEabKey.findMany({ select: { kid: true, sealedHmacKey: true } });
      for (const key of eabKeys) {
        await tx.acmeEabKey.update({
          where: { kid: key.kid },
          data: { sealedHmacKey: current.rewrap(key.sealedHmacKey, eabSealingAad(key.kid), next) },
        });
      }
      return { caKeys: cas.length, certificateKeys: certificates.length, accessKeySecrets: accessKeys.length, eabKeys: eabKeys.length };
    },
    { timeout: 10 * 60_000, maxWait: 60_000 },
  );
}
