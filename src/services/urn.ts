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

/**
 * Resolves a CA id or URN to the bare id, for a caller in `domainId` on a deployment in `region`.
 * `field` names the parameter in messages (`ca_id`, `issuer_id`).
 */
export function resolveCaReference(reference: string, options: { region: string; domainId: string; field: string }): string {
  if (!reference.startsWith('pca:')) {
    if (!isUuid(reference)) throw errors.invalidCaId(`${options.field} must be a lowercase UUID or a CA URN`);
    return reference;
  }
  const parts = reference.split(':');
  const [, region, domainId, kind, id] = parts;
  if (parts.length !== 5 || !region || !domainId || kind !== 'ca' || !isUuid(id)) {
    throw errors.invalidCaId(`${options.field} is not a valid CA URN: expected pca:{region}:{domain_id}:ca:{ca_id}`);
  }
  if (region !== options.region) {
    throw errors.invalidCaId(`CA URN region '${region}' does not match this service's region '${options.region}'`);
  }
  if (domainId !== options.domainId) throw errors.notFound(`CA ${id}`);
  return id;
}
