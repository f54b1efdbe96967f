/**
 * The matcher: every name rule (policy patterns, RFC 5280 subtrees, requested names) is turned into a set of names,
 * and the evaluator only asks whether one set contains another (allow lists, permitted subtrees) or meets it (deny
 * lists, excluded subtrees). Names are compared in one normal form: DNS names in IDNA A-labels, lower case.
 *
 * DNS wildcard rule: a pattern `*.example.com` matches one or more labels left of `example.com`, never
 * `example.com` itself; `*` appears nowhere else. A requested wildcard name `*.example.com` stands for every name
 * exactly one label below `example.com` (what a relying party would accept it for).
 */
import { formatIp, parseIp } from '../../x509/extensions.ts';
import { normalizeDnsName, parseCidr, type NameListKey } from '../../x509/name-constraints.ts';

// ---------------------------------------------------------------------------------------------------------------
// DNS

export type DnsSet =
  | { kind: 'all' }
  | { kind: 'exact'; name: string }
  /** One or more labels left of `domain`. */
  | { kind: 'below'; domain: string }
  /** `domain` itself, or below it. */
  | { kind: 'atOrBelow'; domain: string }
  /** Exactly one label left of `domain` (a requested wildcard name). */
  | { kind: 'oneBelow'; domain: string };

/** `name` ends with `.domain` (checked without building that string: this runs per pattern per name). */
const isBelow = (name: string, domain: string): boolean =>
  name.length > domain.length + 1 && name.charCodeAt(name.length - domain.length - 1) === 0x2e && name.endsWith(domain);
const isAtOrBelow = (name: string, domain: string): boolean => name === domain || isBelow(name, domain);
const isOneBelow = (name: string, domain: string): boolean =>
  isBelow(name, domain) && !name.slice(0, name.length - domain.length - 1).includes('.');

export function dnsIncludes(set: DnsSet, name: string): boolean {
  switch (set.kind) {
    case 'all':
      return true;
    case 'exact':
      return set.name === name;
    case 'below':
      return isBelow(name, set.domain);
    case 'atOrBelow':
      return isAtOrBelow(name, set.domain);
    case 'oneBelow':
      return isOneBelow(name, set.domain);
  }
}

/** Whether every name of `inner` is in `outer`. */
export function dnsContains(outer: DnsSet, inner: DnsSet): boolean {
  if (outer.kind === 'all') return true;
  switch (inner.kind) {
    case 'all':
      return false;
    case 'exact':
      return dnsIncludes(outer, inner.name);
    case 'below':
      return (outer.kind === 'below' || outer.kind === 'atOrBelow') && isAtOrBelow(inner.domain, outer.domain);
    case 'atOrBelow':
      return (
        (outer.kind === 'below' && isBelow(inner.domain, outer.domain)) ||
        (outer.kind === 'atOrBelow' && isAtOrBelow(inner.domain, outer.domain))
      );
    case 'oneBelow':
      return (
        ((outer.kind === 'below' || outer.kind === 'atOrBelow') && isAtOrBelow(inner.domain, outer.domain)) ||
        (outer.kind === 'oneBelow' && inner.domain === outer.domain)
      );
  }
}

/** Whether some name is in both sets (every set here is non-empty). */
export function dnsOverlaps(a: DnsSet, b: DnsSet): boolean {
  if (a.kind === 'all' || b.kind === 'all') return true;
  if (a.kind === 'exact') return dnsIncludes(b, a.name);
  if (b.kind === 'exact') return dnsIncludes(a, b.name);
  if (a.kind === 'oneBelow' || b.kind === 'oneBelow') {
    const [one, other] = a.kind === 'oneBelow' ? [a, b] : [b as typeof a, a];
    if (other.kind === 'oneBelow') return one.domain === other.domain;
    if (other.kind === 'below') return isAtOrBelow(one.domain, other.domain);
    return isAtOrBelow(one.domain, other.domain) || isOneBelow(other.domain, one.domain);
  }
  // Two trees meet exactly when one root lies at or below the other.
  return isAtOrBelow(a.domain, b.domain) || isAtOrBelow(b.domain, a.domain);
}

/** A policy pattern: `*.domain` or an exact name. Null when malformed. */
export function dnsPatternSet(pattern: string): DnsSet | null {
  if (pattern.startsWith('*.')) {
    const domain = normalizeDnsName(pattern.slice(2));
    return domain === null ? null : { kind: 'below', domain };
  }
  const name = normalizeDnsName(pattern);
  return name === null ? null : { kind: 'exact', name };
}

/** A requested name: exact, or a wildcard name standing for one label. Null when malformed. */
export function requestedDnsSet(value: string): DnsSet | null {
  const set = dnsPatternSet(value);
  return set?.kind === 'below' ? { kind: 'oneBelow', domain: set.domain } : set;
}

/** An RFC 5280 dNSName subtree (already normalised): `` all, `.domain` strictly below, `domain` at or below. */
export function dnsSubtreeSet(base: string): DnsSet {
  if (base === '') return { kind: 'all' };
  return base.startsWith('.') ? { kind: 'below', domain: base.slice(1) } : { kind: 'atOrBelow', domain: base };
}

/** An RFC 5280 URI subtree: `.domain` strictly below, otherwise exactly that host. */
export function uriHostSubtreeSet(base: string): DnsSet {
  return base.startsWith('.') ? { kind: 'below', domain: base.slice(1) } : { kind: 'exact', name: base };
}

// ---------------------------------------------------------------------------------------------------------------
// IP

export interface IpRange {
  address: Uint8Array;
  prefix: number;
}

function samePrefix(a: Uint8Array, b: Uint8Array, bits: number): boolean {
  for (let bit = 0; bit < bits; bit++) {
    const mask = 0x80 >> (bit & 7);
    if ((a[bit >> 3] & mask) !== (b[bit >> 3] & mask)) return false;
  }
  return true;
}

/** IPv4 and IPv6 ranges never contain or meet each other. */
export const ipContains = (outer: IpRange, inner: IpRange): boolean =>
  outer.address.length === inner.address.length && inner.prefix >= outer.prefix && samePrefix(outer.address, inner.address, outer.prefix);

export const ipOverlaps = (a: IpRange, b: IpRange): boolean =>
  a.address.length === b.address.length && samePrefix(a.address, b.address, Math.min(a.prefix, b.prefix));

export const ipRange = (cidr: string): IpRange | null => parseCidr(cidr);

export function requestedIp(value: string): IpRange | null {
  const address = parseIp(value);
  return address === null ? null : { address, prefix: address.length * 8 };
}

// ---------------------------------------------------------------------------------------------------------------
// URI

export interface RequestedUri {
  text: string;
  scheme: string;
  /** The authority's host (DNS names normalised), or null for a URI without `//authority`. */
  host: string | null;
  /** False when the host is neither a host name nor an IP literal (percent-encoded, empty, …). */
  hostIsPlain: boolean;
  /** True when the host is an IP literal (`10.1.2.3`, `[2001:db8::1]`). */
  hostIsIp: boolean;
  port: string | null;
  /** The text before the authority's last `@` (possibly empty), or null without one. */
  userinfo: string | null;
  /** Path, query and fragment. */
  rest: string;
  /** `rest` in RFC 3986 §6.2.2's normal form: what deny rules compare, and allow rules besides `rest`. */
  normalRest: string;
}

const URI_SHAPE = /^([A-Za-z][A-Za-z0-9+.-]*):(.*)$/s;

const UNRESERVED = /^[A-Za-z0-9._~-]$/;

/** RFC 3986 §5.2.4 remove_dot_segments. */
function removeDotSegments(path: string): string {
  let input = path;
  let output = '';
  const dropLastSegment = () => {
    output = output.slice(0, Math.max(0, output.lastIndexOf('/')));
  };
  while (input !== '') {
    if (input.startsWith('../')) input = input.slice(3);
    else if (input.startsWith('./') || input.startsWith('/./')) input = input.slice(2);
    else if (input === '/.') input = '/';
    else if (input.startsWith('/../') || input === '/..') {
      input = `/${input.slice(4)}`;
      dropLastSegment();
    } else if (input === '.' || input === '..') input = '';
    else {
      const end = input.indexOf('/', 1);
      output += end < 0 ? input : input.slice(0, end);
      input = end < 0 ? '' : input.slice(end);
    }
  }
  return output;
}

/**
 * RFC 3986 §6.2.2: percent-encodings in upper case, those of unreserved characters decoded (reserved ones such as
 * `%2F` stay: they are not the delimiter), then, in a hierarchical path, dot segments removed. Query and fragment
 * take the first two steps only. Decoding never yields `/`, `?` or `#`, so the parts split the same before and after.
 */
function normalizeRest(rest: string, hierarchical: boolean): string {
  const decoded = rest.replace(/%[0-9A-Fa-f]{2}/g, (encoded) => {
    const char = String.fromCharCode(Number.parseInt(encoded.slice(1), 16));
    return UNRESERVED.test(char) ? char : encoded.toUpperCase();
  });
  if (!hierarchical) return decoded;
  const tail = decoded.search(/[?#]/);
  return tail < 0 ? removeDotSegments(decoded) : removeDotSegments(decoded.slice(0, tail)) + decoded.slice(tail);
}

export function parseRequestedUri(value: string): RequestedUri | null {
  const match = URI_SHAPE.exec(value);
  if (!match) return null;
  const scheme = match[1].toLowerCase();
  const afterScheme = match[2];
  if (!afterScheme.startsWith('//'))
    return {
      text: `${scheme}:${afterScheme}`,
      scheme,
      host: null,
      hostIsPlain: false,
      hostIsIp: false,
      port: null,
      userinfo: null,
      rest: afterScheme,
      // Dot segments stay: a URN gives them no meaning, and a deny rule with an authority takes such a URI anyway.
      normalRest: normalizeRest(afterScheme, false),
    };
  const authorityEnd = afterScheme.slice(2).search(/[/?#]/);
  const authority = authorityEnd < 0 ? afterScheme.slice(2) : afterScheme.slice(2, 2 + authorityEnd);
  const rest = authorityEnd < 0 ? '' : afterScheme.slice(2 + authorityEnd);
  const at = authority.lastIndexOf('@');
  const hostPort = authority.slice(at + 1);
  const portMatch = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(hostPort);
  const rawHost = portMatch ? portMatch[1] : hostPort;
  const port = portMatch?.[2] || null;
  const dnsHost = normalizeDnsName(rawHost);
  const ipHost = rawHost.startsWith('[') ? parseIp(rawHost.slice(1, -1)) : parseIp(rawHost);
  return {
    text: `${scheme}:${afterScheme}`,
    scheme,
    host: dnsHost ?? rawHost.toLowerCase(),
    hostIsPlain: portMatch !== null && (dnsHost !== null || ipHost !== null),
    hostIsIp: portMatch !== null && ipHost !== null,
    port,
    userinfo: at >= 0 ? authority.slice(0, at) : null,
    rest,
    normalRest: normalizeRest(rest, true),
  };
}

/**
 * A policy URI pattern: `scheme://host[:port][/path]` where host follows the DNS pattern rule and a path ending in
 * `/*` matches any non-empty rest below it (otherwise the path, query and fragment must be equal); or a URI without
 * an authority (`urn:…`), matched exactly. No port in the pattern: any port.
 */
export type UriPattern =
  | { kind: 'opaque'; text: string; normalText: string }
  | { kind: 'hierarchical'; scheme: string; host: DnsSet; port: string | null; path: PathRule; normalPath: PathRule };

/** The rest as written, and in normal form (`RequestedUri.normalRest`). */
type PathRule = { exact: string } | { prefix: string };

export function uriPattern(pattern: string): UriPattern | null {
  const parsed = parseRequestedUri(pattern);
  if (parsed === null || parsed.userinfo !== null) return null;
  if (parsed.host === null)
    return parsed.rest.includes('*') || parsed.rest === ''
      ? null
      : { kind: 'opaque', text: parsed.text, normalText: `${parsed.scheme}:${parsed.normalRest}` };
  const rawHost = /^\/\/([^/?#:]*)/.exec(pattern.slice(pattern.indexOf(':') + 1))?.[1] ?? '';
  const host = dnsPatternSet(rawHost);
  if (host === null) return null;
  const star = parsed.rest.indexOf('*');
  if (star >= 0 && !(star === parsed.rest.length - 1 && parsed.rest.endsWith('/*'))) return null;
  // The normal form still ends in `/*`: `*` is no dot segment.
  const rule = (rest: string): PathRule => (star >= 0 ? { prefix: rest.slice(0, -1) } : { exact: rest });
  return {
    kind: 'hierarchical',
    scheme: parsed.scheme,
    host,
    port: parsed.port,
    path: rule(parsed.rest),
    normalPath: rule(parsed.normalRest),
  };
}

const within = (rule: PathRule, rest: string): boolean =>
  'exact' in rule ? rest === rule.exact : rest.startsWith(rule.prefix) && rest.length > rule.prefix.length;

/** Membership of a requested URI in a pattern (userinfo is not considered here; the allow check refuses it). */
export function uriMatches(pattern: UriPattern, uri: RequestedUri): boolean {
  if (pattern.kind === 'opaque') return uri.host === null && uri.text === pattern.text;
  if (uri.host === null || !uri.hostIsPlain || uri.scheme !== pattern.scheme || !dnsIncludes(pattern.host, uri.host)) return false;
  if (pattern.port !== null && pattern.port !== uri.port) return false;
  // As written, so that an allow rule never grows; and in normal form too, so that `/public/../admin` (which
  // resolves to `/admin`) does not pass for a name under `/public/*`.
  return within(pattern.path, uri.rest) && within(pattern.normalPath, uri.normalRest);
}

/** Ports a URI of these schemes means when it names none (RFC 9110 §4.2). */
const DEFAULT_PORTS: Record<string, number> = { http: 80, https: 443 };

const effectivePort = (scheme: string, port: string | null): number | null =>
  port === null ? (DEFAULT_PORTS[scheme] ?? null) : Number(port);

/** The path alone: query and fragment dropped, an empty path read as `/`. */
const pathOf = (rest: string): string => rest.replace(/[?#].*$/s, '') || '/';

/** Whether a deny rule with an authority can compare the URI's host. */
export const uriHostComparable = (uri: RequestedUri): boolean => uri.host !== null && uri.hostIsPlain;

/**
 * Membership for a deny rule, which spellings of the same resource must not escape (an allow rule keeps
 * `uriMatches`, so it never grows): both sides compare in RFC 3986 §6.2.2's normal form, ports by value with the
 * scheme's default filled in, query and fragment are ignored, and a path pattern `/prefix/*` also takes `/prefix`
 * itself (so `/*` takes an empty path). A URI whose host cannot be compared meets every rule of its scheme, whatever
 * the rule's host, port and path: WHATWG's parser (browsers, Node) reads `https:///admin/x` as host `admin` and
 * `https:/h.example/admin` as host `h.example`, so no split of such a URI into host and path can be trusted.
 */
export function uriDenies(pattern: UriPattern, uri: RequestedUri): boolean {
  if (pattern.kind === 'opaque') return uri.host === null && `${uri.scheme}:${uri.normalRest}` === pattern.normalText;
  if (uri.scheme !== pattern.scheme) return false;
  if (!uriHostComparable(uri)) return true;
  if (!dnsIncludes(pattern.host, uri.host!)) return false;
  if (pattern.port !== null && effectivePort(pattern.scheme, pattern.port) !== effectivePort(uri.scheme, uri.port)) return false;
  const path = pathOf(uri.normalRest);
  return 'exact' in pattern.normalPath ? path === pathOf(pattern.normalPath.exact) : `${path}/`.startsWith(pattern.normalPath.prefix);
}

/** The hosts a pattern allows with every path (what an RFC 5280 URI subtree can be compared with), or null. */
export function uriPatternHosts(pattern: UriPattern): DnsSet | null {
  if (pattern.kind === 'opaque' || pattern.port !== null || !('prefix' in pattern.path) || pattern.path.prefix !== '/') return null;
  return pattern.host;
}

// ---------------------------------------------------------------------------------------------------------------
// Email

export interface EmailSet {
  /** Null: any mailbox. Local parts compare exactly (RFC 5280 §4.2.1.10). */
  local: string | null;
  domain: DnsSet;
}

export function requestedEmail(value: string): EmailSet | null {
  const at = value.lastIndexOf('@');
  const domain = at > 0 ? normalizeDnsName(value.slice(at + 1)) : null;
  return domain === null ? null : { local: value.slice(0, at), domain: { kind: 'exact', name: domain } };
}

/** A policy pattern: `mailbox@host`, `*@host` or `*@*.domain`. */
export function emailPatternSet(pattern: string): EmailSet | null {
  const at = pattern.lastIndexOf('@');
  if (at <= 0) return null;
  const local = pattern.slice(0, at);
  const domain = dnsPatternSet(pattern.slice(at + 1));
  if (domain === null || (local !== '*' && (local.includes('*') || domain.kind !== 'exact'))) return null;
  return { local: local === '*' ? null : local, domain };
}

/** An RFC 5280 rfc822Name subtree (already normalised): a mailbox, a host, or `.domain`. */
export function emailSubtreeSet(base: string): EmailSet {
  const at = base.lastIndexOf('@');
  if (at >= 0) return { local: base.slice(0, at), domain: { kind: 'exact', name: base.slice(at + 1) } };
  return { local: null, domain: base.startsWith('.') ? { kind: 'below', domain: base.slice(1) } : { kind: 'exact', name: base } };
}

export const emailContains = (outer: EmailSet, inner: EmailSet): boolean =>
  (outer.local === null || outer.local === inner.local) && dnsContains(outer.domain, inner.domain);

export const emailOverlaps = (a: EmailSet, b: EmailSet): boolean =>
  (a.local === null || b.local === null || a.local === b.local) && dnsOverlaps(a.domain, b.domain);

/** Membership for a deny rule: local parts compare case-insensitively, so that `Admin@` escapes no rule for `admin@`. */
export const emailDenies = (pattern: EmailSet, mailbox: EmailSet): boolean =>
  (pattern.local === null || pattern.local.toLowerCase() === mailbox.local?.toLowerCase()) && dnsOverlaps(pattern.domain, mailbox.domain);

// ---------------------------------------------------------------------------------------------------------------
// One shape for all four types

/** A set of names of one type as rules compare them (a URI rule of RFC 5280 constrains the host only). */
export type TypedSet =
  | { key: 'dns'; set: DnsSet }
  | { key: 'uri'; set: DnsSet }
  | { key: 'ip'; set: IpRange }
  | { key: 'email'; set: EmailSet };

interface Relations<T> {
  contains(outer: T, inner: T): boolean;
  overlaps(a: T, b: T): boolean;
}
const dnsRelations: Relations<DnsSet> = { contains: dnsContains, overlaps: dnsOverlaps };
const RELATIONS: Record<NameListKey, Relations<never>> = {
  dns: dnsRelations,
  uri: dnsRelations,
  ip: { contains: ipContains, overlaps: ipOverlaps },
  email: { contains: emailContains, overlaps: emailOverlaps },
};

/** Whether every name of `inner` is in `outer` (sets of different types never relate). */
export const setContains = (outer: TypedSet, inner: TypedSet): boolean =>
  outer.key === inner.key && RELATIONS[outer.key].contains(outer.set as never, inner.set as never);

/** Whether some name is in both sets. */
export const setOverlaps = (a: TypedSet, b: TypedSet): boolean =>
  a.key === b.key && RELATIONS[a.key].overlaps(a.set as never, b.set as never);

// ---------------------------------------------------------------------------------------------------------------
// Pattern syntax of the policy document

/** Normalises one policy pattern of a type, or returns null when it is malformed. */
export function normalizePattern(key: NameListKey, pattern: string): string | null {
  switch (key) {
    case 'dns': {
      const set = dnsPatternSet(pattern);
      return set === null ? null : set.kind === 'below' ? `*.${set.domain}` : (set as { name: string }).name;
    }
    case 'ip': {
      const range = parseCidr(pattern);
      return range === null ? null : `${formatIp(range.address)}/${range.prefix}`;
    }
    case 'uri': {
      const parsed = uriPattern(pattern);
      if (parsed === null) return null;
      if (parsed.kind === 'opaque') return parsed.text;
      const host = parsed.host.kind === 'below' ? `*.${parsed.host.domain}` : (parsed.host as { name: string }).name;
      const rest = 'exact' in parsed.path ? parsed.path.exact : `${parsed.path.prefix}*`;
      return `${parsed.scheme}://${host}${parsed.port === null ? '' : `:${parsed.port}`}${rest}`;
    }
    case 'email': {
      const set = emailPatternSet(pattern);
      if (set === null) return null;
      const domain = set.domain.kind === 'below' ? `*.${set.domain.domain}` : (set.domain as { name: string }).name;
      return `${set.local ?? '*'}@${domain}`;
    }
  }
}
