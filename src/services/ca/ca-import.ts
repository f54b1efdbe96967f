/**
 * Importing a subordinate's certificate (§4.2.6): issued elsewhere from the CSR this CA exported, checked against its
 * key and, when given, its chain; the parent is linked when it is one of the caller's CAs.
 */
import type { Clock } from '../../clock.ts';
import type { Db } from '../../db/database.ts';
import type { CertificateAuthority } from '../../db/generated/client.ts';
import { errors } from '../../errors.ts';
import { parseCertificate, verifyCertificateSignature } from '../../x509/certificate.ts';
import { joinPem, parsePemBlocks, parseSinglePem, toPem } from '../../x509/pem.ts';
import { X509Error } from '../../x509/x509-errors.ts';
import { recordAudit } from '../audit/audit-log.ts';
import type { BillingHooks } from '../billing/usage-hooks.ts';
import type { RequestContext, Tx } from '../context.ts';
import { dnColumns } from '../dn-columns.ts';
import { jsonOrNull } from '../json-column.ts';
import type { ImportCaInput } from './ca-input.ts';
import {
  CA_SIGNING_KEY_USAGES,
  NOT_CSR_ISSUED,
  ROOT_PATH_LENGTH,
  checkStoredValidity,
  effectiveStatus,
  existingCa,
  requireStatus,
} from './ca-rules.ts';
import { bytesColumn } from './ca-spec.ts';
import { findOwnCa, lockOwnCa } from './ca-store.ts';

/**
 * An imported CA's parent chain: real ones hold a few certificates (at most the root's path length plus the root),
 * each a few KB. The bounds keep a 2 MiB `certificate_chain` from costing more than a real chain's parsing.
 */
const IMPORTED_CHAIN_LIMITS = { maxBlocks: ROOT_PATH_LENGTH + 1, maxBlockChars: 32768 } as const;

export interface CaImportDeps {
  db: Db;
  clock: Clock;
  billing: Pick<BillingHooks, 'startBillableUsage'>;
  /** A CA id or URN of the caller's, to its id (`field` names the parameter in messages). */
  resolve: (ctx: RequestContext, reference: string, field?: string) => string;
}

export function createCaImport({ db, clock, billing, resolve }: CaImportDeps) {
  async function importCertificate(ctx: RequestContext, reference: string, input: ImportCaInput): Promise<void> {
    const caId = resolve(ctx, reference);
    const mismatch = () => errors.conflictingState('certificate must be issued from the CSR exported from this CA');
    const requireImportable = (row: CertificateAuthority) => {
      requireStatus(row, effectiveStatus(row, clock.now()), ['PENDING'], 'import');
      if (row.type !== 'SUBORDINATE' || !row.publicKeySpki) throw errors.conflictingState('only a configured SUBORDINATE CA can import');
    };
    // The caller's CA first: parsing (up to 2 MiB of chain) is work an unknown or finished CA should not cost.
    requireImportable(await findOwnCa(db, ctx, caId, clock.now()));
    const certificateDer = parseSinglePem(input.certificate, 'CERTIFICATE', 'certificate');
    const chainText = input.certificate_chain?.trim() ? input.certificate_chain : undefined;
    const chain = chainText ? parsePemBlocks(chainText, 'CERTIFICATE', 'certificate_chain', IMPORTED_CHAIN_LIMITS) : [];
    const certificate = (() => {
      try {
        return parseCertificate(certificateDer);
      } catch (error) {
        if (error instanceof X509Error && error.kind === 'unsupported-name-constraint') throw error;
        throw mismatch();
      }
    })();
    await db.$transaction(async (tx) => {
      const now = clock.now();
      const row = await lockOwnCa(tx, ctx, caId, 'update', clock.now());
      requireImportable(row);
      if (!Buffer.from(certificate.spki).equals(Buffer.from(row.publicKeySpki!)) || !certificate.isCA) throw mismatch();
      // Without keyCertSign verifiers refuse everything the CA would sign, without cRLSign its CRLs; a missing
      // keyUsage extension is refused too (RFC 5280 §4.2.1.3 requires it on a CA certificate).
      if (!CA_SIGNING_KEY_USAGES.every((usage) => certificate.keyUsages.includes(usage))) {
        throw errors.invalidParameter("certificate's key usage must include keyCertSign and cRLSign (RFC 5280 §4.2.1.3)");
      }
      checkStoredValidity(certificate);
      if (!chainsTo(certificateDer, chain)) throw mismatch();
      const parent = await parentInService(tx, ctx, certificateDer, certificate.issuerDer, chain[0]);
      // The same certificate may already be a CA of this service: create-by-CSR with INTERMEDIATE_CA recorded one for a
      // held key before such CSRs were refused (held-ca-keys.ts), and databases keep them.
      const holder =
        parent &&
        (await tx.certificateAuthority.findFirst({
          where: { issuerId: parent.id, serialNumber: certificate.serialHex },
          select: { id: true },
        }));
      if (holder) throw errors.invalidParameter(`certificate is already the certificate of CA ${holder.id}`);
      const updated = await tx.certificateAuthority.update({
        where: { id: caId },
        data: {
          status: 'ACTIVED',
          genMode: 'IMPORT',
          issuerId: parent?.id ?? null,
          serialNumber: certificate.serialHex,
          notBefore: certificate.notBefore,
          notAfter: certificate.notAfter,
          certificateDer: bytesColumn(certificateDer),
          importedChainPem: parent || chain.length === 0 ? null : joinPem(chain.map((der) => toPem('CERTIFICATE', der))),
          pathLength: Math.min(certificate.pathLength ?? ROOT_PATH_LENGTH, ROOT_PATH_LENGTH),
          keyUsages: certificate.keyUsages,
          nameConstraints: jsonOrNull(certificate.nameConstraints),
          ...dnColumns(certificate.subject),
          signatureAlgorithm: row.signatureAlgorithm ?? 'SHA256',
        },
      });
      if (updated.chargingMode === 1) await billing.startBillableUsage(tx, updated, now);
      await recordAudit(tx, ctx, {
        action: 'pca:ca:import',
        resourceType: 'CA',
        resourceId: caId,
        detail: { issuer_id: updated.issuerId, serial_number: certificate.serialHex },
      });
    });
  }

  /** The certificate is signed by chain[0], each chain entry by the next, and the last is self-signed. */
  function chainsTo(certificateDer: Uint8Array, chain: Uint8Array[]): boolean {
    if (chain.length === 0) return true;
    const links = [certificateDer, ...chain];
    for (let i = 0; i < chain.length; i++) {
      const parent = parseCertificate(chain[i]);
      if (!verifyCertificateSignature(links[i], parent.spki)) return false;
    }
    const root = parseCertificate(chain[chain.length - 1]);
    return verifyCertificateSignature(chain[chain.length - 1], root.spki);
  }

  /** The parent when it is one of the caller's CAs: the supplied chain starts with it, or its key signed the certificate. */
  async function parentInService(
    tx: Tx,
    ctx: RequestContext,
    certificateDer: Uint8Array,
    issuerDer: Uint8Array,
    first: Uint8Array | undefined,
  ) {
    const candidates = await tx.certificateAuthority.findMany({
      where: { domainId: ctx.domainId, certificateDer: { not: null }, AND: [existingCa(clock.now()), NOT_CSR_ISSUED] },
    });
    for (const candidate of candidates) {
      const own = new Uint8Array(candidate.certificateDer!);
      if (first) {
        if (Buffer.from(own).equals(Buffer.from(first))) return candidate;
        continue;
      }
      const parsed = parseCertificate(own);
      if (Buffer.from(parsed.subjectDer).equals(Buffer.from(issuerDer)) && verifyCertificateSignature(certificateDer, parsed.spki)) {
        return candidate;
      }
    }
    return null;
  }

  return { importCertificate };
}
