/**
 * The issuer as the issuance hot path needs it: the CA row read under FOR SHARE in the issuing transaction (so a
 * concurrent disable waits), with the same checks as `loadIssuer`, but without the chain (export reads it) and
 * with the parsed certificate, signer and the chain's name constraints cached per CA certificate (id + serial:
 * a CA's certificate and those above it never change), so a request costs two queries. The rows last read are
 * remembered with their versions, for a batch that signs first and checks the version when it stores
 * (issuance-batch.ts).
 */
import type { Config } from '../../config.ts';
import type { Executor } from '../../db/tx.ts';
import type { KeyStores } from '../../keystore/index.ts';
import type { Signer } from '../../x509/algorithms.ts';
import { caKeyIdentifier, parseCertificate } from '../../x509/certificate.ts';
import type { NameConstraints } from '../../x509/name-constraints.ts';
import { caChain, lockOwnCa, shareLockCas, type VersionedCa } from '../ca/ca-store.ts';
import { assertCanIssue, caSigner, chainNameConstraints, issuerUrls, type Issuer } from '../ca/issuer.ts';
import type { RequestContext, Tx } from '../context.ts';
import { resolveCaReference } from '../urn.ts';

export type IssuingCa = Omit<Issuer, 'chain'>;

interface CachedMaterial {
  subjectDer: Uint8Array;
  subjectKeyIdentifier: Uint8Array;
  signer: Signer;
  chainConstraints: NameConstraints[];
}

const MAX_CACHED_CAS = 1000;
const FIELD = 'issuer_id';

export function createIssuingCaLoader(deps: { config: Pick<Config, 'region' | 'publicBaseUrl'>; keyStores: KeyStores }) {
  // Promises, so that a batch's concurrent signings under one uncached CA read its chain once: several statements
  // at once on the batch's one connection would only queue (and pg deprecates calling query() on a busy client).
  const cache = new Map<string, Promise<CachedMaterial>>();
  const remembered = new Map<string, VersionedCa>();

  async function loadMaterial(tx: Executor, row: Issuer['row']): Promise<CachedMaterial> {
    const certificate = parseCertificate(new Uint8Array(row.certificateDer!));
    return {
      subjectDer: certificate.subjectDer,
      subjectKeyIdentifier: caKeyIdentifier(certificate),
      signer: caSigner(row, deps.keyStores),
      chainConstraints: chainNameConstraints(await caChain(tx, row)),
    };
  }

  function materialOf(tx: Executor, row: Issuer['row']): Promise<CachedMaterial> {
    const key = `${row.id}:${row.serialNumber}:${row.keyRef}`;
    let material = cache.get(key);
    if (!material) {
      material = loadMaterial(tx, row);
      if (cache.size >= MAX_CACHED_CAS) cache.clear();
      cache.set(key, material);
      // A failed read is not remembered: the next issuance tries again.
      material.catch(() => cache.delete(key));
    }
    return material;
  }

  /** The same checks as `loadIssuer` on a row read under the caller's FOR SHARE lock. */
  async function issuingCaOf(tx: Executor, row: Issuer['row'], now: Date): Promise<IssuingCa> {
    assertCanIssue(row, now, FIELD);
    return { row, ...(await materialOf(tx, row)), notAfter: row.notAfter!, pathLength: row.pathLength, urls: issuerUrls(row, deps.config) };
  }

  return {
    issuerIdOf(ctx: RequestContext, reference: string): string {
      return resolveCaReference(reference, { region: deps.config.region, domainId: ctx.domainId, field: FIELD });
    },

    async lockIssuingCa(tx: Tx, ctx: RequestContext, reference: string, now: Date): Promise<IssuingCa> {
      return issuingCaOf(tx, await lockOwnCa(tx, ctx, this.issuerIdOf(ctx, reference), 'share', now), now);
    },

    /**
     * The issuers requests name, each locked FOR SHARE (only for a request of its own domain) and read in one
     * statement; a CA missing from the map is absent, removed or another domain's. Each row read is remembered with
     * its version (one read and not yet committed may be remembered: a version is only ever trusted after the
     * database confirms it); one its own domain no longer finds is forgotten.
     */
    async lockIssuingCaRows(
      tx: Executor,
      requests: { issuerId: string; domainId: string }[],
      now: Date,
    ): Promise<Map<string, Issuer['row']>> {
      const read = await shareLockCas(
        tx,
        requests.map(({ issuerId }) => issuerId),
        requests.map(({ domainId }) => domainId),
        now,
      );
      if (remembered.size + requests.length > MAX_CACHED_CAS) remembered.clear();
      for (const { issuerId, domainId } of requests) {
        const found = read.get(issuerId);
        if (found) remembered.set(issuerId, found);
        else if (remembered.get(issuerId)?.row.domainId === domainId) remembered.delete(issuerId);
      }
      return new Map([...read].map(([id, { row }]) => [id, row]));
    },

    /** The issuer's row as this process last read it, and its version then; undefined if not read (or gone). */
    rememberedRow(id: string): VersionedCa | undefined {
      return remembered.get(id);
    },

    issuingCaOf,
  };
}

export type IssuingCaLoader = ReturnType<typeof createIssuingCaLoader>;
