/**
 * The issuing side of every signature this service makes under a CA: certificates, subordinate CAs, CRLs, OCSP.
 * `loadIssuer` resolves a CA reference, reads the row (locked when asked: db/locks.ts), checks that the CA may
 * issue, and returns what a certificate needs from it.
 */
import type { Config } from '../../config.ts';
import type { RowLockMode } from '../../db/locks.ts';
import type { Tx } from '../../db/tx.ts';
import type { CertificateAuthority } from '../../db/generated/client.ts';
import { errors, type AppError } from '../../errors.ts';
import type { KeyStores } from '../../keystore/index.ts';
import type { Signer } from '../../x509/algorithms.ts';
import { caKeyIdentifier, parseCertificate } from '../../x509/certificate.ts';
import type { NameConstraints } from '../../x509/name-constraints.ts';
import { storedIssuancePolicy, type IssuancePolicy, type IssuerRules } from '../policy/index.ts';
import type { RequestContext } from '../context.ts';
import { caChain, findOwnCa, lockOwnCa } from './ca-store.ts';
import { resolveCaReference } from '../urn.ts';
import { PREPAID_GRACE_MS, prepaidPhase } from '../billing/prepaid.ts';
import { crlDistributionPoint } from '../publication/publication-rules.ts';
import { effectiveStatus, publicUrls } from './ca-rules.ts';

export { validityWindow } from './ca-rules.ts';

export interface Issuer {
  row: CertificateAuthority;
  signer: Signer;
  /** The issuer's subject Name exactly as its certificate encodes it: the child's issuer field. */
  subjectDer: Uint8Array;
  /** The child's AKI. */
  subjectKeyIdentifier: Uint8Array;
  notAfter: Date;
  pathLength: number;
  /** The issuer's own certificate first, then its parents up to the root. */
  chain: Uint8Array[];
  /** What children carry: caIssuers always; CDP and OCSP while the issuer has them switched on. */
  urls: { caIssuers: string; crlDistributionPoint?: string; ocsp?: string };
  /** The name constraints of the issuer's certificate and of every certificate above it. */
  chainConstraints: NameConstraints[];
}

export interface LoadIssuerOptions {
  region: string;
  publicUrls: PublicUrlConfig;
  keyStores: KeyStores;
  now: Date;
  /** Names the parameter in messages (default `issuer_id`). */
  field?: string;
  /** Row lock taken first (needs `db` to be a transaction). */
  lock?: RowLockMode;
}

/** The key-holding signer of a CA (gen_mode GENERATE or IMPORT). */
export function caSigner(row: CertificateAuthority, keyStores: KeyStores): Signer {
  const signer = keyStores.signerOf(row);
  if (!signer) throw errors.conflictingState(`CA ${row.id} holds no key`);
  return signer;
}

/** Why a CA cannot issue, or null: it must be ACTIVED (EXPIRED derived from not_after), valid already and hold its key here. */
export function issueRefusal(row: CertificateAuthority, now: Date, field: string): AppError | null {
  const status = effectiveStatus(row, now);
  if (prepaidPhase(row, now) === 'FROZEN') {
    return errors.frozen(
      `${field} names a yearly/monthly CA frozen since its grace period ended (${new Date(row.prepaidUntil!.getTime() + PREPAID_GRACE_MS).toISOString()}); renew it to issue again`,
    );
  }
  if (status !== 'ACTIVED') return errors.conflictingState(`${field} names a CA in status ${status}; it must be ACTIVED`);
  // A certificate it signed now would end before its issuer is valid, or start before it: no chain would verify.
  if (row.notBefore && row.notBefore.getTime() > now.getTime()) {
    return errors.conflictingState(`${field} names a CA valid from ${row.notBefore.toISOString()}; it issues nothing before then`);
  }
  if ((row.genMode !== 'GENERATE' && row.genMode !== 'IMPORT') || !row.keyRef || !row.certificateDer || !row.notAfter) {
    return errors.conflictingState(`${field} names a CA whose key is not held by this service`);
  }
  return null;
}

export function assertCanIssue(row: CertificateAuthority, now: Date, field: string): void {
  const refusal = issueRefusal(row, now, field);
  if (refusal) throw refusal;
}

export async function loadIssuer(db: Tx, ctx: RequestContext, reference: string, opts: LoadIssuerOptions): Promise<Issuer> {
  const field = opts.field ?? 'issuer_id';
  const id = resolveCaReference(reference, { region: opts.region, domainId: ctx.domainId, field });
  const row = opts.lock ? await lockOwnCa(db, ctx, id, opts.lock, opts.now) : await findOwnCa(db, ctx, id, opts.now);
  assertCanIssue(row, opts.now, field);
  const certificate = parseCertificate(new Uint8Array(row.certificateDer!));
  const chain = await caChain(db, row);
  return {
    row,
    signer: caSigner(row, opts.keyStores),
    subjectDer: certificate.subjectDer,
    subjectKeyIdentifier: caKeyIdentifier(certificate),
    notAfter: row.notAfter!,
    pathLength: row.pathLength,
    chain,
    urls: issuerUrls(row, opts.publicUrls),
    chainConstraints: chainNameConstraints(chain),
  };
}

/** The name constraints each certificate of a chain carries (RFC 5280: all of them bind what the chain signs). */
export function chainNameConstraints(chain: readonly Uint8Array[]): NameConstraints[] {
  return chain.map((der) => parseCertificate(der).nameConstraints).filter((constraints) => constraints !== null);
}

/** What the evaluator checks for an issuer: its chain's name constraints, its own policy and any added by the caller. */
export function issuerRules(issuer: Pick<Issuer, 'row' | 'chainConstraints'>, extraPolicies: readonly IssuancePolicy[] = []): IssuerRules {
  const own = storedIssuancePolicy(issuer.row.issuancePolicy);
  return { policies: own ? [own, ...extraPolicies] : extraPolicies, chainConstraints: issuer.chainConstraints };
}

/** What the URLs in issued certificates depend on. */
export type PublicUrlConfig = Pick<Config, 'publicBaseUrl' | 'crlPublication'>;

export function issuerUrls(row: CertificateAuthority, config: PublicUrlConfig): Issuer['urls'] {
  return {
    caIssuers: publicUrls.caCertificate(config.publicBaseUrl, row.id),
    ...(row.crlEnabled ? { crlDistributionPoint: crlDistributionPoint(config, row) } : {}),
    ...(row.ocspEnabled ? { ocsp: publicUrls.ocsp(config.publicBaseUrl, row.id) } : {}),
  };
}
