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
  /**
   * The statuses of a request's serials in one statement (three unique-index probes per serial): a responder answers
   * every TLS client, so it is a hot path, and a request's CertIDs must not each cost a round trip.
   */
  async function statusesOf(caId: string, serialNumbers: string[]): Promise<Map<string, OcspCertStatus>> {
    const statuses = new Map<string, OcspCertStatus>();
    if (serialNumbers.length === 0) return statuses;
    const rows = await db.$queryRaw<{ serial_number: string; revoked_at: Date | null; reason_code: number | null }[]>`
      SELECT asked.serial_number, found.revoked_at, found.reason_code
      FROM unnest(${serialNumbers}::text[]) AS asked(serial_number)
      CROSS JOIN LATERAL (
        SELECT revoked_at, reason_code FROM (
          SELECT 0 AS rank, revoked_at, reason_code FROM revocations WHERE issuer_id = ${caId}::uuid AND serial_number = asked.serial_number
          UNION ALL
          SELECT 1, NULL, NULL FROM certificates WHERE issuer_id = ${caId}::uuid AND serial_number = asked.serial_number
          UNION ALL
          SELECT 2, NULL, NULL FROM certificate_authorities WHERE issuer_id = ${caId}::uuid AND serial_number = asked.serial_number
        ) issued ORDER BY rank LIMIT 1
      ) found`;
    for (const row of rows) {
      statuses.set(row.serial_number, row.revoked_at ? { revoked: { time: row.revoked_at, reasonCode: row.reason_code! } } : 'good');
    }
    return statuses;
  }

  /** A CertID names this CA when both issuer hashes match; otherwise (or for an unsupported hash) it is unknown. */
  function namesCa(ca: ServedCa, request: OcspCertIdRequest): boolean {
    const hashes = issuerHashes(ca.certificateDer, request.hashAlgorithmOid);
    const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
    return hashes !== undefined && same(hashes.nameHash, request.issuerNameHash) && same(hashes.keyHash, request.issuerKeyHash);
  }

  return {
    findServedCa: (reference: string) => findServedCa(db, config.region, reference, clock.now()),

    /**
     * The DER OCSPResponse for a DER request to `ca`. Malformed requests get malformedRequest; a CA that may not
     * sign (its key held elsewhere) gets unauthorized; a DELETED CA answers while its deletion is pending. Failures
     * of the database or key store throw.
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
      if (!maySign(ca, clock.now())) {
        metrics.ocspResponses.inc({ status: 'unauthorized' });
        return ocspErrorResponse('unauthorized');
      }
      const now = clock.now();
      const ours = request.requests.map((single) => namesCa(ca, single));
      const statuses = await statusesOf(ca.id, request.requests.filter((_, i) => ours[i]).map((single) => single.serialNumberHex));
      const responses = request.requests.map((single, i) => ({
        certId: single.certId,
        status: (ours[i] && statuses.get(single.serialNumberHex)) || ('unknown' as const),
        thisUpdate: now,
      }));
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
