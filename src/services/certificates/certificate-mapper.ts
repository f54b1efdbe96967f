/** The Certificate object of §5.8 from a database row: every documented field present, null when empty. */
import type { Config } from '../../config.ts';
import { dnObject, type DistinguishedNameObject, type DnColumns } from '../dn-columns.ts';
import { certificateUrn } from '../urn.ts';
import { certificateStatus, type CertificateStatus } from './certificate-rules.ts';

/** The columns a certificate object needs (a Prisma row or a raw list row). */
export interface CertificateFields extends DnColumns {
  id: string;
  domainId: string;
  issuerId: string;
  status: string;
  genMode: string;
  keyAlgorithm: string;
  signatureAlgorithm: string;
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  enterpriseProjectId: string;
  createdAt: Date;
}

export interface CertificateObject {
  certificate_id: string;
  status: CertificateStatus;
  issuer_id: string;
  issuer_name: string | null;
  key_algorithm: string;
  signature_algorithm: string;
  freeze_flag: number;
  gen_mode: string;
  serial_number: string;
  create_time: number;
  not_before: number;
  not_after: number;
  delete_time: null;
  distinguished_name: DistinguishedNameObject;
  enterprise_project_id: string;
  urn: string;
}

export function toCertificateObject(
  row: CertificateFields,
  config: Pick<Config, 'region'>,
  context: { now: Date; issuerName: string | null },
): CertificateObject {
  return {
    certificate_id: row.id,
    status: certificateStatus(row, context.now),
    issuer_id: row.issuerId,
    issuer_name: context.issuerName,
    key_algorithm: row.keyAlgorithm,
    signature_algorithm: row.signatureAlgorithm,
    freeze_flag: 0,
    gen_mode: row.genMode,
    serial_number: row.serialNumber,
    create_time: row.createdAt.getTime(),
    not_before: row.notBefore.getTime(),
    not_after: row.notAfter.getTime(),
    delete_time: null,
    distinguished_name: dnObject(row),
    enterprise_project_id: row.enterpriseProjectId,
    urn: certificateUrn(config.region, row.domainId, row.id),
  };
}
