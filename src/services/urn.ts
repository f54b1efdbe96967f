/**
 * CA references (§10.1): a bare lowercase UUID, or `pca:{region}:{domain_id}:ca:{ca_id}`.
 * Another region's URN is refused naming both regions; another domain's behaves as not found.
 */
import { errors } from '../errors.ts';

const UUID = /^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

export function caUrn(region: string, domainId: string, caId: string): string {
  return `pca:${region}:${domainId}:ca:${caId}`;
}

export function certificateUrn(region: string, domainId: string, certificateId: string): string {
  return `pca:${region}:${domainId}:certificate:${certificateId}`;
}

/** A CA reference taken apart: the CA id, and the domain a URN names (none for a bare id). */
export interface CaReference {
  id: string;
  domainId?: string;
}

/**
 * The one parser of §10.1's CA references, on a deployment in `region`. Refusals are PCA.00020201; `field` names
 * the parameter in messages (`ca_id`, `issuer_id`).
 */
export function parseCaReference(reference: string, region: string, field: string): CaReference {
  if (!reference.startsWith('pca:')) {
    if (!isUuid(reference)) throw errors.invalidCaId(`${field} must be a lowercase UUID or a CA URN`);
    return { id: reference };
  }
  const parts = reference.split(':');
  const [, urnRegion, domainId, kind, id] = parts;
  if (parts.length !== 5 || !urnRegion || !domainId || kind !== 'ca' || !isUuid(id)) {
    throw errors.invalidCaId(`${field} is not a valid CA URN: expected pca:{region}:{domain_id}:ca:{ca_id}`);
  }
  if (urnRegion !== region) {
    throw errors.invalidCaId(`CA URN region '${urnRegion}' does not match this service's region '${region}'`);
  }
  return { id, domainId };
}

/** Resolves a CA id or URN to the bare id, for a caller in `domainId`: another domain's URN is not found. */
export function resolveCaReference(reference: string, options: { region: string; domainId: string; field: string }): string {
  const { id, domainId } = parseCaReference(reference, options.region, options.field);
  if (domainId !== undefined && domainId !== options.domainId) throw errors.notFound(`CA ${id}`);
  return id;
}

/**
 * `{ca_id}` of a public URL (§10.4), where there is no caller's domain: a bare id, or a URN of this region, whose
 * domain must then be the CA's own. Null for anything else (the public endpoints answer 404, not 400).
 */
export function parsePublicCaReference(reference: string, region: string): CaReference | null {
  try {
    return parseCaReference(reference, region, 'ca_id');
  } catch {
    return null;
  }
}
