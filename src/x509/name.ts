/** Distinguished names (§5.1, §5.2): the contract's six attributes, encoded one attribute per RDN. */
import { objectIdentifier, printableString, sequence, set, Tag, utf8String } from './der-writer.ts';
import { MalformedDer, parsingUntrusted, readChildren, readOid, readSingle, readString } from './der-reader.ts';
import { X509Error } from './x509-errors.ts';

export interface DistinguishedName {
  common_name?: string | null;
  country?: string | null;
  state?: string | null;
  locality?: string | null;
  organization?: string | null;
  organizational_unit?: string | null;
}

export type DistinguishedNameField = keyof DistinguishedName;

/** The attributes in the order they are written (C, ST, L, O, OU, CN), with their OIDs. */
export const NAME_ATTRIBUTES: readonly { field: DistinguishedNameField; oid: string }[] = [
  { field: 'country', oid: '2.5.4.6' },
  { field: 'state', oid: '2.5.4.8' },
  { field: 'locality', oid: '2.5.4.7' },
  { field: 'organization', oid: '2.5.4.10' },
  { field: 'organizational_unit', oid: '2.5.4.11' },
  { field: 'common_name', oid: '2.5.4.3' },
];
const FIELD_BY_OID = new Map(NAME_ATTRIBUTES.map(({ field, oid }) => [oid, field]));

/** DER Name: a SEQUENCE of single-attribute SETs. Country is a PrintableString, the rest UTF8String. */
export function encodeName(dn: DistinguishedName): Uint8Array {
  const rdns: Uint8Array[] = [];
  for (const { field, oid } of NAME_ATTRIBUTES) {
    const value = dn[field];
    if (value === undefined || value === null || value === '') continue;
    if (field === 'country' && !ATTRIBUTE_RULES.country.pattern.test(value)) {
      throw new X509Error('invalid-name', `country must be ${ATTRIBUTE_RULES.country.description}`);
    }
    const encodedValue = field === 'country' ? printableString(value) : utf8String(value);
    rdns.push(set(sequence(objectIdentifier(oid), encodedValue)));
  }
  return sequence(...rdns);
}

/** The DER of a Name without any attribute (RFC 5280 allows it when a SAN carries the identity). */
export const isEmptyName = (der: Uint8Array): boolean => der.length === 2 && der[0] === Tag.SEQUENCE && der[1] === 0;

/** The contract's view of a Name: the first value of each of the six attributes, null where absent. */
export function decodeName(der: Uint8Array): DistinguishedName {
  return parsingUntrusted('distinguished name', () => {
    const dn: Required<DistinguishedName> = {
      common_name: null,
      country: null,
      state: null,
      locality: null,
      organization: null,
      organizational_unit: null,
    };
    for (const rdn of readChildren(readSingle(der), Tag.SEQUENCE)) {
      for (const attribute of readChildren(rdn, Tag.SET)) {
        const [type, value] = readChildren(attribute, Tag.SEQUENCE);
        if (value === undefined) continue;
        const oid = readOid(type);
        const text = readString(value);
        // The null-prefix trick (`CN=good.example\0.evil.example`), and a value no database text column can hold.
        if (text?.includes('\0')) throw new MalformedDer(`attribute ${oid} contains a NUL character`);
        const field = FIELD_BY_OID.get(oid);
        if (field !== undefined && dn[field] === null) dn[field] = text;
      }
    }
    return dn;
  });
}

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/**
 * A Name from outside (a CSR's subject) under the JSON path's rules (§5.2): only the six attributes, each at most
 * once and alone in its RDN, as a UTF8String or PrintableString (the country a PrintableString) whose text passes
 * the attribute's rule. The fields returned are then all the Name says, so what the API reports is what the
 * certificate carries. Violations are `invalid-name` X509Errors naming the attribute; no attribute is required (a CSR
 * may name its subject by SANs alone).
 */
export function validateNameDer(der: Uint8Array, what: string): DistinguishedName {
  const attributes = parsingUntrusted(what, () =>
    readChildren(readSingle(der), Tag.SEQUENCE).map((rdn) => {
      const members = readChildren(rdn, Tag.SET);
      if (members.length !== 1) throw new X509Error('invalid-name', `${what} has a multi-valued RDN; write one attribute per RDN`);
      const [type, value, ...rest] = readChildren(members[0], Tag.SEQUENCE);
      if (value === undefined || rest.length > 0) throw new MalformedDer('bad AttributeTypeAndValue');
      const oid = readOid(type);
      const text = value.tag === Tag.UTF8_STRING || value.tag === Tag.PRINTABLE_STRING ? readString(value) : null;
      if (value.tag === Tag.PRINTABLE_STRING && !PRINTABLE.test(text!))
        throw new MalformedDer(`attribute ${oid} is not a valid PrintableString`);
      return { oid, text, printable: value.tag === Tag.PRINTABLE_STRING };
    }),
  );
  const dn: DistinguishedName = {};
  for (const { oid, text, printable } of attributes) {
    const field = FIELD_BY_OID.get(oid);
    if (field === undefined) {
      throw new X509Error('invalid-name', `${what} attribute ${oid} is not one of C, ST, L, O, OU and CN (§5.2)`);
    }
    const name = `${what} ${field}`;
    if (dn[field] !== undefined) throw new X509Error('invalid-name', `${name} appears more than once`);
    const rule = ATTRIBUTE_RULES[field];
    if (text === null) throw new X509Error('invalid-name', `${name} must be a UTF8String or PrintableString`);
    // X520countryName is PrintableString (SIZE (2)) (RFC 5280 Appendix A): the subject is copied as it is encoded.
    if (field === 'country' && !printable) throw new X509Error('invalid-name', `${name} must be a PrintableString`);
    if ([...text].length > rule.max || !rule.pattern.test(text)) throw new X509Error('invalid-name', `${name} must be ${rule.description}`);
    dn[field] = text;
  }
  return dn;
}

/** Checks that `der` is a single, well-formed Name (e.g. copied from a CSR). Returns it unchanged. */
export function checkNameDer(der: Uint8Array, what: string): Uint8Array {
  parsingUntrusted(what, () => readSingle(der, Tag.SEQUENCE));
  return der;
}

// Letters (CJK included in \p{L}), digits and the punctuation §5.1 allows.
const TEXT = /^[\p{L}\p{M}\p{Nd}\-_ .,]+$/u;
const COMMON_NAME = /^[\p{L}\p{M}\p{Nd}\-_ .,*]+$/u;

const TEXT_CHARACTERS = "letters, digits, CJK, '-', '_', space, '.' or ','";
export const ATTRIBUTE_RULES: Record<DistinguishedNameField, { pattern: RegExp; max: number; description: string }> = {
  common_name: { pattern: COMMON_NAME, max: 64, description: `1-64 characters: ${TEXT_CHARACTERS} or '*'` },
  country: { pattern: /^[A-Za-z]{2}$/, max: 2, description: 'exactly two letters' },
  state: { pattern: TEXT, max: 128, description: `1-128 characters: ${TEXT_CHARACTERS}` },
  locality: { pattern: TEXT, max: 128, description: `1-128 characters: ${TEXT_CHARACTERS}` },
  organization: { pattern: TEXT, max: 64, description: `1-64 characters: ${TEXT_CHARACTERS}` },
  organizational_unit: { pattern: TEXT, max: 64, description: `1-64 characters: ${TEXT_CHARACTERS}` },
};
