// Fast unit tests of what a create/activate request asks of a CA (ca-spec.ts): validation in the contract's order
// of error codes, when a CA is signed at once, the CRL columns and a configured subordinate's stored request.
import t from 'tap';
import type { CertificateAuthority } from '../../src/db/generated/client.ts';
import { crlColumns, signsNow, specOf, storedSpecInput } from '../../src/services/ca/ca-spec.ts';
import { refusal } from './support.ts';

const dn = { common_name: 'Root', country: 'CN', state: 'BJ', locality: 'BJ', organization: 'Org', organizational_unit: 'OU' };
const root = {
  type: 'ROOT',
  key_algorithm: 'EC256',
  signature_algorithm: 'SHA256',
  distinguished_name: dn,
  validity: { type: 'YEAR', value: 10 },
};

t.test('specOf: a ROOT needs its hash and validity; a subordinate may wait for them', async (t) => {
  const spec = specOf(root);
  t.match(spec, {
    type: 'ROOT',
    keyAlgorithm: 'EC256',
    hash: 'SHA256',
    pathLength: null,
    keyUsages: null,
    issuerRef: null,
    nameConstraints: null,
  });
  t.ok(signsNow(spec), 'a root is signed at once');
  t.match(
    refusal(() => specOf({ ...root, signature_algorithm: undefined })),
    { status: 400, code: 'PCA.00020001', message: 'signature_algorithm is required for a ROOT CA' },
  );
  t.match(
    refusal(() => specOf({ ...root, validity: undefined })),
    { code: 'PCA.00020001', message: 'validity is required for a ROOT CA' },
  );
  const pending = specOf({
    type: 'SUBORDINATE',
    key_algorithm: 'RSA2048',
    distinguished_name: dn,
    path_length: 2,
    key_usages: ['keyCertSign', 'cRLSign', 'keyCertSign'],
  });
  t.match(pending, {
    type: 'SUBORDINATE',
    hash: null,
    validity: null,
    issuerRef: null,
    pathLength: 2,
    keyUsages: ['keyCertSign', 'cRLSign'],
  });
  t.notOk(signsNow(pending), 'no issuer, hash or validity: PENDING');
  const full = specOf({ ...root, type: 'SUBORDINATE', issuer_id: 'parent' });
  t.equal(full.issuerRef, 'parent');
  t.ok(signsNow(full), 'issuer, hash and validity given: signed at once');
  t.equal(specOf({ ...root, type: 'SUBORDINATE', issuer_id: '' }).issuerRef, null, 'an empty issuer_id is none');
  t.equal(
    specOf({ ...root, path_length: 3, key_usages: ['digitalSignature'] }).pathLength,
    null,
    'a root ignores path_length and key_usages',
  );
});

t.test('specOf: the error codes, checked in the contract order', async (t) => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['CA type first', { ...root, type: 'LEAF', distinguished_name: {} }, 'PCA.00020202'],
    ['then the DN', { ...root, distinguished_name: { common_name: 'x' }, key_algorithm: 'DSA' }, 'PCA.00020101'],
    ['then the key algorithm', { ...root, key_algorithm: 'DSA', signature_algorithm: 'MD5' }, 'PCA.00020102'],
    ['then the signature algorithm', { ...root, signature_algorithm: 'MD5' }, 'PCA.00020103'],
    ['path length out of range', { ...root, type: 'SUBORDINATE', path_length: 7 }, 'PCA.00020203'],
    ['path length not an integer', { ...root, type: 'SUBORDINATE', path_length: 1.5 }, 'PCA.00020203'],
    ['unknown key usage', { ...root, type: 'SUBORDINATE', key_usages: ['signing'] }, 'PCA.00020001'],
    ['bad name constraints', { ...root, name_constraints: { permitted: { dns: ['not a domain!'] } } }, 'PCA.00020001'],
  ];
  for (const [name, input, code] of cases)
    t.match(
      refusal(() => specOf(input)),
      { status: 400, code },
      name,
    );
});

t.test('crlColumns: nothing, disabled, or enabled for 7-30 days with a name defaulting to the CA id', async (t) => {
  t.same(crlColumns(undefined, 'ca1'), {});
  t.same(crlColumns({ enabled: false }, 'ca1'), { crlEnabled: false });
  t.same(crlColumns({ enabled: true, valid_days: 7 }, 'ca1'), { crlEnabled: true, crlValidDays: 7, crlName: 'ca1', obsBucketName: null });
  t.same(crlColumns({ enabled: true, valid_days: 30, crl_name: 'n', obs_bucket_name: 'b' }, 'ca1'), {
    crlEnabled: true,
    crlValidDays: 30,
    crlName: 'n',
    obsBucketName: 'b',
  });
  for (const days of [6, 31, 7.5, undefined]) {
    t.match(
      refusal(() => crlColumns({ enabled: true, valid_days: days }, 'ca1')),
      { code: 'PCA.00020001', message: 'crl_configuration.valid_days must be 7-30 when enabled' },
      String(days),
    );
  }
  t.match(
    refusal(() => crlColumns({} as never, 'ca1')),
    { message: 'crl_configuration.enabled is required' },
  );
});

t.test("storedSpecInput: a configured subordinate's type, DN and key, with the request's issuer, hash and validity", async (t) => {
  const row = {
    type: 'SUBORDINATE',
    keyAlgorithm: 'EC384',
    signatureAlgorithm: 'SHA384',
    pathLength: 1,
    keyUsages: [],
    nameConstraints: null,
    commonName: 'Sub',
    country: 'CN',
    state: null,
    locality: null,
    organization: 'Org',
    organizationalUnit: null,
  } as unknown as CertificateAuthority;
  const stored = storedSpecInput(row, { signature_algorithm: 'SHA512' } as never);
  t.match(stored, {
    type: 'SUBORDINATE',
    key_algorithm: 'EC384',
    signature_algorithm: 'SHA512',
    path_length: 1,
    key_usages: undefined,
    name_constraints: null,
  });
  t.match(stored.distinguished_name, { common_name: 'Sub', country: 'CN', organization: 'Org' });
  t.equal(storedSpecInput(row, {} as never).signature_algorithm, 'SHA384', 'the stored hash when the request names none');
});
