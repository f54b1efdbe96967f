/**
 * What the X.509 core refuses, in RFC 5280 terms. It knows nothing of the API: src/errors.ts maps each kind to the
 * contract's error code, once.
 */
export type X509ErrorKind =
  /** Bytes or text that are not what they claim to be (DER, PEM, base64, sizes). */
  | 'malformed'
  /** A signature that does not verify (a CSR's proof of possession). */
  | 'bad-signature'
  /** A public key outside RSA 2048/3072/4096 (e = 65537) and EC P-256/P-384/P-521, or a weak or compressed one in a CSR. */
  | 'unsupported-key'
  /** A signature algorithm outside SHA-256/384/512 with RSA PKCS#1 v1.5 or ECDSA. */
  | 'unsupported-signature-algorithm'
  /** A Name whose attributes break the attribute rules (types, string types, sizes, characters). */
  | 'invalid-name'
  /** notAfter before notBefore. */
  | 'invalid-validity'
  /** A GeneralName iPAddress that is not an IPv4 or IPv6 address. */
  | 'invalid-ip'
  /** A GeneralName form other than dNSName, iPAddress, rfc822Name and uniformResourceIdentifier. */
  | 'unsupported-general-name'
  /** A NameConstraints form this CA cannot honour (dropping it would widen the CA). */
  | 'unsupported-name-constraint'
  /** A certificate profile that cannot be encoded (serial number, repeated extension, no identity). */
  | 'invalid-profile';

export class X509Error extends Error {
  override name = 'X509Error';
  constructor(
    readonly kind: X509ErrorKind,
    message: string,
  ) {
    super(message);
  }
}
