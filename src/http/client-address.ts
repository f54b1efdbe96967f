/**
 * The address a client is counted by (the public rate limit, refused credentials). An IPv6 host is normally given a
 * whole /64 (RFC 6177) and may send from any address in it, so counting full addresses would give it 2^64 budgets,
 * and its crowd of counters would push other callers' out of the bounded caches: it is counted by its /64. Where the
 * address is an IPv4 client's, that client is counted alone: an IPv4-mapped address (::ffff:192.0.2.1, what a
 * dual-stack socket reports for an IPv4 client) and a NAT64 one (64:ff9b::192.0.2.1, RFC 6052, the well-known prefix)
 * as that IPv4 address; a Teredo one (2001:0::/32, RFC 4380) as the client's IPv4 address it carries, obfuscated, in
 * its last 32 bits (its first 64 name a Teredo server shared by many clients, the rest a port and flags the client
 * picks).
 */
import { isIPv6 } from 'node:net';

const GROUPS = 8;

export function clientAddressKey(ip: string): string {
  if (!isIPv6(ip)) return ip;
  const groups = ipv6Groups(ip);
  if (startsWith(groups, [0, 0, 0, 0, 0, 0xffff]) || startsWith(groups, [0x64, 0xff9b, 0, 0, 0, 0])) return ipv4(groups[6]!, groups[7]!);
  if (startsWith(groups, [0x2001, 0])) return ipv4(groups[6]! ^ 0xffff, groups[7]! ^ 0xffff);
  return `${groups
    .slice(0, 4)
    .map((group) => group.toString(16))
    .join(':')}::/64`;
}

const ipv4 = (high: number, low: number) => [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.');

const startsWith = (groups: number[], prefix: number[]) => prefix.every((group, at) => groups[at] === group);

/** The eight 16-bit groups of a valid IPv6 address (`::` expanded, a trailing dotted IPv4 as two groups, no zone). */
function ipv6Groups(ip: string): number[] {
  const address = ip.split('%')[0]!;
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const parse = (part: string | undefined): number[] =>
    part
      ? part.split(':').flatMap((group) => {
          if (!group.includes('.')) return [Number.parseInt(group, 16)];
          const [a, b, c, d] = group.split('.').map(Number);
          return [(a! << 8) | b!, (c! << 8) | d!];
        })
      : [];
  const first = parse(head);
  const last = parse(tail);
  return [...first, ...new Array<number>(GROUPS - first.length - last.length).fill(0), ...last];
}
