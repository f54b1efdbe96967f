/**
 * The request fields that carry X.509 content (§5.1, §5.2, §5.5, §5.6, name_constraints): checked here, under
 * their wire names and with the contract's error codes, before anything reaches src/x509/ (which knows RFC 5280,
 * not the API).
 */
import { errors } from '../errors.ts';
import {
  KEY_USAGES,
  KNOWN_EXTENSION_ARCS,
  MAX_CUSTOM_EXTENSION_BYTES,
  MAX_SUBJECT_ALT_NAMES,
  SUBJECT_ALT_NAME_TYPES,
  isAbsoluteUri,
  isDnsName,
  isDottedOid,
  isEmailAddress,
  isIpv4Mapped,
  parseIp,
  type CustomExtension,
  type KeyUsage,
  type SubjectAltName,
  type SubjectAltNameType,
} from '../x509/extensions.ts';
import {
  NAME_LIST_KEYS,
  SUBTREE_SYNTAX,
  emptyNameLists,
  hasSubtrees,
  type NameConstraints,
  type NameListKey,
  type NameLists,
} from '../x509/name-constraints.ts';
import { ATTRIBUTE_RULES, NAME_ATTRIBUTES, type DistinguishedName } from '../x509/name.ts';
import { parseRequestedUri } from './policy/name-sets.ts';

/** §5.6 key_usages: unknown names get PCA.00020001. Duplicates collapse. */
export function validateKeyUsages(values: unknown, field = 'key_usages'): KeyUsage[] {
  if (!Array.isArray(values)) throw errors.invalidParameter(`${field} must be an array`);
  for (const value of values) {
    if (!KEY_USAGES.includes(value)) throw errors.invalidParameter(`${field} contains an unknown key usage`);
  }
  return [...new Set(values as KeyUsage[])];
}

/** The distinct SANs in first-seen order, each with the index of its first occurrence in the request. */
export interface DistinctSubjectAltNames {
  names: SubjectAltName[];
  indices: number[];
}

/**
 * §5.5: returns the names typed, or throws the type's error code naming the entry. A name repeated (as RFC 5280 §7
 * compares them: subjectAltNameKey) is kept once, in the form first given; the cap counts distinct names.
 */
export function validateSubjectAltNames(sans: unknown): DistinctSubjectAltNames {
  if (!Array.isArray(sans)) throw errors.invalidParameter('subject_alternative_names must be an array');
  const distinct: DistinctSubjectAltNames = { names: [], indices: [] };
  const seen = new Set<string>();
  sans.forEach((san: unknown, index) => {
    const field = `subject_alternative_names[${index}]`;
    if (typeof san !== 'object' || san === null) throw errors.invalidParameter(`${field} must be an object`);
    const { type, value } = san as Record<string, unknown>;
    if (!SUBJECT_ALT_NAME_TYPES.includes(type as SubjectAltNameType)) {
      throw errors.invalidAltNameType(`${field}.type must be DNS, IP, EMAIL or URI`);
    }
    if (typeof value !== 'string') throw errors.invalidParameter(`${field}.value must be a string`);
    checkAltNameValue(type as SubjectAltNameType, value, `${field}.value`);
    const name = { type: type as SubjectAltNameType, value };
    const key = subjectAltNameKey(name);
    if (seen.has(key)) return;
    seen.add(key);
    if (distinct.names.length === MAX_SUBJECT_ALT_NAMES) {
      throw errors.invalidParameter(`subject_alternative_names has at most ${MAX_SUBJECT_ALT_NAMES} distinct entries`);
    }
    distinct.names.push(name);
    distinct.indices.push(index);
  });
  return distinct;
}

/**
 * What a SAN says, for telling repeats apart as RFC 5280 §7 compares names: a DNS name case-insensitively
 * (RFC 5280 §7.2), an IP address by its octets, an email address with its host part case-insensitive and its local
 * part exact (RFC 5280 §7.5), a URI with its scheme and host case-insensitive and the rest exact (RFC 5280 §7.4), an
 * IP-literal host by its octets (`[::1]` is `[0::1]`). The value must have passed checkAltNameValue.
 */
function subjectAltNameKey(san: SubjectAltName): string {
  switch (san.type) {
    case 'DNS':
      return `DNS:${san.value.toLowerCase()}`;
    case 'IP':
      return `IP:${Buffer.from(parseIp(san.value) ?? []).toString('hex')}`;
    case 'EMAIL': {
      const at = san.value.lastIndexOf('@');
      return `EMAIL:${san.value.slice(0, at)}@${san.value.slice(at + 1).toLowerCase()}`;
    }
    case 'URI': {
      const uri = parseRequestedUri(san.value)!;
      if (uri.host === null) return `URI:${uri.text}`;
      const userinfo = uri.userinfo === null ? '' : `${uri.userinfo}@`;
      // Host and port as written, not `uri.host`: that is WHATWG's reading, where `127.1` is `127.0.0.1`, and an
      // empty port (`h:`) is none; RFC 5280 compares both as text.
      const start = `${uri.scheme}://${userinfo}`.length;
      const hostPort = uri.text.slice(start, uri.text.length - uri.rest.length).toLowerCase();
      // An IP-literal host is `uri.host` as written (lower case), so the port follows it.
      const ip = uri.hostIsIp ? parseIp(uri.host.replace(/^\[(.*)\]$/, '$1')) : null;
      const host = ip === null ? hostPort : `[${Buffer.from(ip).toString('hex')}]${hostPort.slice(uri.host.length)}`;
      return `URI:${uri.scheme}://${userinfo}${host}${uri.rest}`;
    }
  }
}

function checkAltNameValue(type: SubjectAltNameType, value: string, field: string): void {
  switch (type) {
    case 'DNS':
      if (!isDnsName(value, { wildcard: true })) {
        throw errors.invalidDomainName(
          `${field} is not a valid DNS name (at most 253 characters, labels of 1-63 letters, digits, '-' or '_', ` +
            `'*' only as the whole leftmost label)`,
        );
      }
      return;
    case 'IP': {
      const address = value.length > 39 ? null : parseIp(value);
      if (address === null) throw errors.invalidIp(`${field} is not an IPv4 or IPv6 address`);
      // Clients read it as the IPv4 address, which IP rules and name constraints, written per family, would not see.
      if (isIpv4Mapped(address)) throw errors.invalidIp(`${field} is an IPv4-mapped IPv6 address: give the IPv4 address itself`);
      return;
    }
    case 'EMAIL':
      if (!isEmailAddress(value)) throw errors.invalidParameter(`${field} is not a valid email address (addr-spec)`);
      return;
    case 'URI':
      if (!isAbsoluteUri(value)) {
        throw errors.invalidParameter(`${field} is not an absolute URI of at most 253 characters`);
      }
      return;
  }
}

/**
 * §5.6 CustomizedExtension `{object_identifier, value}`: a dotted OID outside 2.5.29, a string value. Both members
 * are optional in Huawei's SDK models: without either (`{}`) there is no extension, an OID alone gets an empty value,
 * and a value alone is refused (it has nowhere to go, and dropping it would issue less than was asked).
 */
export function validateCustomExtensions(extension: unknown): CustomExtension[] {
  const field = 'customized_extension';
  if (extension == null) return [];
  if (typeof extension !== 'object') throw errors.invalidParameter(`${field} must be an object`);
  const { object_identifier: oid, value: given } = extension as Record<string, unknown>;
  const value = given ?? '';
  if (oid == null && value === '') return [];
  if (typeof oid !== 'string' || oid.length > 128 || !isDottedOid(oid)) {
    throw errors.invalidParameter(`${field}.object_identifier must be a dotted OID such as 1.3.6.1.4.1.2011.4.99`);
  }
  if (oid === '2.5.29' || oid.startsWith('2.5.29.')) {
    throw errors.invalidParameter(`${field}.object_identifier must not be a standard extension (2.5.29.*)`);
  }
  const known = KNOWN_EXTENSION_ARCS.find(({ arc }) => oid === arc || oid.startsWith(`${arc}.`));
  if (known) {
    throw errors.invalidParameter(
      `${field}.object_identifier ${oid} is ${known.name}, whose syntax is not a UTF8String; it cannot be set here`,
    );
  }
  if (typeof value !== 'string') throw errors.invalidParameter(`${field}.value must be a string`);
  if (Buffer.byteLength(value, 'utf8') > MAX_CUSTOM_EXTENSION_BYTES) {
    throw errors.invalidParameter(`${field}.value must be at most ${MAX_CUSTOM_EXTENSION_BYTES} bytes of UTF-8`);
  }
  return [{ oid, value }];
}

/**
 * §5.1 (`requireAll`: every attribute required) and §5.2 (only `common_name` required). A present attribute
 * (not undefined or null) must satisfy its rule; violations throw PCA.00020101 naming the field.
 */
export function validateDistinguishedName(dn: unknown, options: { requireAll: boolean }): DistinguishedName {
  if (typeof dn !== 'object' || dn === null || Array.isArray(dn)) {
    throw errors.invalidDistinguishedName('distinguished_name must be an object');
  }
  const record = dn as Record<string, unknown>;
  for (const { field } of NAME_ATTRIBUTES) {
    const value = record[field];
    const name = `distinguished_name.${field}`;
    if (value === undefined || value === null) {
      if (options.requireAll || field === 'common_name') throw errors.invalidDistinguishedName(`${name} is required`);
      continue;
    }
    const rule = ATTRIBUTE_RULES[field];
    if (typeof value !== 'string' || [...value].length > rule.max || !rule.pattern.test(value)) {
      throw errors.invalidDistinguishedName(`${name} must be ${rule.description}`);
    }
  }
  // ISO 3166-1 alpha-2 codes are upper case (X.520, CA/B Forum BR §7.1.4.2; linters flag `C=de`): the record and the
  // certificate both carry the upper-case code.
  const country = record.country;
  return (typeof country === 'string' ? { ...record, country: country.toUpperCase() } : record) as DistinguishedName;
}
/** The most subtrees one name type of `name_constraints` may list. */
export const MAX_SUBTREES_PER_LIST = 100;

/** One subtree base, normalised; throws PCA.00020001 naming `field`. */
function normalizeSubtree(key: NameListKey, value: unknown, field: string): string {
  const normalized = typeof value === 'string' && value.length <= 320 ? SUBTREE_SYNTAX[key].normalize(value) : null;
  if (normalized === null) throw errors.invalidParameter(`${field} must be ${SUBTREE_SYNTAX[key].expected}`);
  return normalized;
}

function validateNameLists(input: unknown, field: string): NameLists {
  if (input === undefined || input === null) return emptyNameLists();
  if (typeof input !== 'object' || Array.isArray(input)) throw errors.invalidParameter(`${field} must be an object`);
  const unknown = Object.keys(input).find((key) => !NAME_LIST_KEYS.includes(key as NameListKey));
  if (unknown !== undefined) throw errors.invalidParameter(`${field}.${unknown} is not a name type (dns, ip, uri, email)`);
  const lists = emptyNameLists();
  for (const key of NAME_LIST_KEYS) {
    const values = (input as Record<string, unknown>)[key];
    if (values === undefined || values === null) continue;
    if (!Array.isArray(values) || values.length > MAX_SUBTREES_PER_LIST) {
      throw errors.invalidParameter(`${field}.${key} must be an array of at most ${MAX_SUBTREES_PER_LIST} entries`);
    }
    lists[key] = [...new Set(values.map((value, index) => normalizeSubtree(key, value, `${field}.${key}[${index}]`)))];
  }
  return lists;
}

/**
 * `name_constraints: {permitted?: {dns?, ip?, uri?, email?}, excluded?: {...}}`, normalised (DNS to A-labels in
 * lower case, IP ranges canonical). Null when absent or when it constrains nothing.
 */
export function validateNameConstraints(input: unknown, field = 'name_constraints'): NameConstraints | null {
  if (input === undefined || input === null) return null;
  if (typeof input !== 'object' || Array.isArray(input)) throw errors.invalidParameter(`${field} must be an object`);
  const unknown = Object.keys(input).find((key) => key !== 'permitted' && key !== 'excluded');
  if (unknown !== undefined) throw errors.invalidParameter(`${field}.${unknown} is unknown (permitted, excluded)`);
  const { permitted, excluded } = input as Record<string, unknown>;
  const constraints = {
    permitted: validateNameLists(permitted, `${field}.permitted`),
    excluded: validateNameLists(excluded, `${field}.excluded`),
  };
  return hasSubtrees(constraints.permitted) || hasSubtrees(constraints.excluded) ? constraints : null;
}
