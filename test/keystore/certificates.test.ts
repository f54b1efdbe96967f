/**
 * Certificates signed through each key store pass `openssl verify -x509_strict`: a root and a leaf whose
 * signatures come from the store (software sealed keys, and a SoftHSM2 token), for an EC and an RSA key.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { createKeyStores } from '../../src/keystore/index.ts';
import { keyStoreSigner } from '../../src/keystore/key-store-signer.ts';
import type { KeyStore } from '../../src/keystore/key-store.ts';
import type { KeyAlgorithm } from '../../src/x509/algorithms.ts';
import { buildCertificate, randomSerial } from '../../src/x509/certificate.ts';
import { encodeName } from '../../src/x509/name.ts';
import { toPem } from '../../src/x509/pem.ts';
import { subjectKeyIdentifier } from '../../src/x509/public-key.ts';
import { generateTestKey, openssl, scratch } from '../x509/support.ts';
import { SOFTHSM_LIBRARY, softHsmToken } from './support.ts';

const token = await softHsmToken('pca-cert-test', '4321');
const stores = createKeyStores({
  masterKey: crypto.getRandomValues(new Uint8Array(32)),
  pkcs11: { library: SOFTHSM_LIBRARY, tokenLabel: 'pca-cert-test', pin: '4321' },
});
t.teardown(async () => {
  await stores.software.close();
  await stores.pkcs11?.close();
  await rm(token.dir, { recursive: true, force: true });
});

const day = 24 * 3600 * 1000;

async function chainSignedBy(store: KeyStore, alg: KeyAlgorithm): Promise<{ root: string; leaf: string }> {
  const caKey = await store.generate(alg);
  const signer = keyStoreSigner(store, caKey.keyRef, alg);
  const rootName = encodeName({ country: 'CN', organization: 'pca-test', common_name: `${store.kind} ${alg} root` });
  const now = Date.now();
  const root = await buildCertificate(
    {
      serialNumber: randomSerial(),
      subject: rootName,
      issuer: rootName,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 365 * day),
      spki: caKey.spki,
      hash: 'SHA256',
      basicConstraints: { ca: true },
      keyUsages: ['digitalSignature', 'keyCertSign', 'cRLSign'],
    },
    signer,
  );
  const leafKey = await generateTestKey('EC256');
  const leaf = await buildCertificate(
    {
      serialNumber: randomSerial(),
      subject: { common_name: 'leaf.example.com' },
      issuer: rootName,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 30 * day),
      spki: leafKey.spki,
      hash: 'SHA384',
      basicConstraints: { ca: false },
      keyUsages: ['digitalSignature'],
      extendedKeyUsages: ['1.3.6.1.5.5.7.3.1'],
      subjectAltNames: [{ type: 'DNS', value: 'leaf.example.com' }],
      authorityKeyIdentifier: subjectKeyIdentifier(caKey.spki),
    },
    signer,
  );
  return { root: toPem('CERTIFICATE', root), leaf: toPem('CERTIFICATE', leaf) };
}

for (const kind of ['software', 'pkcs11'] as const) {
  for (const alg of ['EC256', 'RSA2048'] as const) {
    t.test(`${kind} store, ${alg} CA key: openssl verify -x509_strict`, async (t) => {
      const { root, leaf } = await chainSignedBy(stores.get(kind), alg);
      const dir = await scratch('store-cert');
      const rootFile = await dir.write('root.pem', root);
      const leafFile = await dir.write('leaf.pem', leaf);
      t.teardown(() => rm(path.dirname(rootFile), { recursive: true, force: true }));
      const rootCheck = await openssl(['verify', '-x509_strict', '-CAfile', rootFile, rootFile]);
      t.ok(rootCheck.ok, `root: ${rootCheck.stdout}${rootCheck.stderr}`);
      const leafCheck = await openssl(['verify', '-x509_strict', '-CAfile', rootFile, leafFile]);
      t.ok(leafCheck.ok, `leaf: ${leafCheck.stdout}${leafCheck.stderr}`);
      t.match(leafCheck.stdout, /: OK/);
    });
  }
}
