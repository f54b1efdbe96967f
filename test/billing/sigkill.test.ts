/**
 * §8 "one CERT_ISSUE record per certificate, written in the issuing transaction", under the worst case: a server
 * process (its own node process over the real Postgres) is killed with SIGKILL in the middle of a burst of
 * concurrent CSR issuances. Afterwards every stored certificate has exactly one CERT_ISSUE record and every
 * CERT_ISSUE record has its certificate.
 */
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { KEY_ARGS, opensslCsr, scratch, seedCa } from '../certificates/support.ts';
import { createTestAppOnRealPostgres } from '../helpers/app.ts';
import { realPostgresOrSkipFile } from '../helpers/database.ts';
import { startSharedServer } from '../helpers/server-process.ts';

// The killed server is its own process, so the database must be a real server both can reach.
const harness = await createTestAppOnRealPostgres(await realPostgresOrSkipFile(t));
t.teardown(() => harness.close());
const db = harness.database.prisma;
t.test('SIGKILL during a burst of issuances: certificates and CERT_ISSUE records match one to one', async (t) => {
  const root = await seedCa(harness, { commonName: 'Billing Kill Root' });
  const sub = await seedCa(harness, { commonName: 'Billing Kill Sub', parent: root });
  const dir = await scratch('billing-kill');
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pca-kill-'));
  t.teardown(() =>
    Promise.all([rm(path.dirname(dir.file('x')), { recursive: true, force: true }), rm(dataDir, { recursive: true, force: true })]),
  );
  const { csr } = await opensslCsr(dir, 'burst', [...KEY_ARGS.p256]);

  const server = await startSharedServer(harness, dataDir);
  t.teardown(() => server.child.kill('SIGKILL'));
  const base = server.base;

  const headers = { ...harness.auth(), 'content-type': 'application/json' };
  const body = JSON.stringify({ issuer_id: sub.id, csr, validity: { type: 'DAY', value: 30 } });
  // A steady stream from 32 clients (a fixed burst could be answered whole before the kill lands: batches are large).
  let issued = 0;
  let cut = 0;
  let stopping = false;
  const clients = Array.from({ length: 32 }, async () => {
    while (!stopping) {
      const ok = await fetch(`${base}/v1/private-certificates/csr`, { method: 'POST', headers, body }).then(
        (response) => response.ok,
        () => false,
      );
      if (ok) issued += 1;
      else cut += 1;
    }
  });
  while (issued < 40) await sleep(5);
  stopping = true;
  server.child.kill('SIGKILL');
  await once(server.child, 'exit');
  await Promise.all(clients);
  const answered = issued;
  t.ok(answered >= 40 && cut > 0, `the kill cut the stream short (${answered} answered, ${cut} cut off)`);

  // Both read by one statement, so from one snapshot: the killed server's connection may still commit a batch it had
  // sent (Postgres finishes a statement whose client is gone), between two separate reads.
  const [{ certificates, issues }] = await db.$queryRawUnsafe<{ certificates: string[]; issues: string[] }[]>(
    `SELECT ARRAY(SELECT id::text FROM certificates WHERE issuer_id = $1::uuid) AS certificates,
            ARRAY(SELECT resource_id::text FROM billing_records WHERE usage_type = 'CERT_ISSUE') AS issues`,
    sub.id,
  );
  t.ok(certificates.length >= answered, `every answered issuance is stored (${certificates.length} stored)`);
  t.equal(issues.length, certificates.length, 'as many CERT_ISSUE records as certificates');
  t.equal(new Set(issues).size, issues.length, 'no certificate has two records');
  t.same(new Set(issues), new Set(certificates), 'the records name exactly the stored certificates');
});
