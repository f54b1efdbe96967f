/**
 * CAs and certificates store their subject as six columns (sortable, filterable); the API speaks the §5.1
 * distinguished-name object. These two functions are the only translation between them.
 */
import type { DistinguishedName } from '../x509/name.ts';

export interface DnColumns {
  commonName: string | null;
  country: string | null;
  state: string | null;
  locality: string | null;
  organization: string | null;
  organizationalUnit: string | null;
}

/** The §5.1 object: every attribute present, null when the certificate lacks it. */
export interface DistinguishedNameObject {
  common_name: string | null;
  country: string | null;
  state: string | null;
  locality: string | null;
  organization: string | null;
  organizational_unit: string | null;
}

export function dnColumns(dn: DistinguishedName): DnColumns {
  return {
    commonName: dn.common_name ?? null,
    country: dn.country ?? null,
    state: dn.state ?? null,
    locality: dn.locality ?? null,
    organization: dn.organization ?? null,
    organizationalUnit: dn.organizational_unit ?? null,
  };
}

export function dnObject(row: DnColumns): DistinguishedNameObject {
  return {
    common_name: row.commonName,
    country: row.country,
    state: row.state,
    locality: row.locality,
    organization: row.organization,
    organizational_unit: row.organizationalUnit,
  };
}
