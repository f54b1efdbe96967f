/** ACME identifiers and contacts (RFC 8555 §7.1.3, §7.3, §7.4) as pure functions: checked, normalised, matched. */
import type { ParsedCsr } from '../../x509/csr.ts';
import { formatIp, isIpv4Mapped, parseIp, type SubjectAltName } from '../../x509/extensions.ts';
import { normalizeDnsName } from '../../x509/name-constraints.ts';
import { problem } from './acme-problems.ts';

export const MAX_IDENTIFIERS = 100;
export const MAX_CONTACTS = 10;

export type Identifier = { type: 'dns' | 'ip'; value: string };

/** An account's `contact`: at most ten mailto: URLs of one address each. */
export function contacts(value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.length > MAX_CONTACTS)
    throw problem('malformed', `contact must be an array of at most ${MAX_CONTACTS} URLs`);
  return value.map((item) => {
    // A control character is in no address (and a NUL would reach Postgres, which refuses it in text).
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the controls are what is looked for
    if (typeof item === 'string' && /[\x00-\x1f\x7f]/.test(item))
      throw problem('invalidContact', `contact ${JSON.stringify(item)} holds a control character`);
    if (typeof item !== 'string' || !/^mailto:[^@\s,]+@[^@\s,]+$/.test(item) || item.length > 256) {
      throw problem('unsupportedContact', `contact ${String(item)} must be a mailto: URL with one address`);
    }
    return item;
  });
}

/** One order identifier: a host name (a wildcard's base included) in A-labels, lower case; an IP address, canonical. */
export function identifierOf(value: unknown, index: number): Identifier {
  const item = value as { type?: unknown; value?: unknown } | null;
  if (typeof item !== 'object' || item === null || typeof item.value !== 'string')
    throw problem('malformed', `identifiers[${index}] must be {type, value}`);
  if (item.type === 'ip') {
    const ip = parseIp(item.value);
    if (ip === null) throw problem('malformed', `identifiers[${index}] ${item.value} is not an IP address`);
    if (isIpv4Mapped(ip))
      throw problem('rejectedIdentifier', `identifiers[${index}] ${item.value} is IPv4-mapped: ask for the IPv4 address itself`);
    return { type: 'ip', value: formatIp(ip) };
  }
  if (item.type !== 'dns')
    throw problem('unsupportedIdentifier', `identifiers[${index}] type ${String(item.type)} is not supported (dns, ip)`);
  const wildcard = item.value.startsWith('*.');
  const name = normalizeDnsName(wildcard ? item.value.slice(2) : item.value);
  if (name === null || !name.includes('.') || name.includes('*'))
    throw problem('rejectedIdentifier', `identifiers[${index}] ${item.value} is not a host name`);
  return { type: 'dns', value: wildcard ? `*.${name}` : name };
}

/** A new order's `identifiers`: 1-100 of them, each checked and normalised, repeats dropped. */
export function orderIdentifiers(value: unknown): Identifier[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_IDENTIFIERS) {
    throw problem('malformed', `identifiers must be an array of 1-${MAX_IDENTIFIERS} identifiers`);
  }
  const seen = new Set<string>();
  return value.map(identifierOf).filter((identifier) => {
    const key = `${identifier.type}:${identifier.value}`;
    return !seen.has(key) && seen.add(key);
  });
}

/**
 * The CSR's names must be exactly the order's identifiers (RFC 8555 §7.4): each in a SAN or in the common name (a
 * CN-only CSR names one identifier), and the common name one of them.
 */
export function csrNamesMatch(identifiers: readonly Identifier[], csr: Pick<ParsedCsr, 'subjectAltNames' | 'subject'>): boolean {
  const wanted = new Set(identifiers.map((identifier) => `${identifier.type}:${identifier.value}`));
  const given = new Set<string>();
  for (const name of csr.subjectAltNames) {
    if (name.type === 'DNS') given.add(`dns:${normalizeDnsName(name.value) ?? name.value}`);
    else if (name.type === 'IP') given.add(`ip:${formatIp(parseIp(name.value) ?? new Uint8Array())}`);
    else return false;
  }
  const cn = csr.subject.common_name;
  if (cn) {
    const ip = parseIp(cn);
    given.add(ip ? `ip:${formatIp(ip)}` : `dns:${normalizeDnsName(cn) ?? cn.toLowerCase()}`);
  }
  return given.size === wanted.size && [...given].every((name) => wanted.has(name));
}

/** The order's identifiers as the certificate's SANs: what the account proved control of. */
export function subjectAltNamesOf(identifiers: readonly Identifier[]): SubjectAltName[] {
  return identifiers.map(({ type, value }) => ({ type: type === 'dns' ? 'DNS' : 'IP', value }));
}
