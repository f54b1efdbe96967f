/**
 * Work a refused request must not cost (issue #13): with the CA or certificate quota used up, a request for an
 * RSA-4096 key is refused before any key is generated (0.4-2 s of CPU each before).
 */
import t from 'tap';
import { createTestApp } from '../helpers/app.ts';

const harness = await createTestApp({ env: { CA_QUOTA: '1', CERTIFICATE_QUOTA: '1' } });
t.teardown(() => harness.close());
const { app } = harness;
const auth = harness.auth();
const post = (url: string, payload: object) => app.inject({ method: 'POST', url, headers: auth, payload });

// Every software key (CA keys in the software key store, certificate keys always) comes from WebCrypto.
const subtle = globalThis.crypto.subtle;
const generateKey = subtle.generateKey.bind(subtle);
let generated = 0;
subtle.generateKey = ((...args: Parameters<typeof generateKey>) => {
  generated++;
  return generateKey(...args);
}) as typeof subtle.generateKey;
t.teardown(() => {
  subtle.generateKey = generateKey;
});

const DN = {
  common_name: 'stall',
  country: 'CN',
  state: 'zhejiang',
  locality: 'hangzhou',
  organization: 'acme',
  organizational_unit: 'mesh',
};

t.test('quota used up: CA create and certificate issuance refuse before generating a key', async (t) => {
  const root = await post('/v1/private-certificate-authorities', {
    type: 'ROOT',
    distinguished_name: DN,
    key_algorithm: 'EC256',
    signature_algorithm: 'SHA256',
    validity: { type: 'YEAR', value: 1 },
  });
  t.equal(root.statusCode, 200, root.body);
  const issuerId = root.json().ca_id as string;
  const leaf = await post('/v1/private-certificates', {
    issuer_id: issuerId,
    key_algorithm: 'EC256',
    distinguished_name: { common_name: 'leaf' },
    validity: { type: 'DAY', value: 1 },
  });
  t.equal(leaf.statusCode, 200, leaf.body);

  generated = 0;
  for (let i = 0; i < 3; i++) {
    const ca = await post('/v1/private-certificate-authorities', {
      type: 'ROOT',
      distinguished_name: DN,
      key_algorithm: 'RSA4096',
      signature_algorithm: 'SHA256',
      validity: { type: 'YEAR', value: 1 },
    });
    t.equal(ca.statusCode, 400);
    t.match(ca.json(), { error_code: 'PCA.00020001', error_msg: /CA quota is used up/ });
    const certificate = await post('/v1/private-certificates', {
      issuer_id: issuerId,
      key_algorithm: 'RSA4096',
      distinguished_name: { common_name: 'leaf' },
      validity: { type: 'DAY', value: 1 },
    });
    t.equal(certificate.statusCode, 400);
    t.match(certificate.json(), { error_code: 'PCA.00020001', error_msg: /certificate quota of 1 is used up/ });
  }
  t.equal(generated, 0, 'no key was generated for a refused request');
});
