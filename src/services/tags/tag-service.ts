/**
 * Tags and resource instances (§4.3) for CAs and certificates: single and batch writes, per-resource and
 * per-domain reads, and the tag/name filter with its count. Resource existence follows each resource's rules:
 * CAs are the caller's, not removed (writes also not DELETED nor CSR-issued); certificates not deleted. Writes lock
 * the resource's row first, which keeps the 20-tag limit under concurrent writes.
 */
import type { Config } from '../../config.ts';
import type { Db } from '../../db/database.ts';
import type { CertificateAuthority } from '../../db/generated/client.ts';
import { lockRow } from '../../db/locks.ts';
import type { Clock } from '../../clock.ts';
import { errors } from '../../errors.ts';
import { recordAudit } from '../audit/audit-log.ts';
import { autoRenewFlags, toCaObject } from '../ca/ca-mapper.ts';
import { effectiveStatus } from '../ca/ca-rules.ts';
import { findOwnCa, lockOwnCa } from '../ca/ca-store.ts';
import { toCertificateObject } from '../certificates/certificate-mapper.ts';
import type { RequestContext, Tx } from '../context.ts';
import { resolveCaReference } from '../urn.ts';
import { checkFilter, checkSingleTag, checkTags, type ResourceTag } from './tag-rules.ts';
import { domainTagsSql, matchingCountSql, matchingIdsPageSql, type SqlText, type TaggedResourceType } from './tag-sql.ts';

export type { TaggedResourceType };

export interface TagServiceDeps {
  db: Db;
  clock: Clock;
  config: Pick<Config, 'region' | 'publicBaseUrl'>;
}

export const MAX_TAGS_PER_RESOURCE = 20;

export function createTagService(deps: TagServiceDeps) {
  const { db, clock, config } = deps;

  function caId(ctx: RequestContext, reference: string): string {
    return resolveCaReference(reference, { region: config.region, domainId: ctx.domainId, field: 'ca_id' });
  }

  /** The resource's bare id once it is known to exist for the caller (and, for writes, to accept tag changes). */
  async function existing(
    tx: Db | Tx,
    ctx: RequestContext,
    type: TaggedResourceType,
    reference: string,
    forWrite: boolean,
  ): Promise<string> {
    if (type === 'CERTIFICATE') {
      const own = () =>
        tx.certificate.findFirst({ where: { id: reference, domainId: ctx.domainId, deletedAt: null }, select: { id: true } });
      let certificate = await own();
      // As for CAs (lockOwnCa): concurrent writes queue on the row, so each counts the tags the previous one left. Found
      // first, so that another domain's row (its id is in its holder's hands) is never locked; found again under the lock.
      if (certificate && forWrite) {
        await lockRow(tx, 'certificates', certificate.id);
        certificate = await own();
      }
      if (!certificate) throw errors.notFound(`certificate ${reference}`);
      return certificate.id;
    }
    const id = caId(ctx, reference);
    const row = forWrite ? await lockOwnCa(tx, ctx, id, 'update', clock.now()) : await findOwnCa(tx, ctx, id, clock.now());
    // §4.4.2: a CSR-issued CA answers show, export and revoke only; it is in no list or filter either.
    if (row.genMode === 'CSR') throw errors.conflictingState('a CA issued from a CSR has no tags');
    if (forWrite && effectiveStatus(row, clock.now()) === 'DELETED') {
      throw errors.conflictingState('tags cannot be changed while the CA is DELETED');
    }
    return row.id;
  }

  /** Adds or replaces checked tags, refusing a result above 20 tags per resource. */
  async function upsert(
    ctx: RequestContext,
    type: TaggedResourceType,
    reference: string,
    tags: ResourceTag[],
    action: string,
  ): Promise<void> {
    await db.$transaction(async (tx) => {
      const resourceId = await existing(tx, ctx, type, reference, true);
      const present = await tx.tag.findMany({ where: { resourceType: type, resourceId }, select: { key: true } });
      const keys = new Set([...present.map((tag) => tag.key), ...tags.map((tag) => tag.key)]);
      if (keys.size > MAX_TAGS_PER_RESOURCE) throw errors.invalidParameter(`a resource has at most ${MAX_TAGS_PER_RESOURCE} tags`);
      for (const { key, value } of tags) {
        await tx.tag.upsert({
          where: { resourceType_resourceId_key: { resourceType: type, resourceId, key } },
          create: { domainId: ctx.domainId, resourceType: type, resourceId, key, value },
          update: { value },
        });
      }
      await recordAudit(tx, ctx, { action, resourceType: type, resourceId, detail: { keys: tags.map((tag) => tag.key) } });
    });
  }

  async function remove(ctx: RequestContext, type: TaggedResourceType, reference: string, input: unknown, action: string): Promise<void> {
    const tags = checkTags(input, { valuesOptional: true });
    await db.$transaction(async (tx) => {
      const resourceId = await existing(tx, ctx, type, reference, true);
      await tx.tag.deleteMany({ where: { resourceType: type, resourceId, key: { in: tags.map((tag) => tag.key) } } });
      await recordAudit(tx, ctx, { action, resourceType: type, resourceId, detail: { removed_keys: tags.map((tag) => tag.key) } });
    });
  }

  async function list(ctx: RequestContext, type: TaggedResourceType, reference: string): Promise<{ tags: ResourceTag[] }> {
    const resourceId = await existing(db, ctx, type, reference, false);
    const tags = await db.tag.findMany({ where: { resourceType: type, resourceId }, orderBy: { key: 'asc' } });
    return { tags: tags.map(({ key, value }) => ({ key, value })) };
  }

  const rowsOf = <Row>({ text, values }: SqlText) => db.$queryRawUnsafe<Row[]>(text, ...values);

  /** Every key used on the domain's live resources of the type, with its distinct values. */
  async function domainTags(ctx: RequestContext, type: TaggedResourceType): Promise<{ tags: { key: string; values: string[] }[] }> {
    const tags = await rowsOf<{ key: string; value: string }>(domainTagsSql(type, ctx.domainId, clock.now()));
    const grouped = new Map<string, Set<string>>();
    for (const { key, value } of tags) grouped.set(key, (grouped.get(key) ?? new Set()).add(value));
    return { tags: [...grouped].map(([key, values]) => ({ key, values: [...values] })) };
  }

  async function filter(ctx: RequestContext, type: TaggedResourceType, body: unknown) {
    const request = checkFilter(body, { paged: true });
    const now = clock.now();
    // Keys ANDed, values ORed (`[]` = any value), `resource_name` a case-insensitive substring (tag-sql.ts).
    const [ids, [{ count: total }]] = await Promise.all([
      rowsOf<{ id: string }>(matchingIdsPageSql(type, ctx.domainId, request, now)),
      rowsOf<{ count: number }>(matchingCountSql(type, ctx.domainId, request, now)),
    ]);
    const page = await pageOf(
      type,
      ids.map(({ id }) => id),
    );
    const tags = await db.tag.findMany({
      where: { resourceType: type, resourceId: { in: page.map((entry) => entry.id) } },
      orderBy: { key: 'asc' },
    });
    const issuerIds = [...new Set(page.map((entry) => entry.issuerId).filter((id): id is string => id !== null))];
    const issuers = await db.certificateAuthority.findMany({ where: { id: { in: issuerIds } }, select: { id: true, commonName: true } });
    const issuerName = (id: string | null) => (id ? (issuers.find((issuer) => issuer.id === id)?.commonName ?? null) : null);
    const autoRenew =
      type === 'CA'
        ? await autoRenewFlags(
            db,
            page.map((entry) => entry.row as CertificateAuthority),
          )
        : new Map<string, number>();
    return {
      total_count: total,
      resources: page.map((entry) => ({
        resource_id: entry.id,
        // The common name (§4.3), null for a resource without one (an ordered CA not set up yet), as §2 has it.
        resource_name: entry.commonName,
        resource_detail:
          type === 'CA'
            ? toCaObject(entry.row as CertificateAuthority, config, {
                now,
                issuerName: issuerName(entry.issuerId),
                autoRenew: autoRenew.get(entry.id) ?? null,
              })
            : toCertificateObject(entry.row as Parameters<typeof toCertificateObject>[0], config, {
                now,
                issuerName: issuerName(entry.issuerId),
              }),
        tags: tags.filter((tag) => tag.resourceId === entry.id).map(({ key, value }) => ({ key, value })),
      })),
    };
  }

  /** The rows of a page's ids, in the page's order. */
  async function pageOf(type: TaggedResourceType, ids: string[]) {
    const args = { where: { id: { in: ids } } };
    const rows = type === 'CA' ? await db.certificateAuthority.findMany(args) : await db.certificate.findMany(args);
    const byId = new Map(rows.map((row) => [row.id, row]));
    return ids.flatMap((id) => {
      const row = byId.get(id);
      return row ? [{ id, commonName: row.commonName, issuerId: row.issuerId as string | null, row }] : [];
    });
  }

  async function count(ctx: RequestContext, type: TaggedResourceType, body: unknown): Promise<{ total_count: number }> {
    const [{ count: total }] = await rowsOf<{ count: number }>(
      matchingCountSql(type, ctx.domainId, checkFilter(body, { paged: false }), clock.now()),
    );
    return { total_count: total };
  }

  return {
    // async: a refused tag is a rejected promise, as every other refusal of the service is.
    createOne: async (ctx: RequestContext, type: TaggedResourceType, reference: string, tag: unknown, action: string) =>
      upsert(ctx, type, reference, [checkSingleTag(tag)], action),
    createMany: async (ctx: RequestContext, type: TaggedResourceType, reference: string, tags: unknown, action: string) =>
      upsert(ctx, type, reference, checkTags(tags), action),
    deleteMany: remove,
    list,
    domainTags,
    filter,
    count,
  };
}

export type TagService = ReturnType<typeof createTagService>;
