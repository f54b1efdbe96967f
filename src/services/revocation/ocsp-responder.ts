/**
 * The OCSP responder (RFC 6960, §10.4) and the lookup of CAs the public PKI endpoints serve. Statuses come from
 * `revocations` (revoked), else from the certificates and CAs this CA issued (good), else unknown. Answers are
 * signed live by the CA's key through its key store; an unparsable request gets `malformedRequest`.
 */
import type { Clock } from '../../clock.ts';
import type { Config } from '../../config.ts';
import type { Db } from '../../db/database.ts';
import { keyStoreSigner, type KeyStores } from '../../keystore/index.ts';
import type { KeyStoreKind } from '../../keystore/key-store.ts';
import type { Metrics } from '../../metrics/metrics.ts';
import type { HashAlgorithm, KeyAlgorithm } from '../../x509/algorithms.ts';
import {
  buildOcspResponse,
  CERT_ID_HASH_OIDS,
  issuerHashes,
  ocspErrorResponse,
  OcspMalformedError,
  parseOcspRequest,
  type OcspCertIdRequest,
  type OcspCertStatus,
} from '../../x509/ocsp.ts';
import { maySign } from './crl-service.ts';
import { findServedCa, type ServedCa } from './served-ca.ts';

export interface OcspResponderDeps {
  db: Db;
  clock: Clock;
  keyStores: KeyStores;
  config: Pick<Config, 'region'>;
  metrics: Pick<Metrics, 'ocspResponses'>;
}

export function createOcspResponder({ db, clock, keyStores, config, metrics }: OcspResponderDeps) {
  /** One statement (three unique-index probes): a responder answers every TLS client, so it is a hot path. */
  async function statusOf(caId: string, serialNumber: string): Promise<OcspCertStatus> {
    const [found] = await db.$queryRaw<{ revoked_at: Date | null; reason_code: number | null }[]>`
      SELECT revoked_at, reason_code FROM (
        SELECT 0 AS rank, revoked_at, reason_code FROM revocations WHERE issuer_id = ${caId}::uuid AND serial_number = ${serialNumber}
        UNION ALL
        SELECT 1, NULL, NULL FROM certificates WHERE issuer_id = ${caId}::uuid AND serial_number = ${serialNumber}
        UNION ALL
        SELECT 2, NULL, NULL FROM certificate_authorities WHERE issuer_id = ${caId}::uuid AND serial_number = ${serialNumber}
      ) issued ORDER BY rank LIMIT 1`;
    if (!found) return 'unknown';
    return found.revoked_at ? { revoked: { time: found.revoked_at, reasonCode: found.reason_code! } } : 'good';
  }

  /** A CertID names this CA when both issuer hashes match; otherwise (or for an unsupported hash) it is unknown. */
  async function answer(ca: ServedCa, request: OcspCertIdRequest): Promise<OcspCertStatus> {
    const hashes = issuerHashes(ca.certificateDer, request.hashAlgorithmOid);
    const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
    if (!hashes || !same(hashes.nameHash, request.issuerNameHash) || !same(hashes.keyHash, request.issuerKeyHash)) return 'unknown';
    return statusOf(ca.id, request.serialNumberHex);
  }

  return {
    findServedCa: (reference: string) => findServedCa(db, config.region, reference),

    /**
     * The DER OCSPResponse for a DER request to `ca`. Malformed requests get malformedRequest; a CA that may not
     * sign now (DELETED, or its key held elsewhere) gets unauthorized. Failures of the database or key store throw.
     */
    async respond(ca: ServedCa, requestDer: Uint8Array): Promise<Uint8Array> {
      let request;
      try {
        request = parseOcspRequest(requestDer);
      } catch (error) {
        if (error instanceof OcspMalformedError) {
          metrics.ocspResponses.inc({ status: 'malformedRequest' });
          return ocspErrorResponse('malformedRequest');
        }
        throw error;
      }
      if (!maySign(ca)) {
        metrics.ocspResponses.inc({ status: 'unauthorized' });
        return ocspErrorResponse('unauthorized');
      }
      const now = clock.now();
      const responses = [];
      for (const single of request.requests) {
        responses.push({ certId: single.certId, status: await answer(ca, single), thisUpdate: now });
      }
      const keyAlgorithm = ca.keyAlgorithm as KeyAlgorithm;
      const response = await buildOcspResponse(
        {
          responderKeyHash: issuerHashes(ca.certificateDer, CERT_ID_HASH_OIDS.SHA1)!.keyHash,
          producedAt: now,
          responses,
          nonce: request.nonce,
          hash: (ca.signatureAlgorithm ?? 'SHA256') as HashAlgorithm,
        },
        keyStoreSigner(keyStores.get(ca.keyStore as KeyStoreKind), ca.keyRef!, keyAlgorithm),
      );
      for (const { status } of responses) metrics.ocspResponses.inc({ status: typeof status === 'string' ? status : 'revoked' });
      return response;
    },
  };
}
export type OcspResponder = ReturnType<typeof createOcspResponder>;
