/**
 * The CA hierarchy (§4.2, §6.1): create, order, activate, CSR export and import, list, show, export, enable,
 * disable, scheduled deletion, restore and quota. Every state change is one transaction that locks the CA row
 * FOR UPDATE, re-checks the state, writes the change, its audit event and its billing hook.
 */
import { randomUUID } from 'node:crypto';
import type { Config } from '../../config.ts';
import type { Db } from '../../db/database.ts';
import { isUniqueViolation } from '../../db/errors.ts';
import { advisoryLock } from '../../db/locks.ts';
import type { CertificateAuthority, Prisma } from '../../db/generated/client.ts';
import { errors } from '../../errors.ts';
import { keyStoreSigner, type KeyStores } from '../../keystore/index.ts';
import type { GeneratedKey, KeyStore, KeyStoreKind } from '../../keystore/key-store.ts';
import type { HashAlgorithm, KeyAlgorithm } from '../../x509/algorithms.ts';
import { parseCertificate, verifyCertificateSignature } from '../../x509/certificate.ts';
import { buildCsr } from '../../x509/csr.ts';
import type { KeyUsage } from '../../x509/extensions.ts';
import type { DistinguishedName } from '../../x509/name.ts';
import type { NameConstraints } from '../../x509/name-constraints.ts';
import { X509Error } from '../../x509/x509-errors.ts';
import { validateDistinguishedName, validateKeyUsages, validateNameConstraints } from '../request-fields.ts';
import { jsonOrNull } from '../json-column.ts';
import { dnColumns, dnObject } from '../dn-columns.ts';
import { joinPem, parsePemBlocks, parseSinglePem, toPem } from '../../x509/pem.ts';
import type { Clock } from '../../clock.ts';
import { recordAudit } from '../audit/audit-log.ts';
import type { BillingHooks } from '../billing/usage-hooks.ts';
import type { CrlService } from '../revocation/crl-service.ts';
import type { RequestContext, Tx } from '../context.ts';
import { parsePublicCaReference, resolveCaReference } from '../urn.ts';
import { signCaCertificate } from './ca-certificate.ts';
import type { ActivateCaInput, CaSpecInput, CreateCaInput, CrlConfigurationInput, ImportCaInput, ListCaQuery, OrderCaInput } from './ca-input.ts';
import { autoRenewFlags, toCaObject, type CaObject } from './ca-mapper.ts';
import {
  CA_STATUSES,
  MAX_SUBORDINATE_PATH_LENGTH,
  ROOT_PATH_LENGTH,
  checkCaType,
  checkKeyAlgorithm,
  checkSignatureAlgorithm,
  effectiveStatus,
  existingCa,
  requireStatus,
  type CaStatus,
  type CaType,
  type Validity,
} from './ca-rules.ts';
import { caChain, findOwnCa, lockOwnCa } from './ca-store.ts';
import { caSigner } from './issuer.ts';
import { destroyRemovedCaKey, type HeldKey } from './key-destruction.ts';

export interface CaServiceDeps {
  db: Db;
  clock: Clock;
  config: Pick<Config, 'region' | 'publicBaseUrl' | 'keyStore' | 'quotas'>;
  keyStores: KeyStores;
  /** Called inside our transactions (src/services/billing/usage-hooks.ts). */
  billing: Omit<BillingHooks, 'recordCertificateIssue'>;
  crls: Pick<CrlService, 'signStale'>;
}

export const PENDING_DAYS = { min: 7, max: 30, default: 7 } as const;

/** CSR-issued intermediates (§4.4.2) are CA rows whose key the requester holds: shown and exported only. */
/**
 * An imported CA's parent chain: real ones hold a few certificates (at most the root's path length plus the root),
 * each a few KB. The bounds keep a 2 MiB `certificate_chain` from costing more than a real chain's parsing.
 */
const IMPORTED_CHAIN_LIMITS = { maxBlocks: ROOT_PATH_LENGTH + 1, maxBlockChars: 32768 } as const;

const NOT_CSR_ISSUED: Prisma.CertificateAuthorityWhereInput = { OR: [{ genMode: null }, { genMode: { not: 'CSR' } }] };

/** Prisma's Bytes columns take an ArrayBuffer-backed copy. */
const bytes = (data: Uint8Array): Uint8Array<ArrayBuffer> => new Uint8Array(data);

function crlColumns(crl: CrlConfigurationInput | undefined, caId: string) {
  if (crl === undefined) return {};
  if (typeof crl.enabled !== 'boolean') throw errors.invalidParameter('crl_configuration.enabled is required');
  if (!crl.enabled) return { crlEnabled: false };
  const days = crl.valid_days;
  if (typeof days !== 'number' || !Number.isInteger(days) || days < 7 || days > 30) {
    throw errors.invalidParameter('crl_configuration.valid_days must be 7-30 when enabled');
  }
  return { crlEnabled: true, crlValidDays: days, crlName: crl.crl_name || caId, obsBucketName: crl.obs_bucket_name ?? null };
}

/** The parts of a create/activate request that decide the CA, validated in the contract's order of codes. */
interface CaSpec {
  type: CaType;
  dn: DistinguishedName;
  keyAlgorithm: KeyAlgorithm;
  hash: HashAlgorithm | null;
  validity: Validity | null;
  issuerRef: string | null;
  pathLength: number | null;
  keyUsages: KeyUsage[] | null;
  nameConstraints: NameConstraints | null;
}

function specOf(input: CaSpecInput): CaSpec {
  const type = checkCaType(input.type);
  const dn = validateDistinguishedName(input.distinguished_name, { requireAll: true });
  const keyAlgorithm = checkKeyAlgorithm(input.key_algorithm);
  const hash = input.signature_algorithm === undefined ? null : checkSignatureAlgorithm(input.signature_algorithm);
  const pathLength = type === 'ROOT' ? null : (input.path_length ?? null);
  if (pathLength !== null && (!Number.isInteger(pathLength) || pathLength < 0 || pathLength > MAX_SUBORDINATE_PATH_LENGTH)) {
    throw errors.invalidPathLength(`path_length must be 0-${MAX_SUBORDINATE_PATH_LENGTH}`);
  }
  const keyUsages = type === 'ROOT' || input.key_usages === undefined ? null : validateKeyUsages(input.key_usages);
  const nameConstraints = validateNameConstraints(input.name_constraints);
  const spec: CaSpec = { type, dn, keyAlgorithm, hash, validity: input.validity ?? null, issuerRef: null, pathLength, keyUsages, nameConstraints };
  if (type === 'ROOT') {
    if (!spec.hash) throw errors.invalidParameter('signature_algorithm is required for a ROOT CA');
    if (!spec.validity) throw errors.invalidParameter('validity is required for a ROOT CA');
  } else if (input.issuer_id !== undefined && input.issuer_id !== '') {
    spec.issuerRef = input.issuer_id;
  }
  return spec;
}

/** A root, or a subordinate given issuer, hash and validity, is signed at once; other subordinates wait PENDING. */
const signsNow = (spec: CaSpec): boolean =>
  spec.type === 'ROOT' || (spec.issuerRef !== null && spec.hash !== null && spec.validity !== null);

export function createCaService(deps: CaServiceDeps) {
  const { db, clock, config, keyStores, billing, crls } = deps;
  const signingDeps = { config, keyStores };
  const keyStoreKind = (): KeyStoreKind => config.keyStore.defaultKind;

  const resolve = (ctx: RequestContext, reference: string, field = 'ca_id') =>
    resolveCaReference(reference, { region: config.region, domainId: ctx.domainId, field });

  async function issuerNames(rows: CertificateAuthority[]): Promise<Map<string, string | null>> {
    const ids = [...new Set(rows.map((row) => row.issuerId).filter((id): id is string => id !== null))];
    if (ids.length === 0) return new Map();
    const parents = await db.certificateAuthority.findMany({ where: { id: { in: ids } }, select: { id: true, commonName: true } });
    return new Map(parents.map((parent) => [parent.id, parent.commonName]));
  }

  async function present(rows: CertificateAuthority[]): Promise<CaObject[]> {
    const [names, autoRenew] = await Promise.all([issuerNames(rows), autoRenewFlags(db, rows)]);
    const now = clock.now();
    return rows.map((row) => toCaObject(row, config, { now, issuerName: row.issuerId ? (names.get(row.issuerId) ?? null) : null, autoRenew: autoRenew.get(row.id) ?? null }));
  }

  /** Refuses what would exceed the CA quota; unlocked, it is also the early check before making a key. */
  async function refuseOverQuota(reader: Db | Tx, ctx: RequestContext, count: number): Promise<void> {
    const used = await reader.certificateAuthority.count({ where: { domainId: ctx.domainId, AND: [existingCa(clock.now()), NOT_CSR_ISSUED] } });
    if (used + count > config.quotas.ca) {
      throw errors.conflictingState(`the CA quota is used up (${used} of ${config.quotas.ca})`);
    }
  }

  /** Serializes quota checks of one domain, then refuses what would exceed the quota. */
  async function reserveQuota(tx: Tx, ctx: RequestContext, count: number): Promise<void> {
    await advisoryLock(tx, 'caQuota', ctx.domainId);
    await refuseOverQuota(tx, ctx, count);
  }

  /** Makes a key outside any transaction (RSA generation takes seconds); `use` must commit or the key is destroyed. */
  async function withNewKey<T>(alg: KeyAlgorithm, use: (key: GeneratedKey, store: KeyStore) => Promise<T>): Promise<T> {
    const store = keyStores.get(keyStoreKind());
    const key = await store.generate(alg);
    try {
      return await use(key, store);
    } catch (error) {
      await store.destroy(key.keyRef).catch(() => undefined);
      throw error;
    }
  }

  /** Columns of a CA configured from `spec` with `key`: signed and ACTIVED, or PENDING awaiting activation/import. */
  async function configuredColumns(tx: Tx, ctx: RequestContext, spec: CaSpec, key: GeneratedKey, store: KeyStore, now: Date) {
    const base = {
      type: spec.type,
      keyAlgorithm: spec.keyAlgorithm,
      signatureAlgorithm: spec.hash,
      ...dnColumns(spec.dn),
      keyStore: store.kind,
      keyRef: key.keyRef,
      publicKeySpki: bytes(key.spki),
      nameConstraints: jsonOrNull(spec.nameConstraints),
    };
    if (!signsNow(spec)) {
      return {
        ...base,
        status: 'PENDING',
        genMode: 'GENERATE',
        pathLength: spec.pathLength ?? 0,
        keyUsages: spec.keyUsages ?? [],
      };
    }
    const signed = await signCaCertificate(
      tx,
      ctx,
      {
        type: spec.type,
        dn: spec.dn,
        spki: key.spki,
        ownSigner: keyStoreSigner(store, key.keyRef, spec.keyAlgorithm),
        hash: spec.hash!,
        validity: spec.validity!,
        issuerRef: spec.issuerRef ?? undefined,
        pathLength: spec.pathLength,
        keyUsages: spec.keyUsages,
        nameConstraints: spec.nameConstraints,
      },
      now,
      signingDeps,
    );
    return {
      ...base,
      status: 'ACTIVED',
      genMode: 'GENERATE',
      pathLength: signed.pathLength,
      issuerId: signed.issuerId,
      keyUsages: signed.keyUsages,
      serialNumber: signed.serialNumber,
      notBefore: signed.notBefore,
      notAfter: signed.notAfter,
      certificateDer: bytes(signed.certificateDer),
    };
  }

  /** Unique (issuer, serial) collisions are astronomically rare; one retry with a fresh serial settles them. */
  async function retryingSerialCollision<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (isUniqueViolation(error)) return run();
      throw error;
    }
  }

  /** A yearly/monthly CA awaiting configuration (create with ca_id); `tx` given: locked FOR UPDATE first. */
  async function unconfiguredPrepaid(reader: Db | Tx, ctx: RequestContext, caId: string, tx?: Tx): Promise<void> {
    const row = tx ? await lockOwnCa(tx, ctx, caId, 'update', clock.now()) : await findOwnCa(reader, ctx, caId, clock.now());
    if (row.chargingMode !== 0 || row.status !== 'PENDING' || row.keyRef !== null) {
      throw errors.conflictingState('ca_id must name a yearly/monthly CA that is PENDING and not yet configured');
    }
  }

  async function create(ctx: RequestContext, input: CreateCaInput): Promise<{ ca_id: string }> {
    const spec = specOf(input);
    const prepaidId = input.ca_id ? resolve(ctx, input.ca_id, 'ca_id') : null;
    // Fail fast, before making a key (RSA-4096 costs seconds of CPU); the transaction checks again under its lock.
    if (prepaidId) await unconfiguredPrepaid(db, ctx, prepaidId);
    else await refuseOverQuota(db, ctx, 1);
    const caId = prepaidId ?? randomUUID();
    return withNewKey(spec.keyAlgorithm, (key, store) =>
      retryingSerialCollision(() =>
        db.$transaction(async (tx) => {
          const now = clock.now();
          if (prepaidId) await unconfiguredPrepaid(tx, ctx, prepaidId, tx);
          else await reserveQuota(tx, ctx, 1);
          const columns = {
            ...(await configuredColumns(tx, ctx, spec, key, store, now)),
            ...crlColumns(input.crl_configuration, caId),
            enterpriseProjectId: input.enterprise_project_id ?? '0',
          };
          const row = prepaidId
            ? await tx.certificateAuthority.update({ where: { id: caId }, data: columns })
            : await tx.certificateAuthority.create({
                data: { ...columns, id: caId, domainId: ctx.domainId, chargingMode: 1, freeQuota: config.quotas.freeCertificatesPerCa, createdAt: now },
              });
          if (row.status === 'ACTIVED' && row.chargingMode === 1) await billing.startBillableUsage(tx, row, now);
          await recordAudit(tx, ctx, { action: 'pca:ca:create', resourceType: 'CA', resourceId: caId, detail: { type: row.type, status: row.status, prepaid: prepaidId !== null } });
          return { ca_id: caId };
        }),
      ),
    );
  }

  async function order(ctx: RequestContext, input: OrderCaInput): Promise<{ order_id: string; ca_ids: string[] }> {
    return db.$transaction(async (tx) => {
      const now = clock.now();
      await reserveQuota(tx, ctx, input.subscription_num);
      const orderId = randomUUID();
      await tx.caOrder.create({
        data: {
          id: orderId,
          domainId: ctx.domainId,
          periodType: input.period_type,
          periodNum: input.period_num,
          isAutoRenew: input.is_auto_renew,
          isAutoPay: input.is_auto_pay ?? 0,
          subscriptionNum: input.subscription_num,
          promotionInfo: input.promotion_info ?? null,
          enterpriseProjectId: input.enterprise_project_id ?? null,
          createdAt: now,
        },
      });
      const caIds = Array.from({ length: input.subscription_num }, () => randomUUID());
      await tx.certificateAuthority.createMany({
        data: caIds.map((id, index) => ({
          id,
          domainId: ctx.domainId,
          status: 'PENDING',
          chargingMode: 0,
          orderId,
          enterpriseProjectId: input.enterprise_project_id ?? '0',
          freeQuota: config.quotas.freeCertificatesPerCa,
          // Distinct creation times keep the order's CAs in a stable list order.
          createdAt: new Date(now.getTime() + index),
        })),
      });
      // Also sets each CA's prepaid_until (the end of the purchased period).
      for (const caId of caIds) {
        await billing.recordPrepaidOrder(tx, { caId, domainId: ctx.domainId, periodType: input.period_type, periodNum: input.period_num, at: now });
      }
      await recordAudit(tx, ctx, { action: 'pca:ca:create', resourceType: 'ORDER', resourceId: orderId, detail: { ca_ids: caIds } });
      return { order_id: orderId, ca_ids: caIds };
    });
  }

  async function activate(ctx: RequestContext, reference: string, input: ActivateCaInput): Promise<void> {
    const caId = resolve(ctx, reference);
    const current = await findOwnCa(db, ctx, caId, clock.now());
    requireStatus(current, effectiveStatus(current, clock.now()), ['PENDING'], 'activate');
    const unconfigured = current.keyRef === null;
    const spec = unconfigured ? specOf(input) : specOf({ ...input, ...storedSpecInput(current, input) });
    if (spec.type === 'SUBORDINATE') {
      if (!spec.issuerRef) throw errors.invalidParameter('issuer_id is required');
      if (!spec.hash) throw errors.invalidParameter('signature_algorithm is required');
      if (!spec.validity) throw errors.invalidParameter('validity is required');
    }
    const commit = (key: GeneratedKey, store: KeyStore) =>
      retryingSerialCollision(() =>
        db.$transaction(async (tx) => {
          const now = clock.now();
          const row = await lockOwnCa(tx, ctx, caId, 'update', clock.now());
          requireStatus(row, effectiveStatus(row, now), ['PENDING'], 'activate');
          if ((row.keyRef === null) !== unconfigured) throw errors.conflictingState('the CA changed while activating; retry');
          const columns = {
            ...(await configuredColumns(tx, ctx, spec, key, store, now)),
            ...crlColumns(input.crl_configuration, caId),
            ...(input.enterprise_project_id !== undefined ? { enterpriseProjectId: input.enterprise_project_id } : {}),
          };
          const updated = await tx.certificateAuthority.update({ where: { id: caId }, data: columns });
          if (updated.chargingMode === 1) await billing.startBillableUsage(tx, updated, now);
          await recordAudit(tx, ctx, { action: 'pca:ca:activate', resourceType: 'CA', resourceId: caId, detail: { issuer_id: updated.issuerId } });
        }),
      );
    if (unconfigured) return withNewKey(spec.keyAlgorithm, commit);
    const store = keyStores.get(current.keyStore as KeyStoreKind);
    return commit({ keyRef: current.keyRef!, spki: new Uint8Array(current.publicKeySpki!) }, store);
  }

  /** A configured PENDING subordinate keeps its type, DN and key; the request adds issuer, hash and validity. */
  function storedSpecInput(row: CertificateAuthority, input: ActivateCaInput): CaSpecInput {
    return {
      type: row.type ?? undefined,
      distinguished_name: dnObject(row),
      key_algorithm: row.keyAlgorithm ?? undefined,
      signature_algorithm: input.signature_algorithm ?? row.signatureAlgorithm ?? undefined,
      path_length: input.path_length ?? row.pathLength,
      key_usages: input.key_usages ?? (row.keyUsages.length > 0 ? row.keyUsages : undefined),
      name_constraints: input.name_constraints ?? row.nameConstraints,
    };
  }

  async function exportCsr(ctx: RequestContext, reference: string): Promise<{ csr: string }> {
    const row = await findOwnCa(db, ctx, resolve(ctx, reference), clock.now());
    requireStatus(row, effectiveStatus(row, clock.now()), ['PENDING'], 'CSR export');
    if (row.type !== 'SUBORDINATE' || !row.keyRef || !row.publicKeySpki) {
      throw errors.conflictingState('only a configured SUBORDINATE CA holding its key has a CSR');
    }
    const dn = toCaObject(row, config, { now: clock.now(), issuerName: null, autoRenew: null }).distinguished_name!;
    const nameConstraints = row.nameConstraints as NameConstraints | null;
    const der = await buildCsr(dn, new Uint8Array(row.publicKeySpki), caSigner(row, keyStores), (row.signatureAlgorithm as HashAlgorithm) ?? 'SHA256', nameConstraints);
    return { csr: toPem('CERTIFICATE REQUEST', der) };
  }

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
      if (!(await chainsTo(certificateDer, chain))) throw mismatch();
      const parent = await parentInService(tx, ctx, certificateDer, certificate.issuerDer, chain[0]);
      // The same certificate may already be a CA of this service: create-by-CSR with INTERMEDIATE_CA records one.
      const holder = parent && (await tx.certificateAuthority.findFirst({ where: { issuerId: parent.id, serialNumber: certificate.serialHex }, select: { id: true } }));
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
          certificateDer: bytes(certificateDer),
          importedChainPem: parent || chain.length === 0 ? null : joinPem(chain.map((der) => toPem('CERTIFICATE', der))),
          pathLength: Math.min(certificate.pathLength ?? ROOT_PATH_LENGTH, ROOT_PATH_LENGTH),
          keyUsages: certificate.keyUsages,
          nameConstraints: jsonOrNull(certificate.nameConstraints),
          ...dnColumns(certificate.subject),
          signatureAlgorithm: row.signatureAlgorithm ?? 'SHA256',
        },
      });
      if (updated.chargingMode === 1) await billing.startBillableUsage(tx, updated, now);
      await recordAudit(tx, ctx, { action: 'pca:ca:import', resourceType: 'CA', resourceId: caId, detail: { issuer_id: updated.issuerId, serial_number: certificate.serialHex } });
    });
  }

  /** The certificate is signed by chain[0], each chain entry by the next, and the last is self-signed. */
  async function chainsTo(certificateDer: Uint8Array, chain: Uint8Array[]): Promise<boolean> {
    if (chain.length === 0) return true;
    const links = [certificateDer, ...chain];
    for (let i = 0; i < chain.length; i++) {
      const parent = parseCertificate(chain[i]);
      if (!(await verifyCertificateSignature(links[i], parent.spki))) return false;
    }
    const root = parseCertificate(chain[chain.length - 1]);
    return verifyCertificateSignature(chain[chain.length - 1], root.spki);
  }

  /** The parent when it is one of the caller's CAs: the supplied chain starts with it, or its key signed the certificate. */
  async function parentInService(tx: Tx, ctx: RequestContext, certificateDer: Uint8Array, issuerDer: Uint8Array, first: Uint8Array | undefined) {
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
      if (Buffer.from(parsed.subjectDer).equals(Buffer.from(issuerDer)) && (await verifyCertificateSignature(certificateDer, parsed.spki))) {
        return candidate;
      }
    }
    return null;
  }

  async function show(ctx: RequestContext, reference: string): Promise<CaObject> {
    const row = await findOwnCa(db, ctx, resolve(ctx, reference), clock.now());
    return (await present([row]))[0];
  }

  function statusFilter(status: CaStatus, now: Date): Prisma.CertificateAuthorityWhereInput {
    const expiredByTime = { status: { in: ['ACTIVED', 'DISABLED'] }, notAfter: { lte: now } };
    if (status === 'EXPIRED') return { OR: [{ status: 'EXPIRED' }, expiredByTime] };
    if (status === 'ACTIVED' || status === 'DISABLED') return { status, OR: [{ notAfter: null }, { notAfter: { gt: now } }] };
    return { status };
  }

  const SORT_COLUMNS = { create_time: 'createdAt', common_name: 'commonName', type: 'type', ca_type: 'type', not_after: 'notAfter' } as const;

  async function list(ctx: RequestContext, query: ListCaQuery): Promise<{ total: number; certificate_authorities: CaObject[] }> {
    const now = clock.now();
    const where: Prisma.CertificateAuthorityWhereInput = {
      AND: [
        { domainId: ctx.domainId, ...existingCa(now) },
        NOT_CSR_ISSUED,
        query.status ? statusFilter(query.status, now) : {},
        query.type ? { type: query.type } : {},
        query.name ? { commonName: { contains: query.name, mode: 'insensitive' } } : {},
      ],
    };
    const dir = query.sort_dir === 'ASC' ? 'asc' : 'desc';
    const column = SORT_COLUMNS[query.sort_key];
    const primary = column === 'createdAt' ? { createdAt: dir } : { [column]: { sort: dir, nulls: 'last' } };
    const [total, rows] = await Promise.all([
      db.certificateAuthority.count({ where }),
      query.limit === 0
        ? Promise.resolve([])
        : db.certificateAuthority.findMany({ where, orderBy: [primary as Prisma.CertificateAuthorityOrderByWithRelationInput, { id: dir }], skip: query.offset, take: query.limit }),
    ]);
    return { total, certificate_authorities: await present(rows) };
  }

  async function exportCertificate(ctx: RequestContext, reference: string): Promise<{ certificate: string; certificate_chain: string }> {
    const row = await findOwnCa(db, ctx, resolve(ctx, reference), clock.now());
    const status = effectiveStatus(row, clock.now());
    if (!['ACTIVED', 'EXPIRED'].includes(status) || !row.certificateDer) {
      throw errors.conflictingState(`export is not possible in status ${status} (needs ACTIVED or EXPIRED)`);
    }
    const chain = await caChain(db, row);
    const pem = (der: Uint8Array) => toPem('CERTIFICATE', der);
    const isRoot = row.type === 'ROOT' && row.issuerId === null && row.genMode === 'GENERATE';
    return { certificate: pem(chain[0]), certificate_chain: joinPem((isRoot ? chain : chain.slice(1)).map(pem)) };
  }

  /**
   * One locked, audited transition of an existing CA. A CRL that a revocation under this CA still waits for (its
   * signing at the end of the revoke failed) is signed first: no state change outruns a revocation (issue #21).
   */
  async function transition(
    ctx: RequestContext,
    reference: string,
    action: string,
    change: (tx: Tx, row: CertificateAuthority, status: CaStatus, now: Date) => Promise<Record<string, unknown> | void>,
  ): Promise<void> {
    const caId = resolve(ctx, reference);
    await findOwnCa(db, ctx, caId, clock.now());
    try {
      await crls.signStale(caId);
    } catch (error) {
      throw errors.unavailable('a revocation under this CA waits for its CRL, which cannot be signed now; retry shortly', error);
    }
    await db.$transaction(async (tx) => {
      const now = clock.now();
      const row = await lockOwnCa(tx, ctx, caId, 'update', clock.now());
      const detail = await change(tx, row, effectiveStatus(row, now), now);
      await recordAudit(tx, ctx, { action, resourceType: 'CA', resourceId: caId, detail: detail ?? undefined });
    });
  }

  const disable = (ctx: RequestContext, reference: string) =>
    transition(ctx, reference, 'pca:ca:disable', async (tx, row, status) => {
      requireStatus(row, status, ['ACTIVED'], 'disable');
      await tx.certificateAuthority.update({ where: { id: row.id }, data: { status: 'DISABLED' } });
    });

  const enable = (ctx: RequestContext, reference: string) =>
    transition(ctx, reference, 'pca:ca:enable', async (tx, row, status) => {
      requireStatus(row, status, ['DISABLED'], 'enable');
      if (row.issuerId && row.serialNumber) {
        const revoked = await tx.revocation.findUnique({ where: { issuerId_serialNumber: { issuerId: row.issuerId, serialNumber: row.serialNumber } } });
        if (revoked) throw errors.conflictingState('the CA certificate is revoked; the CA cannot be enabled again');
      }
      await tx.certificateAuthority.update({ where: { id: row.id }, data: { status: 'ACTIVED' } });
    });

  /**
   * §4.2.8: a PENDING CA is removed at once, its key destroyed after commit (a failure leaves the reference for the
   * ca-deletion job to retry); others wait `pendingDays`, keeping their key for restore.
   */
  async function remove(ctx: RequestContext, reference: string, pendingDays: number): Promise<void> {
    let removedKey: HeldKey | undefined;
    await transition(ctx, reference, 'pca:ca:delete', async (tx, row, status, now) => {
      requireStatus(row, status, ['PENDING', 'DISABLED', 'EXPIRED'], 'delete');
      if (status === 'PENDING') {
        await tx.certificateAuthority.update({ where: { id: row.id }, data: { status: 'DELETED', deleteTime: now, statusBeforeDelete: 'PENDING', removedAt: now } });
        await tx.tag.deleteMany({ where: { resourceType: 'CA', resourceId: row.id } });
        removedKey = row;
        return { removed: true };
      }
      const deleteTime = new Date(now.getTime() + pendingDays * 24 * 3_600_000);
      const updated = await tx.certificateAuthority.update({ where: { id: row.id }, data: { status: 'DELETED', deleteTime, statusBeforeDelete: status } });
      if (updated.chargingMode === 1) await billing.startPendingDeletion(tx, updated, now);
      return { pending_days: pendingDays, delete_time: deleteTime.getTime() };
    });
    if (removedKey) await destroyRemovedCaKey(db, keyStores, removedKey).catch(() => undefined);
  }

  const restore = (ctx: RequestContext, reference: string) =>
    transition(ctx, reference, 'pca:ca:restore', async (tx, row, status, now) => {
      requireStatus(row, status, ['DELETED'], 'restore');
      const expired = row.notAfter !== null && row.notAfter.getTime() <= now.getTime();
      const updated = await tx.certificateAuthority.update({
        where: { id: row.id },
        data: { status: expired ? 'EXPIRED' : 'DISABLED', deleteTime: null, statusBeforeDelete: null },
      });
      if (updated.chargingMode === 1) await billing.endPendingDeletionByRestore(tx, updated, now);
      return { status: updated.status };
    });

  async function quota(ctx: RequestContext) {
    const used = await db.certificateAuthority.count({ where: { domainId: ctx.domainId, AND: [existingCa(clock.now()), NOT_CSR_ISSUED] } });
    return { quotas: { resources: [{ type: 'CERTIFICATE_AUTHORITY', used, quota: config.quotas.ca }] } };
  }

  /** The §10.4 public certificate: any CA with a certificate, not removed; a URN must name the CA's own domain. */
  async function publicCertificate(reference: string): Promise<Uint8Array> {
    const parsed = parsePublicCaReference(reference, config.region);
    if (!parsed) throw errors.notFound(`CA ${reference}`);
    const { id, domainId } = parsed;
    const row = await db.certificateAuthority.findFirst({ where: { id, certificateDer: { not: null }, ...existingCa(clock.now()) } });
    if (!row || (domainId !== undefined && row.domainId !== domainId)) throw errors.notFound(`CA ${id}`);
    return new Uint8Array(row.certificateDer!);
  }

  return {
    create,
    order,
    activate,
    exportCsr,
    importCertificate,
    show,
    list,
    exportCertificate,
    enable,
    disable,
    delete: remove,
    restore,
    quota,
    publicCertificate,
    statuses: CA_STATUSES,
  };
}

export type CaService = ReturnType<typeof createCaService>;
