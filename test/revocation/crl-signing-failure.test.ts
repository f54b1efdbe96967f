/**
 * A CRL reader whose CRL must be signed again (a revocation waits, or it lapsed) while the CA's key store fails: the
 * public URL still hands out the stored CRL (what relying parties that fetched before the revoke hold anyway), not to
 * be cached, and the failure is logged; a CA with no CRL yet answers the store's error: nothing to fall back to.
 */
import t from 'tap';
import { errors } from '../../src/errors.ts';
import { signerOver, type KeyStores } from '../../src/keystore/index.ts';
import type { KeyStore, KeyStoreKind } from '../../src/keystore/key-store.ts';
import { parseCrlSummary } from '../../src/x509/crl.ts';
import { seedCa } from '../certificates/support.ts';
import { createTestApp } from '../helpers/app.ts';

let outage = false;
const withOutage = (stores: KeyStores): KeyStores => {
  const wrap = (store: KeyStore): KeyStore => ({
    ...store,
    sign: (...args) => (outage ? Promise.reject(errors.unavailable('the key store is unreachable')) : store.sign(...args)),
  });
  const software = wrap(stores.software);
  const get = (kind: KeyStoreKind) => (kind === 'software' ? software : stores.get(kind));
  return { ...stores, software, get, signerOf: signerOver(get) };
};
const harness = await createTestApp({ wrapKeyStores: withOutage });
t.teardown(() => harness.close());
const prisma = harness.database.prisma;
const readCrl = (caId: string) => harness.app.inject({ method: 'GET', url: `/crl/${caId}.crl` });
const failureLogged = () => harness.logs.text.includes('signing a CRL for its reader failed');

t.test('a revocation waits for a CRL the key store cannot sign: the stored CRL is served, and the failure logged', async (t) => {
  t.teardown(() => (outage = false));
  const ca = await seedCa(harness, { commonName: 'crl-signing-failure' });
  const first = await readCrl(ca.id);
  t.equal(first.statusCode, 200, 'the first read signs the CA its first CRL');
  t.equal(parseCrlSummary(first.rawPayload).crlNumber, 1n);

  await prisma.certificateAuthority.update({ where: { id: ca.id }, data: { crlStaleSince: new Date() } });
  outage = true;
  t.notOk(failureLogged(), 'nothing logged yet');
  const during = await readCrl(ca.id);
  t.equal(during.statusCode, 200, 'the reader gets a CRL, not the key store error');
  t.same(new Uint8Array(during.rawPayload), new Uint8Array(first.rawPayload), 'the stored one');
  t.match(first.headers['cache-control'], /^public, max-age=[1-9]\d*$/, 'a current CRL is cached until its nextUpdate');
  t.equal(during.headers['cache-control'], 'no-cache', 'a stale one is not: caches ask again, and get the next one once signed');
  t.ok(failureLogged(), 'the failed signing is logged');
  t.not((await prisma.certificateAuthority.findUniqueOrThrow({ where: { id: ca.id } })).crlStaleSince, null, 'the revocation still waits');

  outage = false;
  const after = await readCrl(ca.id);
  t.equal(after.statusCode, 200);
  t.equal(parseCrlSummary(after.rawPayload).crlNumber, 2n, 'once the store answers, the next reader gets a new CRL');
  t.match(after.headers['cache-control'], /^public, max-age=[1-9]\d*$/);
});

t.test('a CA without any CRL while its key store fails: the error, as there is no CRL to serve', async (t) => {
  t.teardown(() => (outage = false));
  const ca = await seedCa(harness, { commonName: 'crl-signing-failure-none' });
  outage = true;
  const response = await readCrl(ca.id);
  t.equal(response.statusCode, 503);
  t.equal(response.json().error_code, 'PCA.00050002');
  t.equal(await prisma.crl.count({ where: { caId: ca.id } }), 0, 'no CRL was stored');
});
