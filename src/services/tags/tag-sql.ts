/**
 * The tag reads over a domain's live resources as single statements: the resources are filtered, counted and paged
 * in Postgres. (Loading every live id into the process and sending them back as `IN (...)` cost time in proportion
 * to the tenant's size and failed past Prisma's 32,766 bind values: 500 for a tenant with 33,000 certificates.)
 */
import { releasedBefore } from '../billing/prepaid.ts';
import { existingCaCondition } from '../ca/ca-sql.ts';
import { containsText } from '../../db/text-filters.ts';
import type { TagFilter } from './tag-rules.ts';

export type TaggedResourceType = 'CA' | 'CERTIFICATE';

export interface SqlText {
  text: string;
  values: unknown[];
}

/** Placeholders numbered as values are added, so that fragments compose in any order. */
class Statement {
  readonly values: unknown[] = [];
  param(value: unknown, cast = ''): string {
    this.values.push(value);
    return `$${this.values.length}${cast}`;
  }
}

/** `FROM <resource table> r WHERE <live in the domain, named like, carrying every filtered tag>`. */
function liveResources(statement: Statement, type: TaggedResourceType, domainId: string, now: Date, filter?: Partial<TagFilter>): string {
  const domain = statement.param(domainId);
  const conditions = [`r.domain_id = ${domain}`];
  if (type === 'CA') {
    conditions.push(existingCaCondition('r.', statement.param(now), statement.param(releasedBefore(now))));
    conditions.push(`(r.gen_mode IS NULL OR r.gen_mode <> 'CSR')`);
  } else {
    conditions.push('r.deleted_at IS NULL');
  }
  if (filter?.nameContains)
    conditions.push(`r.common_name ILIKE '%' || ${statement.param(containsText(filter.nameContains).contains)} || '%'`);
  for (const { key, values } of filter?.tags ?? []) {
    const value = values.length > 0 ? ` AND t.value = ANY(${statement.param(values, '::text[]')})` : '';
    conditions.push(
      `EXISTS (SELECT 1 FROM tags t WHERE t.domain_id = ${domain} AND t.resource_type = '${type}' AND t.resource_id = r.id AND t.key = ${statement.param(key)}${value})`,
    );
  }
  const table = type === 'CA' ? 'certificate_authorities' : 'certificates';
  return `FROM ${table} r WHERE ${conditions.join(' AND ')}`;
}

/** The page's ids, newest first, ties by id. */
export function matchingIdsPageSql(type: TaggedResourceType, domainId: string, filter: TagFilter, now: Date): SqlText {
  const statement = new Statement();
  const from = liveResources(statement, type, domainId, now, filter);
  const text = `SELECT r.id::text AS id ${from} ORDER BY r.created_at DESC, r.id DESC OFFSET ${statement.param(filter.offset)} LIMIT ${statement.param(filter.limit)}`;
  return { text, values: statement.values };
}

export function matchingCountSql(type: TaggedResourceType, domainId: string, filter: TagFilter, now: Date): SqlText {
  const statement = new Statement();
  const from = liveResources(statement, type, domainId, now, filter);
  return { text: `SELECT count(*)::int AS count ${from}`, values: statement.values };
}

/** Every (key, value) on the domain's live resources of the type, ordered. */
export function domainTagsSql(type: TaggedResourceType, domainId: string, now: Date): SqlText {
  const statement = new Statement();
  const from = liveResources(statement, type, domainId, now);
  const text = `SELECT DISTINCT t.key, t.value FROM tags t
    WHERE t.resource_type = '${type}' AND t.domain_id = ${statement.param(domainId)}
      AND t.resource_id IN (SELECT r.id ${from}) ORDER BY t.key, t.value`;
  return { text, values: statement.values };
}
