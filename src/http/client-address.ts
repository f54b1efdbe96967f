/**
 * The address a client is counted by (the public rate limit, refused credentials). An IPv6 host is normally given a
 * whole /64 (RFC 6177) and may send from any address in it, so counting full addresses would give it 2^64 budgets,
 * and its crowd of counters would push other callers' out of the bounded caches: it is counted by its /64. An
 * IPv4-mapped address (::ffff:192.0.2.1, what a dual-stack socket reports for an IPv4 client) counts as its IPv4.
 */
import { isIPv6 } from 'node:net';

const GROUPS = 8;

export function clientAddressKey(ip: string): string {
  if (!isIPv6(ip)) return ip;
  const groups = ipv6Groups(ip);
  const mapped = groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff;
  if (mapped) return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.');
  return `${groups
    .slice(0, 4)
    .map((group) => group.toString(16))
    .join(':')}::/64`;
}

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
