/**
 * A CRL reader that learns which CRL is newest, then has two more signed before it reads the bytes (another instance
 * or the job signing meanwhile; signing deletes all but the two newest), still answers a CRL, never a 500.
 */
import t from 'tap';
import type { Db } from '../../src/db/database.ts';
import { createKeyStores } from '../../src/keystore/index.ts';
import { createMetrics } from '../../src/metrics/metrics.ts';
import { createCrlService } from '../../src/services/revocation/crl-service.ts';
import { parseCrlSummary } from '../../src/x509/crl.ts';
import { seedCa } from '../certificates/support.ts';
import { createTestApp } from '../helpers/app.ts';

const harness = await createTestApp();
t.teardown(() => harness.close());
const db = harness.database.prisma;
const keyStores = createKeyStores({ masterKey: harness.config.masterKey });
t.teardown(() => keyStores.software.close());
const deps = {
  clock: { now: () => new Date() },
  keyStores,
  config: harness.config,
  metrics: createMetrics(harness.database.poolStats),
  log: harness.app.log,
};

t.test('two signings between the reads of the newest CRL and of its bytes: the reader still answers a CRL', async (t) => {
  const ca = await seedCa(harness, { commonName: 'crl-read-race' });
  const other = createCrlService({ ...deps, db });
  await other.signNow(ca.id);
  let crlReads = 0;
  // The reader's second read of the crls table waits until two more CRLs are signed (a pool wait, say).
  const crls = new Proxy(db.crl, {
    get(target, property) {
      const value = Reflect.get(target, property) as unknown;
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        if (++crlReads === 2) for (let signing = 0; signing < 2; signing++) await other.signNow(ca.id);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  const readerDb = new Proxy(db, { get: (target, property) => (property === 'crl' ? crls : Reflect.get(target, property)) }) as Db;
  const reader = createCrlService({ ...deps, db: readerDb });
  const crl = await reader.currentCrl(ca.id);
  t.ok(crl, 'a CRL');
  t.equal(crlReads >= 2, true, 'the race was run');
  t.equal(parseCrlSummary(crl!.der).crlNumber, crl!.crlNumber, 'its bytes are the CRL its facts describe');
  t.equal(crl!.crlNumber, 3n, 'the newest');
});
