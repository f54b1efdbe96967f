/** The CA object of §5.7 from a database row: every documented field present, null when empty. */
import { storedAcmePolicy, type AcmePolicyDocument } from '../acme/acme-policy.ts';
import type { Config } from '../../config.ts';
import type { Db } from '../../db/database.ts';
import type { CertificateAuthority } from '../../db/generated/client.ts';
import { dnObject, type DistinguishedNameObject } from '../dn-columns.ts';
import { prepaidDaysLeft, prepaidPhase } from '../billing/prepaid.ts';
import { caUrn } from '../urn.ts';
import { storedPolicyDocument, type IssuancePolicyDocument } from '../policy/index.ts';
import type { NameConstraints } from '../../x509/name-constraints.ts';
import { crlDistributionPoint } from '../publication/publication-rules.ts';
import { effectiveStatus, type CaStatus } from './ca-rules.ts';
import type { PublicUrlConfig } from './issuer.ts';

export type { DistinguishedNameObject };

export interface CrlConfigurationObject {
  enabled: boolean;
  crl_name: string | null;
  obs_bucket_name: string | null;
  valid_days: number | null;
  crl_dis_point: string | null;
}

export interface CaObject {
  ca_id: string;
  type: string | null;
  status: CaStatus;
  path_length: number;
  issuer_id: string | null;
  issuer_name: string | null;
  key_algorithm: string | null;
  signature_algorithm: string | null;
  freeze_flag: number;
  gen_mode: string | null;
  serial_number: string | null;
  create_time: number;
  delete_time: number | null;
  not_before: number | null;
  not_after: number | null;
  distinguished_name: DistinguishedNameObject | null;
  crl_configuration: CrlConfigurationObject;
  enterprise_project_id: string;
  free_quota: number;
  charging_mode: number;
  /** Extension for consoles (scenario 4): end of a prepaid CA's purchased period and the whole days left. */
  prepaid_expire_time: number | null;
  prepaid_days_left: number | null;
  /** Extension: 1 when the CA's order asked for auto-renewal (billing/prepaid-renewal.ts), 0 when not; null for pay-per-use. */
  prepaid_auto_renew: number | null;
  cluster_id: null;
  domain_id: string;
  urn: string;
  /** Extension (issue #19): RFC 5280 name constraints of the CA certificate (requested ones while PENDING). */
  name_constraints: NameConstraints | null;
  /** Extension (issue #19): what this CA may sign. */
  issuance_policy: IssuancePolicyDocument | null;
  acme_policy: AcmePolicyDocument;
}

const millis = (date: Date | null): number | null => (date ? date.getTime() : null);

export function distinguishedNameOf(row: CertificateAuthority): DistinguishedNameObject | null {
  return row.commonName === null ? null : dnObject(row);
}

export function crlConfigurationOf(row: CertificateAuthority, config: PublicUrlConfig): CrlConfigurationObject {
  return {
    enabled: row.crlEnabled,
    crl_name: row.crlName,
    obs_bucket_name: row.obsBucketName,
    valid_days: row.crlValidDays,
    crl_dis_point: row.crlEnabled ? crlDistributionPoint(config, row) : null,
  };
}

export interface CaObjectContext {
  now: Date;
  /** The parent's common name; null for roots and parents outside this service. */
  issuerName: string | null;
  /** Its order's is_auto_renew (autoRenewFlags); null for a pay-per-use CA. */
  autoRenew: number | null;
}

/** The is_auto_renew of each prepaid row's order, by CA id (one query, none for pay-per-use rows). */
export async function autoRenewFlags(db: Db, rows: Pick<CertificateAuthority, 'id' | 'orderId'>[]): Promise<Map<string, number>> {
  const orderIds = [...new Set(rows.map((row) => row.orderId).filter((id): id is string => id !== null))];
  if (orderIds.length === 0) return new Map();
  const orders = await db.caOrder.findMany({ where: { id: { in: orderIds } }, select: { id: true, isAutoRenew: true } });
  const flags = new Map(orders.map((order) => [order.id, order.isAutoRenew]));
  return new Map(rows.flatMap((row) => (row.orderId && flags.has(row.orderId) ? [[row.id, flags.get(row.orderId)!]] : [])));
}

export function toCaObject(
  row: CertificateAuthority,
  config: Pick<Config, 'region' | 'publicBaseUrl' | 'crlPublication'>,
  context: CaObjectContext,
): CaObject {
  return {
    ca_id: row.id,
    type: row.type,
    status: effectiveStatus(row, context.now),
    path_length: row.pathLength,
    issuer_id: row.issuerId,
    issuer_name: row.issuerId ? context.issuerName : null,
    key_algorithm: row.keyAlgorithm,
    signature_algorithm: row.signatureAlgorithm,
    freeze_flag: prepaidPhase(row, context.now) === 'FROZEN' ? 1 : 0,
    gen_mode: row.genMode,
    serial_number: row.serialNumber,
    create_time: row.createdAt.getTime(),
    delete_time: row.status === 'DELETED' ? millis(row.deleteTime) : null,
    not_before: millis(row.notBefore),
    not_after: millis(row.notAfter),
    distinguished_name: distinguishedNameOf(row),
    crl_configuration: crlConfigurationOf(row, config),
    enterprise_project_id: row.enterpriseProjectId,
    free_quota: row.freeQuota,
    charging_mode: row.chargingMode,
    prepaid_expire_time: millis(row.prepaidUntil),
    prepaid_days_left: prepaidDaysLeft(row, context.now),
    prepaid_auto_renew: context.autoRenew,
    cluster_id: null,
    domain_id: row.domainId,
    urn: caUrn(config.region, row.domainId, row.id),
    name_constraints: (row.nameConstraints as NameConstraints | null) ?? null,
    issuance_policy: storedPolicyDocument(row.issuancePolicy),
    acme_policy: storedAcmePolicy(row.acmePolicy),
  };
}
