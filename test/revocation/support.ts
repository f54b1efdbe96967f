/**
 * The revoke reasons §4.4.6 allows, in its order (the names the SDK models' docstrings give too): the tests' own list,
 * an oracle kept apart from the service's, for the revocation tests, the SDK scenarios and the unit tests alike.
 */
export const REVOKE_REASONS = [
  'UNSPECIFIED',
  'KEY_COMPROMISE',
  'CERTIFICATE_AUTHORITY_COMPROMISE',
  'AFFILIATION_CHANGED',
  'SUPERSEDED',
  'CESSATION_OF_OPERATION',
  'CERTIFICATE_HOLD',
  'PRIVILEGE_WITHDRAWN',
  'ATTRIBUTE_AUTHORITY_COMPROMISE',
];
