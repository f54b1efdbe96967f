/** §4.3 tag rules and the resource-instance filter body, checked into plain values (violations: PCA.00020001). */
import { errors } from '../../errors.ts';

export interface ResourceTag {
  key: string;
  value: string;
}

export interface TagFilter {
  tags: { key: string; values: string[] }[];
  nameContains?: string;
  limit: number;
  offset: number;
}

// Letters of any script, digits, space and `_ . : = + - @`; values may also use `/`.
const KEY = /^[\p{L}\p{M}\p{N} _.:=+\-@]{1,128}$/u;
const VALUE = /^[\p{L}\p{M}\p{N} _.:=+\-@/]{0,255}$/u;
const MAX_FILTER_KEYS = 20;
const MAX_FILTER_VALUES = 20;
const PAGE_SIZES = [10, 20, 50];

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** `field` is the key's own path in the body (`tag.key`, `tags[2].key`), which the message names. */
function checkKey(key: unknown, field: string): string {
  if (typeof key !== 'string' || !KEY.test(key) || [...key].length > 128) {
    throw errors.invalidParameter(`${field} must be 1-128 characters: letters, digits, space or _ . : = + - @`);
  }
  return key;
}

/** `field` is the value's own path in the body (`tag.value`, `tags[2].value`, `tags[2].values[0]`). */
function checkValue(value: unknown, field: string): string {
  if (typeof value !== 'string' || !VALUE.test(value) || [...value].length > 255) {
    throw errors.invalidParameter(`${field} must be 0-255 characters: letters, digits, space or _ . : = + - @ /`);
  }
  return value;
}

/** One `{key, value}`, named `field` in messages; `valuesOptional` for deletes, which match by key. */
function checkTag(tag: unknown, field: string, options: { valuesOptional?: boolean }): ResourceTag {
  if (!isObject(tag)) throw errors.invalidParameter(`${field} must be an object`);
  const key = checkKey(tag.key, `${field}.key`);
  const value = options.valuesOptional && tag.value === undefined ? '' : checkValue(tag.value, `${field}.value`);
  return { key, value };
}

/** The single tag of `POST …/tags` (`{"tag": {key, value}}`): its messages name `tag`, not a list entry. */
export function checkSingleTag(input: unknown): ResourceTag {
  return checkTag(input, 'tag', {});
}

/**
 * A list of `{key, value}` with unique keys (at most 20); `valuesOptional` for deletes, which match by key. Empty is
 * allowed: Huawei's SDK models let a batch carry `tags: []`, which changes nothing.
 */
export function checkTags(input: unknown, options: { valuesOptional?: boolean } = {}): ResourceTag[] {
  if (!Array.isArray(input)) throw errors.invalidParameter('tags must be an array');
  if (input.length > 20) throw errors.invalidParameter('tags has at most 20 entries');
  const seen = new Set<string>();
  return input.map((entry: unknown, index) => {
    const field = `tags[${index}]`;
    const tag = checkTag(entry, field, options);
    if (seen.has(tag.key)) throw errors.invalidParameter(`${field}.key '${tag.key}' appears twice`);
    seen.add(tag.key);
    return tag;
  });
}

/** The filter/count body: `tags` ANDed by key, `matches` on resource_name, `limit` 10/20/50, `offset` >= 0. */
export function checkFilter(body: unknown, options: { paged: boolean }): TagFilter {
  const request = isObject(body) ? body : {};
  const filter: TagFilter = { tags: [], limit: 10, offset: 0 };
  if (request.tags !== undefined) {
    if (!Array.isArray(request.tags) || request.tags.length > MAX_FILTER_KEYS) {
      throw errors.invalidParameter(`tags must be an array of at most ${MAX_FILTER_KEYS} entries`);
    }
    const keys = new Set<string>();
    for (const [index, entry] of request.tags.entries()) {
      const field = `tags[${index}]`;
      if (!isObject(entry)) throw errors.invalidParameter(`${field} must be an object`);
      const key = checkKey(entry.key, `${field}.key`);
      if (keys.has(key)) throw errors.invalidParameter(`${field}.key '${key}' appears twice`);
      keys.add(key);
      // Go's SDK sends a nil values slice as null: like [], any value.
      const given = entry.values === null ? [] : entry.values;
      if (!Array.isArray(given) || given.length > MAX_FILTER_VALUES) {
        throw errors.invalidParameter(`${field}.values must be an array of at most ${MAX_FILTER_VALUES} values`);
      }
      const values = given.map((value: unknown, at) => checkValue(value, `${field}.values[${at}]`));
      if (new Set(values).size !== values.length) throw errors.invalidParameter(`${field}.values has duplicates`);
      filter.tags.push({ key, values });
    }
  }
  if (request.matches !== undefined) {
    if (!Array.isArray(request.matches)) throw errors.invalidParameter('matches must be an array');
    for (const [index, match] of request.matches.entries()) {
      if (!isObject(match) || match.key !== 'resource_name' || typeof match.value !== 'string') {
        throw errors.invalidParameter(`matches[${index}] must be {"key": "resource_name", "value": "<text>"}`);
      }
      // Huawei's SDK: no key twice. Taking the last would match more than asked.
      if (filter.nameContains !== undefined) throw errors.invalidParameter(`matches[${index}].key 'resource_name' appears twice`);
      filter.nameContains = match.value;
    }
  }
  if (options.paged) {
    if (request.limit !== undefined) {
      if (!PAGE_SIZES.includes(Number(request.limit))) throw errors.invalidParameter('limit must be 10, 20 or 50');
      filter.limit = Number(request.limit);
    }
    if (request.offset !== undefined) {
      const offset = Number(request.offset);
      if (!Number.isInteger(offset) || offset < 0) throw errors.invalidParameter('offset must be an integer of at least 0');
      filter.offset = offset;
    }
  }
  return filter;
}
