/**
 * RFC 5280 §4.2.1.10 NameConstraints: the syntax and normalisation of subtree bases, and DER encoding and
 * decoding (the API's `name_constraints` field is read in src/services/request-fields.ts). Only the four name forms a CA of this service
 * can constrain are supported: dNSName, iPAddress, uniformResourceIdentifier (host based) and rfc822Name. Any other
 * form (directoryName, otherName, …) is refused rather than dropped, since dropping a subtree would widen a CA.
 */
import { domainToASCII } from 'node:url';
import { ascii, concat, contextConstructed, contextPrimitive, sequence, Tag } from './der-writer.ts';
import { contentOf, type DerElement, MalformedDer, readChildren, readSingle } from './der-reader.ts';
import { formatIp, isLocalPart, parseIp } from './extensions.ts';
import { X509Error } from './x509-errors.ts';

/** Names by type: DNS names or domains, IP addresses or CIDR ranges, URIs or hosts, mailboxes or domains. */
export interface NameLists {
  dns: string[];
  ip: string[];
  uri: string[];
  email: string[];
}
export type NameListKey = keyof NameLists;
export const NAME_LIST_KEYS: readonly NameListKey[] = ['dns', 'ip', 'uri', 'email'];

export interface NameConstraints {
  permitted: NameLists;
  excluded: NameLists;
}

/** A name constraint the service cannot honour, kept apart from malformed DER so an import reports it as such. */
const unsupported = (message: string): X509Error => new X509Error('unsupported-name-constraint', message);

export const emptyNameLists = (): NameLists => ({ dns: [], ip: [], uri: [], email: [] });

export const hasSubtrees = (lists: NameLists): boolean => NAME_LIST_KEYS.some((key) => lists[key].length > 0);

/** GeneralName tags ([n] IMPLICIT, primitive) of the supported forms, and the names of the rest for messages. */
const TAG_OF: Record<NameListKey, number> = { email: 1, dns: 2, uri: 6, ip: 7 };
const KEY_OF_TAG = new Map(Object.entries(TAG_OF).map(([key, tag]) => [0x80 | tag, key as NameListKey]));
const UNSUPPORTED_FORMS: Record<number, string> = {
  0xa0: 'otherName',
  0xa3: 'x400Address',
  0xa4: 'directoryName',
  0xa5: 'ediPartyName',
  0x88: 'registeredID',
};

// ---------------------------------------------------------------------------------------------------------------
// Syntax of one subtree base (shared by the API field and the CSR extension)

const LDH_LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** A DNS name to compare: IDNA (UTS #46) to A-labels, lower case; null when not a host name. */
export function normalizeDnsName(value: string): string | null {
  if (value.length === 0 || value.length > 253 || !/^[^\s*]+$/u.test(value)) return null;
  const ascii = domainToASCII(value);
  if (ascii === '' || ascii.length > 253) return null;
  return ascii.split('.').every((label) => LDH_LABEL.test(label)) ? ascii : null;
}

/**
 * How a subtree base is read. `request`: a base someone asks for (the API field, a CSR), held to what strict
 * relying parties accept. `signed`: a base of a certificate already signed (a stored or imported CA), read as the
 * service accepted it before those rules, so that such a CA keeps issuing, signing CRLs and answering OCSP.
 */
export type SubtreeReading = 'request' | 'signed';

const isDottedQuad = (name: string): boolean => /^\d+\.\d+\.\d+\.\d+$/.test(name);

/**
 * A subtree's host name. Asked for, a name of numeric labels is refused rather than rewritten: WHATWG's
 * domainToASCII reads a name ending in a number as an IPv4 address (`10.1` becomes `10.0.0.1`, `123` becomes
 * `0.0.0.123`), which would constrain another name than the one asked for, and a URI subtree that is an address
 * makes Go refuse the CA certificate ("cannot be IP address"; RFC 5280 URI subtrees are host names).
 */
function subtreeHost(value: string, reading: SubtreeReading): string | null {
  const name = normalizeDnsName(value);
  if (name === null || reading === 'signed') return name;
  return value.split('.').every((label) => /^\d+$/.test(label)) || isDottedQuad(name) ? null : name;
}

/** dNSName subtree: a domain (itself and below), `.domain` (strictly below) or `` (every name). */
function normalizeDnsSubtree(value: string, reading: SubtreeReading = 'request'): string | null {
  if (value === '') return '';
  const below = value.startsWith('.');
  const name = subtreeHost(below ? value.slice(1) : value, reading);
  return name === null ? null : below ? `.${name}` : name;
}

/** iPAddress subtree in CIDR form; the host bits must be zero. Returns the canonical text. */
export function parseCidr(value: string): { address: Uint8Array; prefix: number } | null {
  const slash = value.indexOf('/');
  const address = parseIp(slash < 0 ? value : value.slice(0, slash));
  if (address === null) return null;
  const bits = address.length * 8;
  const prefixText = slash < 0 ? String(bits) : value.slice(slash + 1);
  if (!/^(0|[1-9]\d{0,2})$/.test(prefixText) || Number(prefixText) > bits) return null;
  const prefix = Number(prefixText);
  for (let bit = prefix; bit < bits; bit++) if (address[bit >> 3] & (0x80 >> (bit & 7))) return null;
  return { address, prefix };
}

const cidrText = ({ address, prefix }: { address: Uint8Array; prefix: number }): string => `${formatIp(address)}/${prefix}`;

/** uniformResourceIdentifier subtree: a host (exactly) or `.domain` (hosts strictly below); never a URI. */
function normalizeUriSubtree(value: string, reading: SubtreeReading = 'request'): string | null {
  if (value === '' || value.includes('/') || value.includes(':') || value.includes('@')) return null;
  return normalizeDnsSubtree(value, reading);
}

/**
 * rfc822Name subtree: a mailbox, a host (every mailbox at it) or `.domain` (mailboxes strictly below). Asked for,
 * a mailbox's local part is an RFC 5321 dot-atom: Go refuses the CA certificate over one it cannot parse.
 */
function normalizeEmailSubtree(value: string, reading: SubtreeReading = 'request'): string | null {
  const at = value.lastIndexOf('@');
  if (at < 0) return value === '' ? null : normalizeDnsSubtree(value, reading);
  const local = value.slice(0, at);
  const host = subtreeHost(value.slice(at + 1), reading);
  if (host === null || local.length === 0 || local.length > 64 || !/^[\x21-\x7e]+$/.test(local) || local.includes('@')) return null;
  return reading === 'signed' || isLocalPart(local) ? `${local}@${host}` : null;
}

export const SUBTREE_SYNTAX: Record<
  NameListKey,
  { normalize: (value: string, reading?: SubtreeReading) => string | null; expected: string }
> = {
  dns: { normalize: normalizeDnsSubtree, expected: 'a domain such as example.com or .example.com' },
  ip: {
    normalize: (value) => (parseCidr(value) ? cidrText(parseCidr(value)!) : null),
    expected: 'a network in CIDR form such as 10.0.0.0/8 (host bits zero)',
  },
  uri: {
    normalize: normalizeUriSubtree,
    expected: 'a host name such as cluster.local or .example.com, not a URI or an IP address (RFC 5280)',
  },
  email: { normalize: normalizeEmailSubtree, expected: 'a mailbox (a dot-atom local part), a host or .domain' },
};

// ---------------------------------------------------------------------------------------------------------------
// DER

function subtreesValue(lists: NameLists): Uint8Array[] {
  return NAME_LIST_KEYS.flatMap((key) =>
    lists[key].map((value) => {
      if (key !== 'ip') return sequence(contextPrimitive(TAG_OF[key], ascii(value)));
      const { address, prefix } = parseCidr(value)!;
      const mask = new Uint8Array(address.length);
      for (let bit = 0; bit < prefix; bit++) mask[bit >> 3] |= 0x80 >> (bit & 7);
      const both = new Uint8Array(address.length * 2);
      both.set(address);
      both.set(mask, address.length);
      return sequence(contextPrimitive(TAG_OF.ip, both));
    }),
  );
}

/** The extension value: permittedSubtrees [0] and excludedSubtrees [1], each omitted when empty. */
export function nameConstraintsValue(constraints: NameConstraints): Uint8Array {
  const parts: Uint8Array[] = [];
  if (hasSubtrees(constraints.permitted)) parts.push(contextConstructed(0, concat(subtreesValue(constraints.permitted))));
  if (hasSubtrees(constraints.excluded)) parts.push(contextConstructed(1, concat(subtreesValue(constraints.excluded))));
  if (parts.length === 0) throw new RangeError('name constraints must hold at least one subtree');
  return sequence(...parts);
}

/** An IP subtree from its 8- or 32-octet address-and-mask form; the mask must be a prefix. */
function cidrOfAddressAndMask(content: Uint8Array): string {
  if (content.length !== 8 && content.length !== 32) throw new MalformedDer('iPAddress subtree must be 8 or 32 octets');
  const size = content.length / 2;
  const address = content.slice(0, size);
  const mask = content.subarray(size);
  let prefix = 0;
  while (prefix < size * 8 && mask[prefix >> 3] & (0x80 >> (prefix & 7))) prefix++;
  for (let bit = prefix; bit < size * 8; bit++) {
    if (mask[bit >> 3] & (0x80 >> (bit & 7))) throw unsupported('an iPAddress name constraint whose mask is not a prefix is not supported');
  }
  return `${formatIp(address)}/${prefix}`;
}

function decodeSubtrees(el: DerElement, which: 'permitted' | 'excluded', reading: SubtreeReading): NameLists {
  const lists = emptyNameLists();
  const subtrees = readChildren(el);
  if (subtrees.length === 0) throw new MalformedDer('empty GeneralSubtrees');
  for (const subtree of subtrees) {
    const [base, ...distances] = readChildren(subtree, Tag.SEQUENCE);
    if (base === undefined) throw new MalformedDer('GeneralSubtree without a base');
    // RFC 5280: minimum MUST be zero (so DER omits it) and maximum MUST be absent.
    if (distances.length > 0) throw unsupported('name constraints with minimum or maximum base distances are not supported');
    const key = KEY_OF_TAG.get(base.tag);
    if (key === undefined) {
      const form = UNSUPPORTED_FORMS[base.tag] ?? `GeneralName tag 0x${base.tag.toString(16)}`;
      throw unsupported(`${which} ${form} name constraints are not supported (dns, ip, uri and email only)`);
    }
    const content = contentOf(base);
    let value: string;
    if (key === 'ip') {
      value = cidrOfAddressAndMask(content);
    } else {
      const text = Buffer.from(content).toString('latin1');
      if (!/^[\x20-\x7e]*$/.test(text)) throw new MalformedDer('bad IA5String in a name constraint');
      value = text;
    }
    const normalized = SUBTREE_SYNTAX[key].normalize(value, reading);
    if (normalized === null) {
      throw unsupported(`${which} ${key.toUpperCase()} name constraint '${value}' must be ${SUBTREE_SYNTAX[key].expected}`);
    }
    if (!lists[key].includes(normalized)) lists[key].push(normalized);
  }
  return lists;
}

/**
 * Decodes the extension value (inside a `parsingUntrusted` step); unsupported forms are refused, never dropped.
 * A CSR's are read as a request; a certificate's as `signed` (see SubtreeReading).
 */
export function decodeNameConstraints(value: Uint8Array, reading: SubtreeReading = 'request'): NameConstraints {
  const parts = readChildren(readSingle(value), Tag.SEQUENCE);
  const constraints: NameConstraints = { permitted: emptyNameLists(), excluded: emptyNameLists() };
  let index = 0;
  if (parts[index]?.tag === 0xa0) constraints.permitted = decodeSubtrees(parts[index++], 'permitted', reading);
  if (parts[index]?.tag === 0xa1) constraints.excluded = decodeSubtrees(parts[index++], 'excluded', reading);
  if (index !== parts.length || index === 0) throw new MalformedDer('bad NameConstraints');
  return constraints;
}
