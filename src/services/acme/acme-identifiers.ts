/** ACME identifiers and contacts (RFC 8555 §7.1.3, §7.3, §7.4) as pure functions: checked, normalised, matched. */
import { certificateSubjectAltNames, parseCertificate } from '../../x509/certificate.ts';
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

/**
 * A host name as an identifier or a CSR's DNS name carries it (RFC 8555 §7.1.4, RFC 5280 §4.2.1.6): in A-labels, lower
 * case, or null when it is none. WHATWG's domainToASCII (normalizeDnsName) does more than IDNA: it reads a name ending
 * in a number as an IPv4 address (`0x7f.1` and `2130706433.` become `127.0.0.1`, `1.2.3` becomes `1.2.0.3`) and decodes
 * percent escapes (`ex%41mple` becomes `example`), so an identifier would name another host than the one asked for, or
 * an address as DNS (RFC 8738 §3: addresses are `ip` identifiers). An ASCII value must come out as it went in, lower
 * case; a value in U-labels is converted (its ASCII characters still only letters, digits, `-`, `_` and dots), and no
 * name of numeric labels only is a host name.
 */
export function hostName(value: string): string | null {
  if (!/^[A-Za-z0-9._\u0080-\uffff-]+$/.test(value)) return null;
  const name = normalizeDnsName(value);
  if (name === null) return null;
  if (!/[\u0080-\uffff]/.test(value) && name !== value.toLowerCase()) return null;
  return name.split('.').every((label) => /^\d+$/.test(label)) ? null : name;
}

/** A DNS name of a CSR or a certificate, a wildcard (`*.` and a host name) included; null when it is neither. */
export function dnsNameOf(value: string): string | null {
  const wildcard = value.startsWith('*.');
  const name = hostName(wildcard ? value.slice(2) : value);
  return name === null ? null : wildcard ? `*.${name}` : name;
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
  const host = wildcard ? item.value.slice(2) : item.value;
  const name = hostName(host);
  if (name === null && /^[\d.]+$/.test(normalizeDnsName(host) ?? ''))
    throw problem('rejectedIdentifier', `identifiers[${index}] ${item.value} is an IP address, not a host name: ask for an ip identifier`);
  if (name === null || !name.includes('.')) throw problem('rejectedIdentifier', `identifiers[${index}] ${item.value} is not a host name`);
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
    // A DNS name that is no host name (an address spelt as one, `0x7f.1`) matches no identifier.
    const dns = name.type === 'DNS' ? dnsNameOf(name.value) : null;
    if (dns !== null) given.add(`dns:${dns}`);
    else if (name.type === 'IP') given.add(`ip:${formatIp(parseIp(name.value) ?? new Uint8Array())}`);
    else return false;
  }
  const cn = csr.subject.common_name;
  if (cn) {
    const ip = parseIp(cn);
    const dns = ip ? null : dnsNameOf(cn);
    if (!ip && dns === null) return false;
    given.add(ip ? `ip:${formatIp(ip)}` : `dns:${dns}`);
  }
  return given.size === wanted.size && [...given].every((name) => wanted.has(name));
}

/** The order's identifiers as the certificate's SANs: what the account proved control of. */
export function subjectAltNamesOf(identifiers: readonly Identifier[]): SubjectAltName[] {
  return identifiers.map(({ type, value }) => ({ type: type === 'dns' ? 'DNS' : 'IP', value }));
}

/**
 * The identifiers a certificate names, as ACME identifiers (a wildcard as `*.` and its base): its DNS and IP subject
 * alternative names and its common name. Null when it names anything no identifier can be: another form of name
 * (email, URI, otherName), a DNS name or common name that is neither a host name nor an IP address.
 */
export function certificateIdentifiers(der: Uint8Array): Identifier[] | null {
  let names: SubjectAltName[];
  let commonName: string | undefined;
  try {
    names = certificateSubjectAltNames(der);
    commonName = parseCertificate(der).subject.common_name ?? undefined;
  } catch {
    return null;
  }
  const found = new Map<string, Identifier>();
  for (const name of [...names, ...(commonName ? [{ type: 'CN' as const, value: commonName }] : [])]) {
    const ip = name.type === 'IP' || name.type === 'CN' ? parseIp(name.value) : null;
    const dns = name.type === 'DNS' || (name.type === 'CN' && !ip) ? dnsNameOf(name.value) : null;
    const identifier: Identifier | null = ip ? { type: 'ip', value: formatIp(ip) } : dns ? { type: 'dns', value: dns } : null;
    if (identifier === null) return null;
    found.set(`${identifier.type}:${identifier.value}`, identifier);
  }
  return [...found.values()];
}
