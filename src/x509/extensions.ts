/** X.509 v3 extensions: the vocabularies (§5.5, §5.6), the syntax of their values, DER encoding and decoding. */
import {
  ascii,
  bitString,
  contextConstructed,
  contextPrimitive,
  DER_TRUE,
  objectIdentifier,
  octetString,
  sequence,
  smallInteger,
  Tag,
  utf8String,
} from './der-writer.ts';
import {
  contentOf,
  type DerElement,
  MalformedDer,
  MAX_ARC_OCTETS,
  readBoolean,
  readChildren,
  readOid,
  readSingle,
  readSmallInteger,
} from './der-reader.ts';
import type { KeyFamily } from './algorithms.ts';
import { Oid } from './oids.ts';
import { X509Error } from './x509-errors.ts';

// ---------------------------------------------------------------------------------------------------------------
// Vocabularies

/** RFC 5280 §4.2.1.3 named bits, in bit order. */
export const KEY_USAGES = [
  'digitalSignature',
  'nonRepudiation',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
] as const;
export type KeyUsage = (typeof KEY_USAGES)[number];

/** Bits a key of the family cannot stand behind: RSA has no key agreement (RFC 3279 §2.3.1), EC no encipherment (RFC 8813 §3). */
const UNFIT_KEY_USAGES: Record<KeyFamily, readonly KeyUsage[]> = {
  RSA: ['keyAgreement'],
  EC: ['keyEncipherment', 'dataEncipherment'],
};

/**
 * The usages a key of `family` can carry: the unfit bits dropped, and encipherOnly/decipherOnly with them unless
 * keyAgreement stays (they qualify it; RFC 5280 §4.2.1.3 leaves them undefined alone, and some readers refuse them).
 */
export function keyUsagesForKey(usages: readonly KeyUsage[], family: KeyFamily): KeyUsage[] {
  const fit = usages.filter((usage) => !UNFIT_KEY_USAGES[family].includes(usage));
  return fit.includes('keyAgreement') ? fit : fit.filter((usage) => usage !== 'encipherOnly' && usage !== 'decipherOnly');
}

/** §5.6 ExtendedKeyUsage flags and the OIDs they write. */
export const EXTENDED_KEY_USAGE_OIDS = {
  server_auth: Oid.serverAuth,
  client_auth: Oid.clientAuth,
  code_signing: Oid.codeSigning,
  email_protection: Oid.emailProtection,
  time_stamping: Oid.timeStamping,
  smart_card_logon: Oid.smartCardLogon,
} as const;

export const SUBJECT_ALT_NAME_TYPES = ['DNS', 'IP', 'EMAIL', 'URI'] as const;
export type SubjectAltNameType = (typeof SUBJECT_ALT_NAME_TYPES)[number];
export interface SubjectAltName {
  type: SubjectAltNameType;
  value: string;
}

export interface CustomExtension {
  oid: string;
  value: string;
}

export const MAX_SUBJECT_ALT_NAMES = 20;

/** GeneralName CHOICE tags ([n] IMPLICIT IA5String / OCTET STRING) of the four SAN types. */
const GENERAL_NAME_TAG: Record<SubjectAltNameType, number> = { EMAIL: 1, DNS: 2, URI: 6, IP: 7 };
const TYPE_BY_GENERAL_NAME_TAG = new Map(Object.entries(GENERAL_NAME_TAG).map(([type, tag]) => [0x80 | tag, type as SubjectAltNameType]));

// ---------------------------------------------------------------------------------------------------------------
// Syntax of the values a request may carry

const DNS_LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

export function isDnsName(value: string, options: { wildcard: boolean }): boolean {
  if (value.length === 0 || value.length > 253) return false;
  const labels = value.split('.');
  return labels.every((label, index) => DNS_LABEL.test(label) || (options.wildcard && index === 0 && label === '*' && labels.length > 1));
}

const DOT_ATOM = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;

/** A mailbox's local part: an RFC 5321 dot-atom of at most 64 characters (no quoted strings). */
export const isLocalPart = (local: string): boolean => local.length <= 64 && DOT_ATOM.test(local);

export function isEmailAddress(value: string): boolean {
  if (value.length > 256) return false;
  const at = value.lastIndexOf('@');
  return at > 0 && isLocalPart(value.slice(0, at)) && isDnsName(value.slice(at + 1), { wildcard: false });
}

/** RFC 3986 §2: unreserved characters and sub-delims, and a percent sign only as the start of two hex digits. */
const UNRESERVED_OR_SUB_DELIM = "-A-Za-z0-9._~!$&'()*+,;=";
const PCT_ENCODED = '%[0-9A-Fa-f]{2}';
/** `[ userinfo "@" ] host [ ":" port ]`: host an IP-literal in brackets or a reg-name. */
const AUTHORITY = new RegExp(
  `^(?:(?:[${UNRESERVED_OR_SUB_DELIM}:]|${PCT_ENCODED})*@)?(\\[[^\\]]*\\]|(?:[${UNRESERVED_OR_SUB_DELIM}]|${PCT_ENCODED})*)(?::[0-9]*)?$`,
);
/** A path (any of RFC 3986's forms), then `?query` and `#fragment`: pchar and '/' (and '?' after the path). */
const PCHAR = `(?:[${UNRESERVED_OR_SUB_DELIM}:@]|${PCT_ENCODED})`;
const PATH_QUERY_FRAGMENT = new RegExp(`^(?:${PCHAR}|/)*(?:\\?(?:${PCHAR}|[/?])*)?(?:#(?:${PCHAR}|[/?])*)?$`);

/**
 * An absolute URI (RFC 3986 §4.3) of at most 253 characters that strict readers take as it is written. Beyond
 * RFC 3986's syntax, the host follows Go's crypto/x509, which refuses the whole certificate otherwise (cert-manager,
 * istiod and kubelet read certificates with it): an IP literal is an IPv6 address in brackets (no zone, no IPvFuture)
 * or a dotted quad; any other non-empty host has no empty label (no trailing dot) and no percent-encoding. WHATWG's
 * parser judges too: what it refuses (a port above 65535, a host ending in a number that is no IPv4 address) is
 * refused as well, since browsers and Node read URIs with it.
 */
export function isAbsoluteUri(value: string): boolean {
  if (value.length > 253) return false;
  const match = /^[A-Za-z][A-Za-z0-9+.-]*:([\x21-\x7e]+)$/.exec(value);
  if (!match) return false;
  let rest = match[1];
  if (rest.startsWith('//')) {
    const end = rest.slice(2).search(/[/?#]/);
    const authority = AUTHORITY.exec(end < 0 ? rest.slice(2) : rest.slice(2, 2 + end));
    if (!authority || !isUriHost(authority[1])) return false;
    rest = end < 0 ? '' : rest.slice(2 + end);
  }
  return PATH_QUERY_FRAGMENT.test(rest) && URL.canParse(value);
}

function isUriHost(host: string): boolean {
  if (host.startsWith('[')) return host.includes(':') && parseIp(host.slice(1, -1)) !== null;
  return host === '' || (!host.includes('%') && host.split('.').every((label) => label.length > 0));
}

/** An IPv4 (4 octets) or IPv6 (16 octets) address, or null. No zone ids, no IPv4 octets with leading zeros. */
export function parseIp(value: string): Uint8Array | null {
  return value.includes(':') ? parseIpv6(value) : parseIpv4(value);
}

/** Whether a 16-octet address is IPv4-mapped (::ffff:0:0/96): an IPv4 address to most clients (Go's net.IP.To4). */
export const isIpv4Mapped = (address: Uint8Array): boolean =>
  address.length === 16 && address.subarray(0, 10).every((byte) => byte === 0) && address[10] === 0xff && address[11] === 0xff;

const NAT64_PREFIX = parseIp('64:ff9b::')!.subarray(0, 12);

/**
 * The IPv4 address an IPv6 one carries, where it reaches that IPv4 host: IPv4-mapped (::ffff:0:0/96), NAT64 with the
 * well-known prefix (64:ff9b::/96) and IPv4-compatible (::a.b.c.d, a > 0; ::1 stays loopback). Null for any other
 * address, an IPv4 one included.
 */
export function embeddedIpv4(ip: Uint8Array): Uint8Array | null {
  if (ip.length !== 16) return null;
  const head = ip.subarray(0, 12);
  const compatible = head.every((byte) => byte === 0) && ip[12] !== 0;
  return isIpv4Mapped(ip) || compatible || Buffer.from(head).equals(NAT64_PREFIX) ? ip.subarray(12) : null;
}

function parseIpv4(value: string): Uint8Array | null {
  const parts = value.split('.');
  if (parts.length !== 4 || !parts.every((part) => /^(0|[1-9]\d{0,2})$/.test(part) && Number(part) <= 255)) return null;
  return new Uint8Array(parts.map(Number));
}

function parseIpv6(value: string): Uint8Array | null {
  let text = value;
  let ipv4Tail: Uint8Array | null = null;
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    ipv4Tail = parseIpv4(text.slice(lastColon + 1));
    if (ipv4Tail === null) return null;
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const groupsOf = (half: string): string[] => (half === '' ? [] : half.split(':'));
  const head = groupsOf(halves[0]);
  const tail = halves.length === 2 ? groupsOf(halves[1]) : [];
  const groups = [...head, ...tail];
  if (!groups.every((group) => /^[0-9A-Fa-f]{1,4}$/.test(group))) return null;
  if (halves.length === 2 ? groups.length > 7 : groups.length !== 8) return null;
  const words = [...head, ...Array<string>(8 - groups.length).fill('0'), ...tail].map((group) => parseInt(group, 16));
  const bytes = new Uint8Array(16);
  words.forEach((word, i) => {
    bytes[2 * i] = word >> 8;
    bytes[2 * i + 1] = word & 0xff;
  });
  if (ipv4Tail !== null) bytes.set(ipv4Tail, 12);
  return bytes;
}

/** The text form of a 4- or 16-octet address (IPv6 per RFC 5952: lowercase, longest zero run compressed). */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return bytes.join('.');
  if (bytes.length !== 16) throw new MalformedDer('IP address must be 4 or 16 octets');
  const words = Array.from({ length: 8 }, (_, i) => (bytes[2 * i] << 8) | bytes[2 * i + 1]);
  let best = { start: -1, length: 1 }; // only runs of two or more zero words are compressed
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > best.length) best = { start: i, length: j - i };
    i = j === i ? i + 1 : j;
  }
  const hex = words.map((word) => word.toString(16));
  if (best.start < 0) return hex.join(':');
  return `${hex.slice(0, best.start).join(':')}::${hex.slice(best.start + best.length).join(':')}`;
}

/** A custom value is a label, not a payload: it is repeated in every copy of the certificate. */
export const MAX_CUSTOM_EXTENSION_BYTES = 1024;

/**
 * Extensions outside 2.5.29 whose syntax is defined elsewhere: a UTF8String under their OID would be a malformed
 * extension that relying parties parse (and reject, or worse, misread). Every extension openssl 3.0 decodes by name
 * outside 2.5.29 (those with an X509V3_EXT_METHOD) falls under one of these arcs, subjectSignTool aside.
 */
export const KNOWN_EXTENSION_ARCS: readonly { arc: string; name: string }[] = [
  // PKIX id-pe (RFC 5280 §4.2.2 and later RFCs): AIA, SIA, qcStatements, IP/AS resources, proxy certificates, TLS Feature.
  {
    arc: '1.3.6.1.5.5.7.1',
    name: 'a PKIX certificate extension (id-pe: authority/subject information access, TLS Feature, qcStatements, IP address blocks, …)',
  },
  // id-pkix-ocsp (RFC 6960 §4.4): nonce, CRL ID, acceptable responses, OCSP No Check, archive cutoff, service locator, …
  { arc: '1.3.6.1.5.5.7.48.1', name: 'an OCSP extension (nonce, CRL ID, OCSP No Check, archive cutoff, service locator, …)' },
  // RFC 6962: precertificate SCT list (.2), precertificate poison (.3), certificate SCT list (.5).
  { arc: '1.3.6.1.4.1.11129.2.4', name: 'a Certificate Transparency extension' },
  // Netscape certificate extensions (cert type, base/revocation URLs, comment, …).
  { arc: '2.16.840.1.113730.1', name: 'a Netscape certificate extension' },
  // Thawte's Strong Extranet ID (SXNet): a SEQUENCE of a version and zone/ID pairs.
  { arc: '1.3.101.1.4.1', name: 'the Strong Extranet ID extension (SXNet)' },
  // RFC 4262: SMIMECapabilities, a SEQUENCE of capabilities.
  { arc: '1.2.840.113549.1.9.15', name: 'the S/MIME Capabilities extension' },
  // SET (Secure Electronic Transaction) certificate extensions: hashedRoot, certType, merchData, tunneling, …
  { arc: '2.23.42.7', name: 'a SET certificate extension' },
  // Russian qualified certificates: issuerSignTool, a SEQUENCE of four UTF8Strings (subjectSignTool, .111, is one
  // UTF8String, so it is left open).
  { arc: '1.2.643.100.112', name: 'the Signing Tool of Issuer extension (issuerSignTool)' },
  // Microsoft: certificate template name (a BMPString), certificate services (template, application policies, …).
  { arc: '1.3.6.1.4.1.311.20.2', name: 'the Microsoft certificate template name' },
  { arc: '1.3.6.1.4.1.311.21', name: 'a Microsoft certificate services extension' },
  // Microsoft's NTDS arc: the SID extension (.2), a SEQUENCE that AD strong certificate mapping reads.
  { arc: '1.3.6.1.4.1.311.25', name: 'a Microsoft NTDS extension (the SID extension for AD strong certificate mapping)' },
  // ISIS-MTT / Common PKI Admissions (Python's cryptography parses it).
  { arc: '1.3.36.8.3.3', name: 'the Admissions extension (ISIS-MTT / Common PKI)' },
];

/** Past it an arc is more than the reader takes: an OID the service writes must be one it can read back. */
const ARC_LIMIT = 2n ** BigInt(7 * MAX_ARC_OCTETS);

export function isDottedOid(value: string): boolean {
  if (!/^[0-2](\.(0|[1-9]\d*))+$/.test(value)) return false;
  const [first, second, ...rest] = value.split('.').map(BigInt) as [bigint, bigint, ...bigint[]];
  if (first < 2n && second > 39n) return false;
  return [first * 40n + second, ...rest].every((arc) => arc < ARC_LIMIT);
}

// ---------------------------------------------------------------------------------------------------------------
// Encoding (extension values; `extension` wraps one into the Extension SEQUENCE)

export function extension(oid: string, critical: boolean, value: Uint8Array): Uint8Array {
  return critical ? sequence(objectIdentifier(oid), DER_TRUE, octetString(value)) : sequence(objectIdentifier(oid), octetString(value));
}

/** cA is DEFAULT FALSE, so DER omits it when false; pathLenConstraint only accompanies cA. */
export function basicConstraintsValue(ca: boolean, pathLength?: number): Uint8Array {
  if (!ca) return sequence();
  return pathLength === undefined ? sequence(DER_TRUE) : sequence(DER_TRUE, smallInteger(pathLength));
}

/** A named-bit BIT STRING: trailing zero bits dropped, as DER requires. Null when no usage is set. */
export function keyUsageValue(usages: readonly KeyUsage[]): Uint8Array | null {
  const bits = usages.map((usage) => KEY_USAGES.indexOf(usage));
  if (bits.length === 0) return null;
  if (bits.includes(-1)) throw new X509Error('invalid-profile', 'unknown key usage');
  const highest = Math.max(...bits);
  const bytes = new Uint8Array((highest >> 3) + 1);
  for (const bit of bits) bytes[bit >> 3] |= 0x80 >> (bit & 7);
  return bitString(bytes, 7 - (highest & 7));
}

export const extendedKeyUsageValue = (oids: readonly string[]): Uint8Array => sequence(...oids.map((oid) => objectIdentifier(oid)));

export function generalName(san: SubjectAltName): Uint8Array {
  const tag = GENERAL_NAME_TAG[san.type];
  if (san.type !== 'IP') return contextPrimitive(tag, ascii(san.value));
  const address = parseIp(san.value);
  if (address === null) throw new X509Error('invalid-ip', `${san.value} is not an IPv4 or IPv6 address`);
  return contextPrimitive(tag, address);
}

export const subjectAltNameValue = (sans: readonly SubjectAltName[]): Uint8Array => sequence(...sans.map(generalName));

export const authorityKeyIdentifierValue = (keyIdentifier: Uint8Array): Uint8Array => sequence(contextPrimitive(0, keyIdentifier));

/** One DistributionPoint with a fullName URI: distributionPoint [0] { fullName [0] { [6] uri } }. */
export const crlDistributionPointsValue = (url: string): Uint8Array =>
  sequence(sequence(contextConstructed(0, contextConstructed(0, contextPrimitive(6, ascii(url))))));

export function authorityInfoAccessValue(urls: { ocspUrl?: string; caIssuersUrl?: string }): Uint8Array | null {
  const description = (method: string, url: string) => sequence(objectIdentifier(method), contextPrimitive(6, ascii(url)));
  const descriptions: Uint8Array[] = [];
  if (urls.ocspUrl) descriptions.push(description(Oid.ocsp, urls.ocspUrl));
  if (urls.caIssuersUrl) descriptions.push(description(Oid.caIssuers, urls.caIssuersUrl));
  return descriptions.length === 0 ? null : sequence(...descriptions);
}

export const customExtensionValue = (value: string): Uint8Array => utf8String(value);

// ---------------------------------------------------------------------------------------------------------------
// Decoding (inside a `parsingUntrusted` step: malformed input throws MalformedDer)

export interface RawExtension {
  critical: boolean;
  /** The extnValue OCTET STRING's content: the DER of the extension value. */
  value: Uint8Array;
}

/** `Extensions ::= SEQUENCE OF Extension`, keyed by OID; a repeated OID is malformed (RFC 5280 §4.2). */
export function readExtensions(el: DerElement): Map<string, RawExtension> {
  const extensions = new Map<string, RawExtension>();
  for (const entry of readChildren(el, Tag.SEQUENCE)) {
    const parts = readChildren(entry, Tag.SEQUENCE);
    if (parts.length < 2 || parts.length > 3) throw new MalformedDer('bad Extension');
    const oid = readOid(parts[0]);
    const critical = parts.length === 3 ? readBoolean(parts[1]) : false;
    const extnValue = parts[parts.length - 1];
    if (extnValue.tag !== Tag.OCTET_STRING) throw new MalformedDer('bad extnValue');
    if (extensions.has(oid)) throw new MalformedDer(`extension ${oid} appears twice`);
    extensions.set(oid, { critical, value: contentOf(extnValue) });
  }
  return extensions;
}

export function decodeKeyUsage(value: Uint8Array): KeyUsage[] {
  const content = contentOf(readSingle(value, Tag.BIT_STRING));
  const unused = content[0] ?? 8;
  if (unused > 7 || (content.length === 1 && unused !== 0)) throw new MalformedDer('bad KeyUsage');
  // Bits past the string's end (its unused ones) are padding, whatever they hold: openssl and Go ignore them too.
  const bits = (content.length - 1) * 8 - unused;
  const bytes = content.subarray(1);
  return KEY_USAGES.filter((_, bit) => bit < bits && bytes[bit >> 3]! & (0x80 >> (bit & 7)));
}

export function decodeExtendedKeyUsage(value: Uint8Array): string[] {
  return readChildren(readSingle(value), Tag.SEQUENCE).map(readOid);
}

/** GeneralNames of the four supported types, in order; another type is refused as unsupported. */
export function decodeSubjectAltNames(value: Uint8Array): SubjectAltName[] {
  return readChildren(readSingle(value), Tag.SEQUENCE).map((name) => {
    const type = TYPE_BY_GENERAL_NAME_TAG.get(name.tag);
    if (type === undefined) {
      throw new X509Error('unsupported-general-name', 'only DNS, IP, EMAIL and URI subject alternative names are supported');
    }
    const content = contentOf(name);
    if (type === 'IP') return { type, value: formatIp(content) };
    const text = Buffer.from(content).toString('latin1');
    if (!/^[\x20-\x7e]*$/.test(text)) throw new MalformedDer('bad IA5String in a subject alternative name');
    return { type, value: text };
  });
}

export function decodeBasicConstraints(value: Uint8Array): { ca: boolean; pathLength?: number } {
  const parts = readChildren(readSingle(value), Tag.SEQUENCE);
  let index = 0;
  const ca = parts[index]?.tag === Tag.BOOLEAN ? readBoolean(parts[index++]) : false;
  const pathLength = parts[index]?.tag === Tag.INTEGER ? readSmallInteger(parts[index++]) : undefined;
  if (index !== parts.length) throw new MalformedDer('bad BasicConstraints');
  return pathLength === undefined ? { ca } : { ca, pathLength };
}

export const decodeSubjectKeyIdentifier = (value: Uint8Array): Uint8Array => contentOf(readSingle(value, Tag.OCTET_STRING));

/** The keyIdentifier [0] of an AuthorityKeyIdentifier, if it has one. */
export function decodeAuthorityKeyIdentifier(value: Uint8Array): Uint8Array | undefined {
  const keyIdentifier = readChildren(readSingle(value), Tag.SEQUENCE).find((part) => part.tag === 0x80);
  return keyIdentifier === undefined ? undefined : contentOf(keyIdentifier);
}
