/** The object identifiers the service writes and reads, named once (RFC 5280, RFC 6960, RFC 8737, PKCS #9, NIST). */
export const Oid = {
  // Certificate and CRL extensions (RFC 5280 §4.2, §5.2, §5.3)
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  crlNumber: '2.5.29.20',
  reasonCode: '2.5.29.21',
  nameConstraints: '2.5.29.30',
  crlDistributionPoints: '2.5.29.31',
  authorityKeyIdentifier: '2.5.29.35',
  extendedKeyUsage: '2.5.29.37',
  anyExtendedKeyUsage: '2.5.29.37.0',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
  acmeIdentifier: '1.3.6.1.5.5.7.1.31',
  // Access methods (RFC 5280 §4.2.2.1) and OCSP (RFC 6960)
  ocsp: '1.3.6.1.5.5.7.48.1',
  ocspBasic: '1.3.6.1.5.5.7.48.1.1',
  ocspNonce: '1.3.6.1.5.5.7.48.1.2',
  caIssuers: '1.3.6.1.5.5.7.48.2',
  // Extended key usages (RFC 5280 §4.2.1.12, and Microsoft's smart card logon)
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  codeSigning: '1.3.6.1.5.5.7.3.3',
  emailProtection: '1.3.6.1.5.5.7.3.4',
  timeStamping: '1.3.6.1.5.5.7.3.8',
  OCSPSigning: '1.3.6.1.5.5.7.3.9',
  smartCardLogon: '1.3.6.1.4.1.311.20.2.2',
  // Subject public keys (RFC 3279, RFC 5480)
  rsaEncryption: '1.2.840.113549.1.1.1',
  ecPublicKey: '1.2.840.10045.2.1',
  // Hashes (RFC 3279, NIST)
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha384: '2.16.840.1.101.3.4.2.2',
  sha512: '2.16.840.1.101.3.4.2.3',
  // PKCS #9 extensionRequest (a CSR's requested extensions)
  extensionRequest: '1.2.840.113549.1.9.14',
} as const;
