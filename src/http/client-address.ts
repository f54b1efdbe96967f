/**
 * The address a client is counted by (the public rate limit, refused credentials). An IPv6 host is normally given a
 * whole /64 (RFC 6177) and may send from any address in it, so counting full addresses would give it 2^64 budgets,
 * and its crowd of counters would push other callers' out of the bounded caches: it is counted by its /64. Where the
 * address is an IPv4 client's, that client is counted alone:
 * - an IPv4-mapped address (::ffff:192.0.2.1, what a dual-stack socket reports for an IPv4 client) and a NAT64 one
 *   with the well-known prefix (64:ff9b::192.0.2.1, RFC 6052) as that IPv4 address;
 * - a NAT64 one with the local-use prefix (64:ff9b:1::/48, RFC 8215) by its full address: the translator's operator
 *   picks a prefix of 48 to 96 bits from it, the IPv4 bits sit where that length puts them and the bits after them are
 *   zero, so the address is one IPv4 client's; nothing outside the operator's network can send from it;
 * - a Teredo one (2001:0::/32, RFC 4380) as the client's IPv4 address it carries, obfuscated, in its last 32 bits (its
 *   first 64 name a Teredo server shared by many clients, the rest a port and flags the client picks).
 */
import { isIPv6 } from 'node:net';
import { Address6 } from 'ip-address';

const NAT64_LOCAL_USE = new Address6('64:ff9b:1::/48');

export function clientAddressKey(ip: string): string {
  if (!isIPv6(ip)) return ip;
  const address = new Address6(ip);
  const ipv4 = address.embeddedIPv4();
  if (ipv4) return ipv4.correctForm();
  if (address.isInSubnet(NAT64_LOCAL_USE)) return address.correctForm();
  if (address.isTeredo()) return address.inspectTeredo().client4;
  return `${new Address6(`${address.correctForm()}/64`).startAddress().correctForm()}/64`;
}
