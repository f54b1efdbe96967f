/**
 * Deciding what an issuance writes (§4.4.1 server-made keys, §4.4.2 CSRs), before its transaction: the request
 * validated, the certificate's content chosen, and the names, EKUs and name constraints the policy evaluator will
 * judge under the issuer's lock. Server-made keys are generated last, once the unlocked issuer has already judged
 * the request (an RSA key costs seconds).
 */
import type { Clock } from '../../clock.ts';
import type { Config } from '../../config.ts';
import type { SqlRunner } from '../../db/tx.ts';
import { errors } from '../../errors.ts';
import { keyFamily, type HashAlgorithm, type KeyAlgorithm } from '../../x509/algorithms.ts';
import { csrNameConstraints, parseCsr } from '../../x509/csr.ts';
import type { SignatureCheckRunner } from '../../x509/public-key.ts';
import { EXTENDED_KEY_USAGE_OIDS, type CustomExtension, type KeyUsage, type SubjectAltName } from '../../x509/extensions.ts';
import { encodeName, isEmptyName, validateNameDer, type DistinguishedName } from '../../x509/name.ts';
import { checkKeyAlgorithm, checkSignatureAlgorithm, type Validity } from '../ca/ca-rules.ts';
import { findOwnCa } from '../ca/ca-store.ts';
import { issueRefusal, issuerRules, validityWindow } from '../ca/issuer.ts';
import type { RequestContext } from '../context.ts';
import { assertIssuanceAllowed, type IssuancePolicy } from '../policy/index.ts';
import {
  validateCustomExtensions,
  validateDistinguishedName,
  validateKeyUsages,
  validateNameConstraints,
  validateSubjectAltNames,
} from '../request-fields.ts';
import { resolveCaReference } from '../urn.ts';
import {
  MAX_CERTIFICATE_YEARS,
  basicConstraintsFor,
  checkCertificateType,
  csrExtendedKeyUsages,
  checkRequestedKeyUsages,
  csrKeyUsages,
  extendedKeyUsageOids,
  inheritDistinguishedName,
  requestedKeyUsages,
  type CertificateType,
} from './certificate-rules.ts';
import { issuanceFacts, requestedNames, type FactsSource } from './issuance-facts.ts';
import type { IssuingCaLoader } from './issuing-ca.ts';
import { generateServerKey } from './server-key.ts';
import type { CreateCertificateByCsrRequest, CreateCertificateRequest } from './certificate-input.ts';
import { certificateQuotaUsedUp, certificatesUsed } from './certificate-usage.ts';

/** Options of ACME finalize: policies checked next to the issuing CA's own. */
export interface IssuanceOptions {
  extraPolicies?: readonly IssuancePolicy[];
  /**
   * Names the caller proved control of (ACME's validated identifiers): a CSR then contributes its key and its
   * common name (one of these) only. The certificate names exactly these, and its EKUs are serverAuth + clientAuth,
   * whatever subject attributes (O, OU: authorization in some relying parties) or EKUs the CSR asked for.
   */
  provenNames?: readonly SubjectAltName[];
}

/**
 * What one issuance writes, decided before the transaction; `sign` runs inside it with the locked issuer, after
 * the policy evaluator has seen the facts (names, validity, key, EKUs, a CA's name constraints).
 */
export interface IssuancePlan extends FactsSource {
  type: CertificateType;
  genMode: 'GENERATE' | 'CSR';
  /** A CSR-issued INTERMEDIATE_CA becomes a CA row (§4.4.2), everything else a certificate row. */
  storeAsCa: boolean;
  keyAlgorithm: KeyAlgorithm;
  /** Undefined: the issuer's own hash. */
  hash?: HashAlgorithm;
  subject: DistinguishedName | Uint8Array;
  subjectFields: DistinguishedName;
  spki: Uint8Array;
  keyUsages: KeyUsage[];
  extendedKeyUsages: string[];
  subjectAltNames: SubjectAltName[];
  customExtensions: CustomExtension[];
  requestedPathLength?: number;
  validity: Validity;
  enterpriseProjectId: string;
  /** The server-made PKCS#8 key, sealed per attempt under the new id. */
  pkcs8?: Uint8Array;
  extraPolicies: readonly IssuancePolicy[];
}

/** CSR-signed certificates always use SHA384 (§4.4.2). */
const CSR_SIGNATURE_HASH: HashAlgorithm = 'SHA384';

export interface IssuancePlannerDeps {
  /** The raw runner (`database.query`): a plan's reads (issuer, its chain, the quota) are named statements. */
  sql: SqlRunner;
  clock: Clock;
  config: Pick<Config, 'region' | 'quotas'>;
  issuingCas: IssuingCaLoader;
  /** Runs the CSRs' signature checks (parseCsr's proof of possession). */
  checkSignature: SignatureCheckRunner;
}

export function createIssuancePlanner({ sql, clock, config, issuingCas, checkSignature }: IssuancePlannerDeps) {
  async function planServerKey(ctx: RequestContext, request: CreateCertificateRequest): Promise<IssuancePlan> {
    const type = checkCertificateType(request.type);
    const requested = validateDistinguishedName(request.distinguished_name, { requireAll: false });
    const requestedUsages = request.key_usages === undefined ? undefined : validateKeyUsages(request.key_usages);
    checkRequestedKeyUsages(type, requestedUsages);
    const { names: subjectAltNames, indices: sanIndices } = validateSubjectAltNames(request.subject_alternative_names ?? []);
    const customExtensions = validateCustomExtensions(request.customized_extension);
    const hash = request.signature_algorithm == null ? undefined : checkSignatureAlgorithm(request.signature_algorithm);
    const requestedAlgorithm = request.key_algorithm == null ? undefined : checkKeyAlgorithm(request.key_algorithm);
    if (type === 'ENTITY_CERT' && request.name_constraints != null) {
      throw errors.invalidParameter('name_constraints applies to type INTERMEDIATE_CA only');
    }
    const nameConstraints = validateNameConstraints(request.name_constraints);
    validityWindow(request.validity, clock.now(), MAX_CERTIFICATE_YEARS); // its syntax, before the issuer's existence (§2)
    // The issuer is read here (unlocked) for its defaults; the transaction reads it again under its lock.
    const issuerRow = await findOwnCa(
      sql,
      ctx,
      resolveCaReference(request.issuer_id, { region: config.region, domainId: ctx.domainId, field: 'issuer_id' }),
      clock.now(),
    );
    if (requestedAlgorithm === undefined && issuerRow.keyAlgorithm === null) {
      // An unconfigured prepaid CA has no key algorithm to lend: the parameter is missing, not invalid (issue #21).
      throw errors.invalidParameter('key_algorithm is required: the issuer has no key algorithm to inherit');
    }
    const keyAlgorithm = requestedAlgorithm ?? checkKeyAlgorithm(issuerRow.keyAlgorithm, 'the issuer key_algorithm');
    const keyUsages = requestedKeyUsages(type, requestedUsages, keyFamily(keyAlgorithm));
    const subject = inheritDistinguishedName(requested, issuerRow);
    const plan: Omit<IssuancePlan, 'spki'> = {
      type,
      genMode: 'GENERATE',
      storeAsCa: false,
      keyAlgorithm,
      hash,
      subject,
      subjectFields: subject,
      keyUsages,
      extendedKeyUsages: extendedKeyUsageOids(request.extended_key_usage),
      ekusNeedGrant: false,
      subjectAltNames,
      names: requestedNames(
        subjectAltNames,
        (index) => `subject_alternative_names[${sanIndices[index]}]`,
        type === 'ENTITY_CERT' ? { value: subject.common_name, field: 'distinguished_name.common_name' } : undefined,
      ),
      nameConstraints,
      nameConstraintsField: 'name_constraints',
      customExtensions,
      requestedPathLength: request.path_length,
      validity: request.validity,
      enterpriseProjectId: request.enterprise_project_id || '0',
      extraPolicies: [],
    };
    // Fail before the costly key generation on what the issuer can already tell, the policy included. An issuer
    // that cannot issue is left to the transaction, which refuses it after the quota (docs/contract-notes.md).
    const now = clock.now();
    basicConstraintsFor(type, request.path_length, issuerRow.pathLength);
    if (issueRefusal(issuerRow, now, 'issuer_id') === null) {
      // Judged against the issuer's not_after only when it can issue: an expired one is refused for its state.
      const window = validityWindow(request.validity, now, MAX_CERTIFICATE_YEARS, issuerRow.notAfter ?? undefined, issuerRow.notBefore);
      const issuer = await issuingCas.issuingCaOf(sql, issuerRow, now);
      assertIssuanceAllowed(issuerRules(issuer, plan.extraPolicies), issuanceFacts(plan, window));
    }
    // The quota too (unlocked; the transaction takes it under its lock): a refused request must not cost a key.
    if ((await certificatesUsed(sql, ctx.domainId)) + 1 > config.quotas.certificate)
      throw certificateQuotaUsedUp(config.quotas.certificate);
    const key = await generateServerKey(keyAlgorithm);
    return { ...plan, spki: key.spki, pkcs8: key.pkcs8 };
  }

  async function planCsr(request: CreateCertificateByCsrRequest, options: IssuanceOptions = {}): Promise<IssuancePlan> {
    const type = checkCertificateType(request.type);
    const csr = await parseCsr(request.csr, checkSignature);
    const proven = options.provenNames;
    // The CSR's SANs pass the same rules as requested ones (§5.5), with the same error codes.
    const { names: subjectAltNames, indices: sanIndices } = validateSubjectAltNames(proven ?? csr.subjectAltNames);
    // The subject is copied as the CSR encodes it, so it must say no more than the fields the API reports.
    const csrSubjectFields = validateNameDer(csr.subjectDer, 'csr subject');
    const subjectFields = proven ? { common_name: csrSubjectFields.common_name ?? null } : csrSubjectFields;
    if (type === 'INTERMEDIATE_CA' && isEmptyName(csr.subjectDer)) {
      throw errors.invalidDistinguishedName("an INTERMEDIATE_CA needs a subject name (RFC 5280 §4.1.2.6); the CSR's is empty");
    }
    return {
      type,
      genMode: 'CSR',
      storeAsCa: type === 'INTERMEDIATE_CA',
      keyAlgorithm: csr.keyAlgorithm,
      hash: CSR_SIGNATURE_HASH,
      subject: proven ? encodeName(subjectFields) : csr.subjectDer,
      subjectFields,
      spki: csr.spki,
      keyUsages: csrKeyUsages(type, csr),
      extendedKeyUsages: proven
        ? [EXTENDED_KEY_USAGE_OIDS.server_auth, EXTENDED_KEY_USAGE_OIDS.client_auth]
        : csrExtendedKeyUsages(type, csr),
      ekusNeedGrant: !proven,
      subjectAltNames,
      names: requestedNames(
        subjectAltNames,
        (index) => `csr subjectAltName[${sanIndices[index]}]`,
        type === 'ENTITY_CERT' ? { value: subjectFields.common_name, field: 'csr subject common name' } : undefined,
      ),
      // Name constraints make sense on a CA only; an entity CSR's are ignored like its other extensions.
      nameConstraints: type === 'INTERMEDIATE_CA' ? csrNameConstraints(csr) : null,
      nameConstraintsField: 'csr nameConstraints',
      customExtensions: [],
      requestedPathLength: request.path_length,
      validity: request.validity,
      enterpriseProjectId: request.enterprise_project_id || '0',
      extraPolicies: options.extraPolicies ?? [],
    };
  }

  return { planServerKey, planCsr };
}
