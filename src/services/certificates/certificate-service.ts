/**
 * Issued certificates after issuance (§4.4.4, §4.4.5, §4.4.7): list, show, export, delete and the quota.
 * Deleted certificates answer 404 everywhere; their rows (serials, revocation state) stay for CRL and OCSP.
 */
import type { Clock } from '../../clock.ts';
import type { Config } from '../../config.ts';
import type { Db } from '../../db/database.ts';
import { errors } from '../../errors.ts';
import { buildCertificateExport, parseExportType, type CertificateExport } from '../../export/export-bundle.ts';
import { checkExportPasswordSyntax } from '../../export/private-key-formats.ts';
import type { Sealer } from '../../keystore/sealing.ts';
import { recordAudit } from '../audit/audit-log.ts';
import { caChain } from '../ca/ca-store.ts';
import type { RequestContext } from '../context.ts';
import { toCertificateObject, type CertificateFields, type CertificateObject } from './certificate-mapper.ts';
import { certificateStatus } from './certificate-rules.ts';
import { certificatesUsed, releaseCertificateQuota } from './certificate-usage.ts';
import type { ExportRequest, ListCertificatesQuery } from './certificate-input.ts';
import { listCertificatesSql } from './certificate-sql.ts';
import { parseCaReference } from '../urn.ts';

export interface CertificateServiceDeps {
  db: Db;
  clock: Clock;
  config: Pick<Config, 'region' | 'quotas'>;
  /** The master-key sealer, built once at composition. */
  sealer: Sealer;
}

type ListRow = CertificateFields & { issuerName: string | null };

/** §2 leniency: `"true"`/`"false"` in any case, or a JSON boolean; absent means false. */
export function parseCompressed(value: unknown): boolean {
  if (value === undefined || value === null || typeof value === 'boolean') return value === true;
  if (typeof value === 'string' && /^(true|false)$/i.test(value)) return value.toLowerCase() === 'true';
  throw errors.invalidParameter('is_compressed must be "true" or "false"');
}

export function createCertificateService(deps: CertificateServiceDeps) {
  const { db, clock, config } = deps;
  const { sealer } = deps;

  /**
   * A certificate of the domain, or (extension) the certificate of a CSR-issued INTERMEDIATE_CA: create-by-CSR
   * returns the new CA's id (§4.4.2), and an issuer that fetches every result through the certificate routes must
   * find it there. Only show and export serve it; it is still managed through the CA routes.
   */
  async function findIssuedCertificate(ctx: RequestContext, id: string) {
    const row = await db.certificate.findFirst({ where: { id, domainId: ctx.domainId, deletedAt: null } });
    if (row) return row;
    const ca = await db.certificateAuthority.findFirst({
      where: { id, domainId: ctx.domainId, genMode: 'CSR', removedAt: null, status: { not: 'DELETED' } },
    });
    if (!ca?.certificateDer || !ca.issuerId) throw errors.notFound(`certificate ${id}`);
    const revoked = await db.revocation.findUnique({
      where: { issuerId_serialNumber: { issuerId: ca.issuerId, serialNumber: ca.serialNumber! } },
    });
    return {
      ...ca,
      issuerId: ca.issuerId,
      status: revoked ? 'REVOKED' : 'ISSUED',
      genMode: 'CSR',
      keyAlgorithm: ca.keyAlgorithm!,
      signatureAlgorithm: ca.signatureAlgorithm!,
      serialNumber: ca.serialNumber!,
      notBefore: ca.notBefore!,
      notAfter: ca.notAfter!,
      certificateDer: ca.certificateDer,
      sealedPrivateKey: null,
      type: 'INTERMEDIATE_CA',
    };
  }

  async function issuerNameOf(issuerId: string): Promise<string | null> {
    const issuer = await db.certificateAuthority.findUnique({ where: { id: issuerId }, select: { commonName: true } });
    return issuer?.commonName ?? null;
  }

  return {
    async list(ctx: RequestContext, query: ListCertificatesQuery): Promise<{ total: number; certificates: CertificateObject[] }> {
      const now = clock.now();
      const issuer = query.issuer_id === undefined ? undefined : parseCaReference(query.issuer_id, config.region, 'issuer_id');
      // Another domain's URN names no CA of the caller's: nothing, as for another domain's CA id.
      if (issuer?.domainId !== undefined && issuer.domainId !== ctx.domainId) return { total: 0, certificates: [] };
      const { count, page } = listCertificatesSql(ctx.domainId, { ...query, issuer_id: issuer?.id }, now);
      const [{ total }] = await db.$queryRaw<{ total: number }[]>(count);
      const rows = await db.$queryRaw<ListRow[]>(page);
      return {
        total,
        certificates: rows.map((row) => toCertificateObject(row, config, { now, issuerName: row.issuerName })),
      };
    },

    async show(ctx: RequestContext, id: string): Promise<CertificateObject> {
      const row = await findIssuedCertificate(ctx, id);
      return toCertificateObject(row, config, { now: clock.now(), issuerName: await issuerNameOf(row.issuerId) });
    },

    /** §4.4.5 / §10.9: only ISSUED certificates; the chain runs from the issuer to the root. */
    async export(ctx: RequestContext, id: string, request: ExportRequest): Promise<CertificateExport> {
      const compressed = parseCompressed(request.is_compressed);
      parseExportType(request.type || 'OTHER');
      if (request.password) checkExportPasswordSyntax(request.password);
      const row = await findIssuedCertificate(ctx, id);
      const status = certificateStatus(row, clock.now());
      if (status !== 'ISSUED') throw errors.conflictingState(`certificate ${id} is ${status}; only ISSUED certificates can be exported`);
      const issuer = await db.certificateAuthority.findUnique({ where: { id: row.issuerId } });
      const type = request.type || 'OTHER';
      // The server-made key leaves unless the caller asked for the certificate and chain alone (extension).
      const keyOut = row.sealedPrivateKey !== null && request.include_private_key !== false;
      const exported = await buildCertificateExport({
        type,
        compressed,
        password: request.password,
        commonName: row.commonName ?? row.id,
        certificate: new Uint8Array(row.certificateDer),
        chain: issuer ? await caChain(db, issuer) : [],
        pkcs8: keyOut ? sealer.unseal(row.sealedPrivateKey!, row.id) : undefined,
        isIntermediateCa: row.type === 'INTERMEDIATE_CA',
      });
      // A server-made private key leaving is what the audit log must show: once the export is built (a refused one
      // hands nothing out), the event is stored before the key is answered. Exporting a certificate alone is a read.
      if (keyOut) {
        await recordAudit(db, ctx, {
          action: 'pca:cert:export',
          resourceType: 'CERTIFICATE',
          resourceId: id,
          detail: { type, private_key: true, password_protected: Boolean(request.password) },
        });
      }
      return exported;
    },

    /** §4.4.7: any status; does not revoke. */
    async delete(ctx: RequestContext, id: string): Promise<void> {
      await db.$transaction(async (tx) => {
        const { count } = await tx.certificate.updateMany({
          where: { id, domainId: ctx.domainId, deletedAt: null },
          data: { deletedAt: clock.now() },
        });
        if (count === 0) throw errors.notFound(`certificate ${id}`);
        await releaseCertificateQuota(tx, ctx.domainId);
        await recordAudit(tx, ctx, { action: 'pca:cert:delete', resourceType: 'CERTIFICATE', resourceId: id });
      });
    },

    async quota(ctx: RequestContext) {
      const used = await certificatesUsed(db, ctx.domainId);
      return { quotas: { resources: [{ type: 'CERTIFICATE', used, quota: config.quotas.certificate }] } };
    },
  };
}
export type CertificateService = ReturnType<typeof createCertificateService>;
