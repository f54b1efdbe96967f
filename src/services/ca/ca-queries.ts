/** Reading CAs (§4.2.10-4.2.13, §10.4): show, list, export, quota and the public certificate. */
import type { Clock } from '../../clock.ts';
import type { Config } from '../../config.ts';
import type { Db } from '../../db/database.ts';
import type { CertificateAuthority, Prisma } from '../../db/generated/client.ts';
import { containsText } from '../../db/text-filters.ts';
import { errors } from '../../errors.ts';
import { joinPem, toPem } from '../../x509/pem.ts';
import type { RequestContext } from '../context.ts';
import { parsePublicCaReference } from '../urn.ts';
import type { ListCaQuery } from './ca-input.ts';
import { autoRenewFlags, toCaObject, type CaObject } from './ca-mapper.ts';
import { NOT_CSR_ISSUED, effectiveStatus, existingCa, type CaStatus } from './ca-rules.ts';
import { caChain, findOwnCa } from './ca-store.ts';

export interface CaQueryDeps {
  db: Db;
  clock: Clock;
  config: Pick<Config, 'region' | 'publicBaseUrl' | 'quotas'>;
  /** A CA id or URN of the caller's, to its id (`field` names the parameter in messages). */
  resolve: (ctx: RequestContext, reference: string, field?: string) => string;
}

export function createCaQueries({ db, clock, config, resolve }: CaQueryDeps) {
  async function issuerNames(rows: CertificateAuthority[]): Promise<Map<string, string | null>> {
    const ids = [...new Set(rows.map((row) => row.issuerId).filter((id): id is string => id !== null))];
    if (ids.length === 0) return new Map();
    const parents = await db.certificateAuthority.findMany({ where: { id: { in: ids } }, select: { id: true, commonName: true } });
    return new Map(parents.map((parent) => [parent.id, parent.commonName]));
  }

  async function present(rows: CertificateAuthority[]): Promise<CaObject[]> {
    const [names, autoRenew] = await Promise.all([issuerNames(rows), autoRenewFlags(db, rows)]);
    const now = clock.now();
    return rows.map((row) =>
      toCaObject(row, config, {
        now,
        issuerName: row.issuerId ? (names.get(row.issuerId) ?? null) : null,
        autoRenew: autoRenew.get(row.id) ?? null,
      }),
    );
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

  const SORT_COLUMNS = {
    create_time: 'createdAt',
    common_name: 'commonName',
    type: 'type',
    ca_type: 'type',
    not_after: 'notAfter',
  } as const;

  async function list(ctx: RequestContext, query: ListCaQuery): Promise<{ total: number; certificate_authorities: CaObject[] }> {
    const now = clock.now();
    const where: Prisma.CertificateAuthorityWhereInput = {
      AND: [
        { domainId: ctx.domainId, ...existingCa(now) },
        NOT_CSR_ISSUED,
        query.status ? statusFilter(query.status, now) : {},
        query.type ? { type: query.type } : {},
        query.name ? { commonName: containsText(query.name) } : {},
      ],
    };
    const dir = query.sort_dir === 'ASC' ? 'asc' : 'desc';
    const column = SORT_COLUMNS[query.sort_key];
    const primary = column === 'createdAt' ? { createdAt: dir } : { [column]: { sort: dir, nulls: 'last' } };
    const [total, rows] = await Promise.all([
      db.certificateAuthority.count({ where }),
      query.limit === 0
        ? Promise.resolve([])
        : db.certificateAuthority.findMany({
            where,
            orderBy: [primary as Prisma.CertificateAuthorityOrderByWithRelationInput, { id: dir }],
            skip: query.offset,
            take: query.limit,
          }),
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

  return { show, list, exportCertificate, quota, publicCertificate };
}
