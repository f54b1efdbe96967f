// Fast unit tests of issuance rules: types, path lengths, key usage precedence, inherited names, derived status.
import t from 'tap';
import { ErrorCode } from '../../src/errors.ts';
import { refusal } from './support.ts';
import type { CertificateAuthority } from '../../src/db/generated/client.ts';
import {
  basicConstraintsFor,
  certificateStatus,
  checkCertificateType,
  csrExtendedKeyUsages,
  checkRequestedKeyUsages,
  csrKeyUsages,
  extendedKeyUsageOids,
  inheritDistinguishedName,
  requestedKeyUsages,
  serverKeyAlgorithm,
} from '../../src/services/certificates/certificate-rules.ts';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

const issuer = {
  commonName: 'Issuer CN',
  country: 'CN',
  state: 'GD',
  locality: 'SZ',
  organization: 'Org',
  organizationalUnit: null,
  keyAlgorithm: 'EC256',
} as unknown as CertificateAuthority;

t.test('type defaults to ENTITY_CERT; anything else but the two types is refused', async (t) => {
  t.equal(checkCertificateType(undefined), 'ENTITY_CERT');
  t.equal(checkCertificateType(null), 'ENTITY_CERT');
  t.equal(checkCertificateType('INTERMEDIATE_CA'), 'INTERMEDIATE_CA');
  t.equal(checkCertificateType('ENTITY_CERT'), 'ENTITY_CERT');
  t.match(
    refusal(() => checkCertificateType('ROOT')),
    { status: 400, code: ErrorCode.InvalidParameter, message: /ENTITY_CERT or INTERMEDIATE_CA/ },
  );
});

t.test('basic constraints: an entity is CA:FALSE, an intermediate sits below its issuer', async (t) => {
  t.same(basicConstraintsFor('ENTITY_CERT', 5, 0), { ca: false });
  t.same(basicConstraintsFor('INTERMEDIATE_CA', 2, 3), { ca: true, pathLength: 2 });
  t.same(basicConstraintsFor('INTERMEDIATE_CA', undefined, 1), { ca: true, pathLength: 0 });
  t.match(
    refusal(() => basicConstraintsFor('INTERMEDIATE_CA', 3, 3)),
    { status: 400, code: ErrorCode.InvalidPathLength },
  );
});

t.test('requested key usages win; an entity never gets CA usages; defaults by type and key family', async (t) => {
  t.same(requestedKeyUsages('ENTITY_CERT', ['digitalSignature', 'nonRepudiation'], 'EC'), ['digitalSignature', 'nonRepudiation']);
  t.same(requestedKeyUsages('ENTITY_CERT', undefined, 'EC'), ['digitalSignature', 'keyAgreement'], "Huawei's default for an EC key");
  t.same(requestedKeyUsages('ENTITY_CERT', [], 'EC'), ['digitalSignature', 'keyAgreement']);
  t.same(requestedKeyUsages('ENTITY_CERT', undefined, 'RSA'), ['digitalSignature', 'keyEncipherment'], 'an RSA key cannot agree keys');
  t.same(requestedKeyUsages('INTERMEDIATE_CA', undefined, 'EC'), ['digitalSignature', 'keyCertSign', 'cRLSign']);
  t.same(requestedKeyUsages('INTERMEDIATE_CA', ['keyCertSign'], 'EC'), ['keyCertSign', 'cRLSign']);
  t.same(requestedKeyUsages('INTERMEDIATE_CA', ['digitalSignature'], 'RSA'), ['digitalSignature', 'keyCertSign', 'cRLSign']);
  t.same(requestedKeyUsages('ENTITY_CERT', ['digitalSignature', 'keyEncipherment'], 'EC'), ['digitalSignature'], 'unfit bits left out');
  t.same(requestedKeyUsages('ENTITY_CERT', ['keyAgreement', 'encipherOnly'], 'EC'), ['keyAgreement', 'encipherOnly']);
  t.same(
    requestedKeyUsages('ENTITY_CERT', ['digitalSignature', 'decipherOnly'], 'EC'),
    ['digitalSignature'],
    'decipherOnly needs keyAgreement',
  );
  t.match(
    refusal(() => requestedKeyUsages('ENTITY_CERT', ['keyAgreement', 'encipherOnly'], 'RSA')),
    { status: 400, code: ErrorCode.InvalidParameter, message: 'key_usages keyAgreement, encipherOnly do not apply to an RSA key' },
  );
  t.match(
    refusal(() => checkRequestedKeyUsages('ENTITY_CERT', ['digitalSignature', 'cRLSign'])),
    { status: 400, code: ErrorCode.InvalidParameter, message: /cRLSign is for CA certificates only/ },
  );
  t.match(
    refusal(() => checkRequestedKeyUsages('ENTITY_CERT', ['keyCertSign'])),
    { status: 400, code: ErrorCode.InvalidParameter, message: /keyCertSign/ },
  );
  checkRequestedKeyUsages('INTERMEDIATE_CA', ['keyCertSign']);
  const input = ['digitalSignature'] as const;
  const out = requestedKeyUsages('ENTITY_CERT', [...input], 'EC');
  out.push('keyAgreement');
  t.same(requestedKeyUsages('ENTITY_CERT', [...input], 'EC'), ['digitalSignature'], 'a copy, not the caller array');
});

t.test('EKU flags: only the true ones, in table order; none gives no OIDs', async (t) => {
  t.same(extendedKeyUsageOids(undefined), []);
  t.same(extendedKeyUsageOids({}), []);
  t.same(extendedKeyUsageOids({ client_auth: true, server_auth: true }), [SERVER_AUTH, CLIENT_AUTH]);
  t.same(extendedKeyUsageOids({ server_auth: false, client_auth: 'yes' }), [], 'only literal true counts');
});

t.test("CSR key usages: an intermediate keeps the CSR's with keyCertSign and cRLSign, or gets the CA set", async (t) => {
  t.same(csrKeyUsages('INTERMEDIATE_CA', { keyUsages: ['keyCertSign'], keyAlgorithm: 'EC256' }), ['keyCertSign', 'cRLSign']);
  t.same(csrKeyUsages('INTERMEDIATE_CA', { keyUsages: ['digitalSignature'], keyAlgorithm: 'EC256' }), [
    'digitalSignature',
    'keyCertSign',
    'cRLSign',
  ]);
  t.same(csrKeyUsages('INTERMEDIATE_CA', { keyUsages: [], keyAlgorithm: 'EC256' }), ['digitalSignature', 'keyCertSign', 'cRLSign']);
  t.same(csrKeyUsages('INTERMEDIATE_CA', { keyUsages: undefined, keyAlgorithm: 'RSA2048' } as never), [
    'digitalSignature',
    'keyCertSign',
    'cRLSign',
  ]);
});

t.test('CSR key usages: an entity drops CA usages and bits its key cannot use, else defaults by key family', async (t) => {
  t.same(csrKeyUsages('ENTITY_CERT', { keyUsages: ['keyCertSign', 'digitalSignature', 'cRLSign'], keyAlgorithm: 'EC256' }), [
    'digitalSignature',
  ]);
  t.same(csrKeyUsages('ENTITY_CERT', { keyUsages: ['keyCertSign'], keyAlgorithm: 'RSA2048' }), ['digitalSignature', 'keyEncipherment']);
  t.same(csrKeyUsages('ENTITY_CERT', { keyUsages: undefined, keyAlgorithm: 'EC384' } as never), ['digitalSignature', 'keyAgreement']);
  t.same(csrKeyUsages('ENTITY_CERT', { keyUsages: [], keyAlgorithm: 'RSA4096' }), ['digitalSignature', 'keyEncipherment']);
  t.same(
    csrKeyUsages('ENTITY_CERT', { keyUsages: ['digitalSignature', 'keyEncipherment'], keyAlgorithm: 'EC256' }),
    ['digitalSignature'],
    "cert-manager's default usages on an EC key",
  );
  t.same(csrKeyUsages('ENTITY_CERT', { keyUsages: ['dataEncipherment'], keyAlgorithm: 'EC256' }), ['digitalSignature', 'keyAgreement']);
});

t.test("CSR EKU: the CSR's when present, else server+client for an entity and none for a CA", async (t) => {
  t.same(csrExtendedKeyUsages('ENTITY_CERT', { extendedKeyUsages: ['1.2.3'] }), ['1.2.3']);
  t.same(csrExtendedKeyUsages('INTERMEDIATE_CA', { extendedKeyUsages: ['1.2.3'] }), ['1.2.3']);
  t.same(csrExtendedKeyUsages('ENTITY_CERT', { extendedKeyUsages: [] }), [SERVER_AUTH, CLIENT_AUTH]);
  t.same(csrExtendedKeyUsages('ENTITY_CERT', { extendedKeyUsages: undefined } as never), [SERVER_AUTH, CLIENT_AUTH]);
  t.same(csrExtendedKeyUsages('INTERMEDIATE_CA', { extendedKeyUsages: [] }), []);
  t.same(
    csrExtendedKeyUsages('ENTITY_CERT', { extendedKeyUsages: [SERVER_AUTH, SERVER_AUTH, CLIENT_AUTH, SERVER_AUTH] }),
    [SERVER_AUTH, CLIENT_AUTH],
    'a repeated EKU once, in first-seen order',
  );
});

t.test('a distinguished name inherits what the request leaves absent or null, and keeps what it sets', async (t) => {
  t.same(inheritDistinguishedName({ common_name: 'leaf', country: null, organizational_unit: 'Unit' }, issuer), {
    common_name: 'leaf',
    country: 'CN',
    state: 'GD',
    locality: 'SZ',
    organization: 'Org',
    organizational_unit: 'Unit',
  });
  t.same(
    inheritDistinguishedName({ common_name: '', state: 'BJ', locality: 'X', organization: 'Mine' } as never, issuer),
    {
      common_name: '',
      country: 'CN',
      state: 'BJ',
      locality: 'X',
      organization: 'Mine',
      organizational_unit: null,
    },
    'an empty string is a value, not absence',
  );
});

t.test('status: REVOKED wins, ISSUED reads EXPIRED from not_after on', async (t) => {
  const notAfter = new Date(Date.UTC(2026, 0, 1));
  t.equal(certificateStatus({ status: 'REVOKED', notAfter }, new Date(notAfter.getTime() + 1)), 'REVOKED');
  t.equal(certificateStatus({ status: 'REVOKED', notAfter }, new Date(notAfter.getTime() - 1)), 'REVOKED');
  t.equal(certificateStatus({ status: 'ISSUED', notAfter }, notAfter), 'EXPIRED');
  t.equal(certificateStatus({ status: 'ISSUED', notAfter }, new Date(notAfter.getTime() - 1)), 'ISSUED');
});

t.test("POST CERT key algorithm: the request's, else the issuer's", async (t) => {
  t.equal(serverKeyAlgorithm('RSA2048', issuer), 'RSA2048');
  t.equal(serverKeyAlgorithm(undefined, issuer), 'EC256');
});
