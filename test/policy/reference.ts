/**
 * Reference implementations of the matching rules, written from their text and independently of
 * src/services/policy/: string and regex matching for policy patterns, openssl's name-constraint algorithms
 * (crypto/x509/v3_ncons.c: nc_dns, nc_uri, nc_email) and mask arithmetic for IPs.
 */
/** The reference's own IDNA table: the one non-ASCII label the generators use. */
const A_LABELS: Record<string, string> = { bücher: 'xn--bcher-kva', BÜCHER: 'xn--bcher-kva' };
export const refLower = (name: string): string =>
  name
    .split('.')
    .map((label) => A_LABELS[label] ?? label.toLowerCase())
    .join('.');
const escapeRegex = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Policy DNS pattern: `*.d` is one or more labels before d; anything else is the name itself. */
export function refDnsPattern(pattern: string, name: string): boolean {
  const p = refLower(pattern);
  const n = refLower(name);
  if (p.startsWith('*.')) return new RegExp(`^([^.]+\\.)+${escapeRegex(p.slice(2))}$`).test(n);
  return n === p;
}

/** openssl nc_dns: a leading '.' matches strictly below; otherwise the name itself or a '.'-separated suffix. */
export function opensslNcDns(dns: string, base: string): boolean {
  const d = refLower(dns);
  const b = refLower(base);
  if (b.length === 0) return true;
  if (d.length < b.length) return false;
  if (d.length > b.length && b[0] !== '.' && d[d.length - b.length - 1] !== '.') return false;
  return d.slice(d.length - b.length) === b;
}

/** openssl nc_uri: the host between '://' and ':' or '/'; '.base' is a suffix match, else an exact one. */
export function opensslNcUri(uri: string, base: string): boolean {
  const start = uri.indexOf('://');
  if (start < 0) return false;
  const rest = uri.slice(start + 3);
  const end = rest.search(/[:/]/);
  const host = (end < 0 ? rest : rest.slice(0, end)).toLowerCase();
  if (host.length === 0) return false;
  if (base.startsWith('.')) return host.length > base.length && host.endsWith(base.toLowerCase());
  return host === base.toLowerCase();
}

/** openssl nc_email: 'local@host' exact mailbox, '.domain' below, 'host' every mailbox at host. */
export function opensslNcEmail(email: string, base: string): boolean {
  const at = email.lastIndexOf('@');
  const local = email.slice(0, at);
  const host = email.slice(at + 1).toLowerCase();
  const baseAt = base.lastIndexOf('@');
  if (baseAt < 0 && base.startsWith('.')) return host.length > base.length && host.endsWith(base.toLowerCase());
  if (baseAt >= 0) return local === base.slice(0, baseAt) && host === base.slice(baseAt + 1).toLowerCase();
  return host === base.toLowerCase();
}

export function ipv4(value: string): number {
  return value.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
}
export function refIpInCidr(address: string, cidr: string): boolean {
  const [network, bits] = cidr.split('/');
  if (address.includes(':') !== network.includes(':')) return false;
  if (address.includes(':')) {
    const big = (v: string) => BigInt(`0x${expand6(v)}`);
    const shift = BigInt(128 - Number(bits));
    return big(address) >> shift === big(network) >> shift;
  }
  const shift = 32 - Number(bits);
  return Math.floor(ipv4(address) / 2 ** shift) === Math.floor(ipv4(network) / 2 ** shift);
}
export function expand6(value: string): string {
  const [head, tail] = value.split('::');
  const h = head ? head.split(':') : [];
  const tl = tail !== undefined ? (tail ? tail.split(':') : []) : [];
  const groups = tail !== undefined ? [...h, ...Array(8 - h.length - tl.length).fill('0'), ...tl] : h;
  return groups.map((group) => group.padStart(4, '0')).join('');
}
