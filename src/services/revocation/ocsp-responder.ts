/**
 * The OCSP responder (RFC 6960, §10.4). Statuses come from `revocations` (revoked), else from the certificates and
 * CAs this CA issued (good), else unknown. Answers are signed by the CA's key through its key store (a nonce-less
 * request's answer is reused for a few seconds while the statuses read are unchanged); an unparsable request gets
 * `malformedRequest`.
 *
 * Every answer reads the CA and the statuses from Postgres in one prepared statement, so a revocation committed by
 * any process is seen by the next request of every process: nothing here can answer `good` for a certificate whose
 * revoke call has returned. What is kept in memory is only what a CA's own row determines (its CertID hashes and
 * signer), checked against that row on every request, and the signed answers to requests without a nonce, each
 * reused only while that request's own statement reads the very statuses the answer states (see ReusableAnswer).
 */
import type { Clock } from '../../clock.ts';
import type { Config } from '../../config.ts';
import { createStatementBatcher } from '../../db/group-commit.ts';
import type { DatabaseHandle, SqlStatement } from '../../db/database.ts';
import type { KeyStores } from '../../keystore/index.ts';
import type { Metrics } from '../../metrics/metrics.ts';
import type { HashAlgorithm, Signer } from '../../x509/algorithms.ts';
import {
  buildOcspResponse,
  CERT_ID_HASH_OIDS,
  issuerHashes,
  ocspErrorResponse,
  OcspMalformedError,
  parseOcspRequest,
  type IssuerHashes,
  type OcspCertIdRequest,
  type OcspCertStatus,
  type OcspRequest,
} from '../../x509/ocsp.ts';
import { releasedBefore } from '../billing/prepaid.ts';
import { existingCaCondition } from '../ca/ca-sql.ts';
import { maySign } from './crl-service.ts';
import { parsePublicCaReference } from '../urn.ts';
import type { ServedCa } from './served-ca.ts';

export interface OcspResponderDeps {
  database: Pick<DatabaseHandle, 'query'>;
  clock: Clock;
  keyStores: KeyStores;
  config: Pick<Config, 'region'>;
  metrics: Pick<Metrics, 'ocspResponses'>;
}

interface AnswerRow {
  /** The asked item (1-based position in the statement's arrays) this row answers. */
  item: string;
  status: string;
  key_store: string | null;
  key_ref: string | null;
  key_algorithm: string | null;
  public_key_spki: Uint8Array | null;
  signature_algorithm: string | null;
  certificate_der: Uint8Array;
  removed_at: Date | null;
  delete_time: Date | null;
  /** Null when the serial asked is not this CA's (or none was asked). */
  serial_number: string | null;
  revoked_at: Date | null;
  reason_code: number | null;
}

/**
 * For each asked (CA, domain, serial) item: the served CA (findServedCa's rules: not PENDING, with a certificate,
 * existingCa's "not removed", the URN's domain) and, when the CA issued the serial, its revocation. No row for an
 * item whose CA is not served. Three unique-index probes per serial.
 */
const ANSWER_STATEMENT: SqlStatement = {
  name: 'ocsp_answer',
  text: `
    SELECT asked.item::text AS item, ca.status, ca.key_store, ca.key_ref, ca.key_algorithm, ca.public_key_spki, ca.signature_algorithm,
           ca.certificate_der, ca.removed_at, ca.delete_time, found.serial_number, found.revoked_at, found.reason_code
      FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS asked(ca_id, domain_id, serial_number, item)
      JOIN certificate_authorities ca ON ca.id = asked.ca_id::uuid AND (asked.domain_id IS NULL OR ca.domain_id = asked.domain_id)
      LEFT JOIN LATERAL (
        SELECT asked.serial_number, revoked_at, reason_code FROM (
          SELECT 0 AS rank, revoked_at, reason_code FROM revocations r WHERE r.issuer_id = ca.id AND r.serial_number = asked.serial_number
          UNION ALL
          SELECT 1, NULL, NULL FROM certificates c WHERE c.issuer_id = ca.id AND c.serial_number = asked.serial_number
          UNION ALL
          SELECT 2, NULL, NULL FROM certificate_authorities s WHERE s.issuer_id = ca.id AND s.serial_number = asked.serial_number
        ) candidates ORDER BY rank LIMIT 1
      ) found ON true
     WHERE ca.status <> 'PENDING' AND ca.certificate_der IS NOT NULL
       AND ${existingCaCondition('ca.', '$4', '$5')}`,
};

/** One request's lookup: its CA and serials (none for a malformed request, which needs only the CA). */
interface Lookup {
  caId: string;
  domainId: string | null;
  serials: string[];
}

/**
 * Statements one request at a time would spend most of the responder's CPU on round trips (both sides of the pg
 * protocol). Lookups queue and are sent together, at most STATEMENTS_IN_FLIGHT statements at once; a lookup only
 * ever joins a statement sent after it was queued, so its answer is as fresh as a statement of its own.
 */
const STATEMENTS_IN_FLIGHT = 2;

/** What a CA's certificate and key fields determine: worked out once per CA, reused while its row is unchanged. */
interface CaSigning {
  row: AnswerRow;
  hashes: Map<string, IssuerHashes | undefined>;
  responderKeyHash: Uint8Array;
  signer: Signer;
  hash: HashAlgorithm;
}

/** Enough for every CA one process answers for; past it the oldest is worked out again when asked. */
const MAX_CACHED_CAS = 1000;

/**
 * A request without a nonce (RFC 5019's profile: browsers, TLS stapling, most HTTP GETs) asks the same question
 * every time. Its signed answer is reused while (1) the statuses read by the request's own statement are exactly the
 * ones the answer states, (2) the CA's signing entry is the one that signed it and (3) it is under REUSE_SIGNED_MS
 * old (its thisUpdate: statuses true then and, by (1), still true). A revocation changes what the statement reads,
 * so the next request after it gets a new answer: never a stale `good`. Nonced requests are all distinct and are
 * signed each time (the nonce is inside the signed data). Only answers about this CA's own certificates are
 * remembered (every CertID names the CA and its serial is one the CA issued), so requests anyone can invent (unknown
 * CAs, made-up serials) are answered but take no place here.
 */
interface ReusableAnswer {
  /** The serials asked, in the request's order. */
  serials: string[];
  signed: { by: CaSigning; statuses: string; producedAt: number; der: Uint8Array };
}

/** Short beside any relying party's freshness window: the age of a reused answer's thisUpdate is at most this. */
const REUSE_SIGNED_MS = 10_000;
/**
 * Distinct nonce-less requests remembered per process; past it the oldest is dropped. An entry is its request (at
 * most MAX_REUSABLE_REQUEST_BYTES, as the key), its serials and its signed answer: 1.7 KiB measured for ten CertIDs,
 * where keeping the parsed request took 12 KiB.
 */
const MAX_REUSABLE_ANSWERS = 10_000;
/**
 * A larger request is answered but not remembered: a request of ten CertIDs is ~800 bytes, while the route takes
 * up to 64 KiB (padding in requestorName, extensions or the ignored signature), and 10,000 remembered requests of that
 * size would hold 640 MB.
 */
const MAX_REUSABLE_REQUEST_BYTES = 1024;

/** The status as a key: a revocation's time and reason are part of what an answer states. */
const statusKey = (status: OcspCertStatus): string =>
  typeof status === 'string' ? status : `revoked ${status.revoked.time.getTime()} ${status.revoked.reasonCode}`;

const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);

function sameSigningFields(a: AnswerRow, b: AnswerRow): boolean {
  return (
    a.key_store === b.key_store &&
    a.key_ref === b.key_ref &&
    a.key_algorithm === b.key_algorithm &&
    sameBytes(a.public_key_spki ?? new Uint8Array(0), b.public_key_spki ?? new Uint8Array(0)) &&
    a.signature_algorithm === b.signature_algorithm &&
    sameBytes(a.certificate_der, b.certificate_der)
  );
}

function servedCa(id: string, row: AnswerRow): ServedCa {
  return {
    id,
    status: row.status,
    keyStore: row.key_store,
    keyRef: row.key_ref,
    keyAlgorithm: row.key_algorithm,
    signatureAlgorithm: row.signature_algorithm,
    certificateDer: row.certificate_der,
    removedAt: row.removed_at,
    deleteTime: row.delete_time,
  };
}

export function createOcspResponder({ database, clock, keyStores, config, metrics }: OcspResponderDeps) {
  const signing = new Map<string, CaSigning>();
  /** By CA id and request DER (latin1), for requests without a nonce. */
  const reusable = new Map<string, ReusableAnswer>();

  /**
   * The request's bytes and, for one small enough to be remembered, its key in `reusable`; with the remembered answer
   * when this CA was asked exactly this before, else the parsed request. Neither: malformed.
   */
  function readRequest(
    caId: string,
    requestDer: () => Uint8Array,
  ): { der?: Uint8Array; key?: string; known?: ReusableAnswer; request?: OcspRequest } {
    try {
      const der = requestDer();
      const key =
        der.length > MAX_REUSABLE_REQUEST_BYTES
          ? undefined
          : `${caId}\n${Buffer.from(der.buffer, der.byteOffset, der.length).toString('latin1')}`;
      const known = key === undefined ? undefined : reusable.get(key);
      return known ? { der, key, known } : { der, key, request: parseOcspRequest(der) };
    } catch (error) {
      if (!(error instanceof OcspMalformedError)) throw error;
      return {};
    }
  }

  function remember(key: string, answer: ReusableAnswer): void {
    if (!reusable.has(key) && reusable.size >= MAX_REUSABLE_ANSWERS) reusable.delete(reusable.keys().next().value!);
    reusable.set(key, answer);
  }

  const countStatuses = (statuses: readonly OcspCertStatus[]) => {
    for (const status of statuses) metrics.ocspResponses.inc({ status: typeof status === 'string' ? status : 'revoked' });
  };

  /** The rows of each lookup, from one statement for all of them, and the time the statement was sent. */
  async function lookUp(lookups: Lookup[]): Promise<{ now: Date; rows: AnswerRow[] }[]> {
    const now = clock.now();
    const [caIds, domainIds, serials, owners] = [[], [], [], []] as [string[], (string | null)[], (string | null)[], number[]];
    lookups.forEach(({ caId, domainId, serials: asked }, owner) => {
      for (const serial of asked.length > 0 ? asked : [null]) {
        caIds.push(caId);
        domainIds.push(domainId);
        serials.push(serial);
        owners.push(owner);
      }
    });
    const rows = await database.query<AnswerRow>(ANSWER_STATEMENT, [caIds, domainIds, serials, now, releasedBefore(now)]);
    const answers = lookups.map(() => ({ now, rows: [] as AnswerRow[] }));
    for (const row of rows) answers[owners[Number(row.item) - 1]].rows.push(row);
    return answers;
  }
  const lookUpFresh = createStatementBatcher(lookUp, { maxInFlight: STATEMENTS_IN_FLIGHT, send: 'now' });

  function caSigning(id: string, row: AnswerRow): CaSigning {
    const known = signing.get(id);
    if (known && sameSigningFields(known.row, row)) return known;
    const entry: CaSigning = {
      row,
      hashes: new Map(),
      responderKeyHash: issuerHashes(row.certificate_der, CERT_ID_HASH_OIDS.SHA1)!.keyHash,
      signer: keyStores.signerOf({
        keyStore: row.key_store,
        keyRef: row.key_ref,
        keyAlgorithm: row.key_algorithm,
        publicKeySpki: row.public_key_spki,
      })!,
      hash: (row.signature_algorithm ?? 'SHA256') as HashAlgorithm,
    };
    signing.delete(id);
    if (signing.size >= MAX_CACHED_CAS) signing.delete(signing.keys().next().value!);
    signing.set(id, entry);
    return entry;
  }

  /** A CertID names this CA when both issuer hashes match; otherwise (or for an unsupported hash) it is unknown. */
  function namesCa(ca: CaSigning, request: OcspCertIdRequest): boolean {
    let hashes = ca.hashes.get(request.hashAlgorithmOid);
    if (!ca.hashes.has(request.hashAlgorithmOid)) {
      hashes = issuerHashes(ca.row.certificate_der, request.hashAlgorithmOid);
      // Only the algorithms this responder computes are remembered: an arbitrary OID must not grow the map.
      if (hashes) ca.hashes.set(request.hashAlgorithmOid, hashes);
    }
    return hashes !== undefined && sameBytes(hashes.nameHash, request.issuerNameHash) && sameBytes(hashes.keyHash, request.issuerKeyHash);
  }

  return {
    /**
     * The DER OCSPResponse for a DER request (`requestDer` throws OcspMalformedError for an undecodable GET path)
     * to the CA `reference` names, or null when no CA with it is served (404). Malformed requests get
     * malformedRequest; a CA that may not sign (its key held elsewhere) gets unauthorized; a DELETED CA answers
     * while its deletion is pending. Failures of the database or key store throw.
     */
    async answer(reference: string, requestDer: () => Uint8Array): Promise<Uint8Array | null> {
      const parsed = parsePublicCaReference(reference, config.region);
      if (!parsed) return null;
      const asked = readRequest(parsed.id, requestDer);
      const serials = asked.known?.serials ?? asked.request?.requests.map((single) => single.serialNumberHex) ?? [];
      // `now`, the statement's time, is the thisUpdate: the statuses are known to be right as of then.
      const { now, rows } = await lookUpFresh({ caId: parsed.id, domainId: parsed.domainId ?? null, serials });
      if (rows.length === 0) return null;
      if (!asked.known && !asked.request) {
        metrics.ocspResponses.inc({ status: 'malformedRequest' });
        return ocspErrorResponse('malformedRequest');
      }
      if (!maySign(servedCa(parsed.id, rows[0]), now)) {
        metrics.ocspResponses.inc({ status: 'unauthorized' });
        return ocspErrorResponse('unauthorized');
      }
      const ca = caSigning(parsed.id, rows[0]);
      const found = new Map<string, OcspCertStatus>();
      for (const row of rows) {
        if (row.serial_number === null) continue;
        found.set(row.serial_number, row.revoked_at ? { revoked: { time: row.revoked_at, reasonCode: row.reason_code! } } : 'good');
      }
      const known = asked.known;
      if (known) {
        // Remembered answers name this CA in every CertID (while `by` is this signing entry): the statuses are the found ones.
        const statuses = known.serials.map((serial) => found.get(serial) ?? ('unknown' as const));
        const age = now.getTime() - known.signed.producedAt;
        if (known.signed.by === ca && known.signed.statuses === statuses.map(statusKey).join(',') && age >= 0 && age < REUSE_SIGNED_MS) {
          countStatuses(statuses);
          return known.signed.der;
        }
      }
      // A remembered request whose answer no longer holds is parsed again (it parsed before) and signed anew.
      const request = asked.request ?? parseOcspRequest(asked.der!);
      const responses = request.requests.map((single) => ({
        certId: single.certId,
        status: (namesCa(ca, single) && found.get(single.serialNumberHex)) || ('unknown' as const),
        thisUpdate: now,
      }));
      countStatuses(responses.map(({ status }) => status));
      const response = await buildOcspResponse(
        { responderKeyHash: ca.responderKeyHash, producedAt: now, responses, nonce: request.nonce, hash: ca.hash },
        ca.signer,
      );
      if (asked.key !== undefined && !request.nonce) {
        if (responses.every(({ status }) => status !== 'unknown')) {
          const statuses = responses.map(({ status }) => statusKey(status)).join(',');
          remember(asked.key, { serials, signed: { by: ca, statuses, producedAt: now.getTime(), der: response } });
        } else {
          reusable.delete(asked.key);
        }
      }
      return response;
    },
  };
}
export type OcspResponder = ReturnType<typeof createOcspResponder>;
