/**
 * Policy patterns and RFC 5280 subtrees compiled into name sets, once per list object (a stored policy is parsed
 * once per distinct document, a chain's constraints once per CA certificate), and requested names likewise.
 * Entries stay aligned with their text so that a refusal can quote the rule that decided it.
 */
import { NAME_LIST_KEYS, type NameListKey, type NameLists } from '../../x509/name-constraints.ts';
import {
  dnsPatternSet,
  dnsSubtreeSet,
  emailPatternSet,
  emailSubtreeSet,
  ipRange,
  parseRequestedUri,
  requestedDnsSet,
  requestedEmail,
  requestedIp,
  uriHostSubtreeSet,
  uriPattern,
  uriPatternHosts,
  type RequestedUri,
  type TypedSet,
  type UriPattern,
} from './name-sets.ts';

export type NameType = 'DNS' | 'IP' | 'URI' | 'EMAIL';
export const TYPE_OF_KEY: Record<NameListKey, NameType> = { dns: 'DNS', ip: 'IP', uri: 'URI', email: 'EMAIL' };
export const KEY_OF_TYPE: Record<NameType, NameListKey> = { DNS: 'dns', IP: 'ip', URI: 'uri', EMAIL: 'email' };

export interface CompiledSubtrees {
  texts: NameLists;
  sets: Record<NameListKey, TypedSet[]>;
}

export interface CompiledPatterns {
  texts: NameLists;
  /** Null where a pattern no longer compiles (it then matches nothing). URI entries: the pattern's hosts. */
  sets: Record<NameListKey, (TypedSet | null)[]>;
  uri: (UriPattern | null)[];
  /** URI entries whose pattern allows every path of its hosts (what an RFC 5280 URI subtree can be judged by). */
  uriHostsForEveryPath: (TypedSet | null)[];
}

const typed = <K extends TypedSet['key']>(key: K, set: Extract<TypedSet, { key: K }>['set'] | null): TypedSet | null =>
  set === null ? null : ({ key, set } as TypedSet);

const subtreeCache = new WeakMap<NameLists, CompiledSubtrees>();
const patternCache = new WeakMap<NameLists, CompiledPatterns>();

export function subtreesOf(lists: NameLists): CompiledSubtrees {
  let compiled = subtreeCache.get(lists);
  if (!compiled) {
    compiled = {
      texts: lists,
      sets: {
        dns: lists.dns.map((base) => typed('dns', dnsSubtreeSet(base))!),
        ip: lists.ip.map((cidr) => typed('ip', ipRange(cidr))!),
        uri: lists.uri.map((base) => typed('uri', uriHostSubtreeSet(base))!),
        email: lists.email.map((base) => typed('email', emailSubtreeSet(base))!),
      },
    };
    subtreeCache.set(lists, compiled);
  }
  return compiled;
}

export function patternsOf(lists: NameLists): CompiledPatterns {
  let compiled = patternCache.get(lists);
  if (!compiled) {
    const uri = lists.uri.map(uriPattern);
    compiled = {
      texts: lists,
      sets: {
        dns: lists.dns.map((pattern) => typed('dns', dnsPatternSet(pattern))),
        ip: lists.ip.map((pattern) => typed('ip', ipRange(pattern))),
        uri: uri.map((pattern) => (pattern?.kind === 'hierarchical' ? typed('uri', pattern.host) : null)),
        email: lists.email.map((pattern) => typed('email', emailPatternSet(pattern))),
      },
      uri,
      uriHostsForEveryPath: uri.map((pattern) => (pattern ? typed('uri', uriPatternHosts(pattern)) : null)),
    };
    patternCache.set(lists, compiled);
  }
  return compiled;
}

/** A requested name compiled: its set (a URI's host, null when RFC 5280 cannot judge it) and, for URIs, the URI. */
export interface Candidate {
  key: NameListKey;
  set: TypedSet | null;
  uri?: RequestedUri;
}

/** Null when the value is not a name of its type. */
export function candidateOf(type: NameType, value: string): Candidate | null {
  switch (type) {
    case 'DNS': {
      const set = typed('dns', requestedDnsSet(value));
      return set && { key: 'dns', set };
    }
    case 'IP': {
      const set = typed('ip', requestedIp(value));
      return set && { key: 'ip', set };
    }
    case 'EMAIL': {
      const set = typed('email', requestedEmail(value));
      return set && { key: 'email', set };
    }
    case 'URI': {
      const uri = parseRequestedUri(value);
      if (uri === null) return null;
      // Userinfo makes the host ambiguous to relying parties (openssl reads 'user@host' as the host). An IP-literal
      // host cannot be judged either: RFC 5280 §4.2.1.10 says such a URI MUST be rejected wherever URI constraints
      // apply, and Go fails the chain ("URI with IP cannot be matched against constraints").
      const judged = uri.host !== null && uri.hostIsPlain && !uri.hostIsIp && uri.userinfo === null;
      return { key: 'uri', set: judged ? typed('uri', { kind: 'exact', name: uri.host! }) : null, uri };
    }
  }
}

/** Every entry of a compiled list with its text and index, in the document's order. */
export function entriesOf(compiled: CompiledSubtrees): { key: NameListKey; set: TypedSet; text: string; index: number }[] {
  return NAME_LIST_KEYS.flatMap((key) => compiled.sets[key].map((set, index) => ({ key, set, text: compiled.texts[key][index], index })));
}
