/**
 * Importing a subordinate's certificate (§4.2.6): issued elsewhere from the CSR this CA exported, checked against its
 * key and, when given, its chain; the parent is linked when it is one of the caller's CAs.
 */
import type { Clock } from '../../clock.ts';
import type { Db } from '../../db/database.ts';
import { retryingConflicts } from '../../db/tx.ts';
import type { CertificateAuthority } from '../../db/generated/client.ts';
import { errors } from '../../errors.ts';
import { certificateHasExtension, parseCertificate, verifyCertificateSignature, type ParsedCertificate } from '../../x509/certificate.ts';
import { Oid } from '../../x509/oids.ts';
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
import { refuseUnderUnusableIssuers } from './ca-transitions.ts';

/**
 * An imported CA's parent chain: real ones hold a few certificates (at most the root's path length plus the root),
 * each a few KB. The bounds keep a 2 MiB `certificate_chain` from costing more than a real chain's parsing.
 */
const IMPORTED_CHAIN_LIMITS = { maxBlocks: ROOT_PATH_LENGTH + 1, maxBlockChars: 32768 } as const;

/**
 * How far past now an imported certificate's notBefore may lie: an external CA dates a certificate when it signs it,
 * and its clock may run a little ahead of ours; the same 5 minutes §5.3 allows `start_from` in the other direction.
 */
const NOT_BEFORE_SKEW_MS = 5 * 60 * 1000;

const sameDer = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));
/** Self-issued (RFC 5280 §3.2): issuer and subject are the same name; such a certificate does not use up a path length. */
const selfIssued = (certificate: ParsedCertificate): boolean => sameDer(certificate.issuerDer, certificate.subjectDer);
/** `the certificate` for index -1, `certificate_chain[i]` for a chain entry: the request's own names for them. */
const linkName = (index: number): string => (index < 0 ? 'the certificate' : `certificate_chain[${index}]`);

/** Refuses a certificate that has expired or is not valid yet (past the clock-skew allowance), as of `now`. */
function checkCurrentlyValid(certificate: ParsedCertificate, name: string, now: Date): void {
  if (certificate.notAfter.getTime() <= now.getTime()) {
    throw errors.invalidParameter(`${name} expired at ${certificate.notAfter.toISOString()}`);
  }
  if (certificate.notBefore.getTime() > now.getTime() + NOT_BEFORE_SKEW_MS) {
    throw errors.invalidParameter(`${name} is not valid before ${certificate.notBefore.toISOString()}`);
  }
}

/**
 * Checks the supplied chain as a certification path down to the imported certificate and answers the path length the
 * certificate may keep: its own pathLenConstraint, lowered to what the chain's constraints leave (undefined: no limit).
 *
 * Each entry must be the issuer of the one before it: its subject is the name the child gives as issuer (compared as
 * DER, as issuers are found elsewhere here), its key verifies the child's signature, it is a CA (basicConstraints cA,
 * RFC 5280 §4.2.1.9), its keyUsage, when present, includes keyCertSign (RFC 5280 §4.2.1.3), and it is valid now; the
 * last is a self-signed root. No certificate may appear twice: export hands the chain out as given (§4.2.6), and a
 * repeat is a mistake the caller should see rather than one the service silently edits.
 */
function checkChain(certificate: ParsedCertificate, certificateDer: Uint8Array, chain: Uint8Array[], now: Date): number | undefined {
  const links = [certificateDer, ...chain];
  for (let later = 1; later < links.length; later++) {
    const earlier = links.findIndex((der) => sameDer(der, links[later]));
    if (earlier < later) {
      throw errors.invalidParameter(
        `${linkName(later - 1)} repeats ${linkName(earlier - 1)}: give each certificate once, from the parent to the root`,
      );
    }
  }
  const parsed = chain.map((der, index) => {
    try {
      return parseCertificate(der);
    } catch (error) {
      if (error instanceof X509Error && error.kind === 'malformed') {
        throw errors.invalidParameter(`${linkName(index)} is not a valid certificate: ${error.message}`);
      }
      throw error;
    }
  });
  /** Index i + 1 holds linkName(i): the certificate first, then the chain. */
  const path = [certificate, ...parsed];
  for (let index = 0; index < chain.length; index++) {
    const issuer = parsed[index];
    const child = path[index];
    const [issuerName, childName] = [linkName(index), linkName(index - 1)];
    if (!sameDer(child.issuerDer, issuer.subjectDer)) {
      throw errors.invalidParameter(
        `${issuerName}'s subject is not the issuer ${childName} names: the chain must hold the parent first, then each certificate's issuer up to the root`,
      );
    }
    if (child.signatureHash === null) {
      throw errors.invalidParameter(`${childName} is signed with an algorithm this service cannot verify (§10.3 lists those it can)`);
    }
    if (!verifyCertificateSignature(links[index], issuer.spki)) {
      throw errors.invalidParameter(`${childName}'s signature does not verify with the key of ${issuerName}, the CA its issuer name names`);
    }
    // A v1 root has no basicConstraints to say so, yet openssl takes a self-signed one as a trust anchor (and
    // RFC 5280 §6.1.4 (k) judges the certificates below the anchor): only a v1 root, never a v1 intermediate.
    const v1Root = index === chain.length - 1 && issuer.version1 && selfIssued(issuer);
    if (!issuer.isCA && !v1Root) {
      throw errors.invalidParameter(
        `${issuerName} cannot issue ${childName}: it is not a CA certificate (basicConstraints cA must be TRUE, RFC 5280 §4.2.1.9)`,
      );
    }
    if (certificateHasExtension(chain[index], Oid.keyUsage) && !issuer.keyUsages.includes('keyCertSign')) {
      throw errors.invalidParameter(`${issuerName} cannot issue ${childName}: its key usage lacks keyCertSign (RFC 5280 §4.2.1.3)`);
    }
    checkCurrentlyValid(issuer, issuerName, now);
  }
  const last = chain.length - 1;
  const root = parsed[last];
  if (root) {
    if (root.signatureHash === null) {
      throw errors.invalidParameter(`${linkName(last)} is signed with an algorithm this service cannot verify (§10.3 lists those it can)`);
    }
    if (!selfIssued(root) || !verifyCertificateSignature(chain[last], root.spki)) {
      throw errors.invalidParameter(`${linkName(last)} is not self-signed: the chain must end with the root`);
    }
  }
  // RFC 5280 §6.1.4 (l) and (m), from the root down: every certificate below the root that is not self-issued uses up
  // one CA level of the tightest pathLenConstraint above it, then its own constraint may tighten that. The root's own
  // constraint counts too: openssl enforces it (error 25) on every leaf below.
  let remaining: number | undefined;
  let limitedBy = last;
  for (let index = last; index >= -1; index--) {
    const current = path[index + 1];
    if (index < last && !selfIssued(current)) {
      if (remaining === 0) {
        const limit = path[limitedBy + 1].pathLength;
        throw errors.invalidParameter(
          `${linkName(index)} exceeds the path length of ${linkName(limitedBy)}: its pathlen:${limit} allows ` +
            `${limit} CA certificate${limit === 1 ? '' : 's'} below it (RFC 5280 §4.2.1.9)`,
        );
      }
      if (remaining !== undefined) remaining--;
    }
    if (current.pathLength !== undefined && (remaining === undefined || current.pathLength < remaining)) {
      remaining = current.pathLength;
      limitedBy = index;
    }
  }
  return remaining;
}

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
    // The CA's row, then its parent's and those above it (as enable takes them): against a delete or revoke on the
    // same chain, which locks from the top down, that can deadlock, and Postgres aborts one, which runs again.
    await retryingConflicts(() =>
      db.$transaction(async (tx) => {
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
        checkCurrentlyValid(certificate, 'the certificate', now);
        let pathLength = checkChain(certificate, certificateDer, chain, now);
        const parent = await parentInService(tx, ctx, certificateDer, certificate.issuerDer, chain[0]);
        // The rule of enable: no CA becomes ACTIVED under a deleted issuer or one whose certificate is revoked. The
        // issuers' rows stay locked FOR SHARE until commit, so a delete or revoke above waits for the import and then
        // disables the CA (disableSubordinates), or the import waits for it and is refused.
        if (parent) await refuseUnderUnusableIssuers(tx, { ...row, issuerId: parent.id }, now);
        // A parent of this service stores the path length its own chain left it: without a chain that is all there is
        // to go by, with one it is no looser than the chain (RFC 5280 §6.1.4 (l): a self-issued certificate uses none).
        if (parent && parent.pathLength !== null) {
          const below = selfIssued(certificate) ? parent.pathLength : parent.pathLength - 1;
          if (below < 0) {
            throw errors.invalidParameter(`the certificate exceeds the path length of its issuer, CA ${parent.id}, whose path_length is 0`);
          }
          pathLength = Math.min(pathLength ?? below, below);
        }
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
            pathLength: Math.min(pathLength ?? ROOT_PATH_LENGTH, ROOT_PATH_LENGTH),
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
      }),
    );
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
