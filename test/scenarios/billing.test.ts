/**
 * Scenario 5 of shared/docs/scenarios.md (billing) end to end against a started server with a hand-moved clock:
 * a pay-per-use root created at 10:00 over the API, its subordinate at 10:20, 1,000 certificates issued from an
 * openssl CSR under the subordinate over HTTP (in parallel batches), the root disabled at 12:30 and its deletion
 * scheduled at 13:15:30; then the billing-settlement job run as the server runs it (its JobRunner), run again, and
 * run by two instances (two apps on one database) at once. The records are read back through the billing API and
 * must add up exactly (docs/api-reference.md §8, prices in test/billing/support.ts).
 */
import t from 'tap';
import { buildApp } from '../../src/app.ts';
import { ManualClock } from '../../src/clock.ts';
import { createKeyStores } from '../../src/keystore/index.ts';
import type { BillingRecordView } from '../../src/services/billing/billing-record-mapper.ts';
import { BILLING_ENV, utc } from '../billing/support.ts';
import { KEY_ARGS, openssl, opensslCsr, pemBlocks } from '../certificates/support.ts';
import { CA, CERT, createRoot, createSubordinate, startServer } from './support.ts';

const clock = new ManualClock(utc('2026-01-05T10:00:00'));
const FREE_PER_CA = 100;
const server = await startServer('billing-scenario', { clock, env: { ...BILLING_ENV, FREE_CERTIFICATES_PER_CA: String(FREE_PER_CA) } });
const { harness, dir, ok } = server;
const SETTLEMENT_JOB = 'billing-settlement';

/** Every billing record of the domain, through the API (pages of 1000; `total` would show a duplicate). */
async function allRecords(): Promise<{ total: number; records: BillingRecordView[] }> {
  const records: BillingRecordView[] = [];
  let total = 0;
  for (let offset = 0; ; offset += 1000) {
    const page = await ok('GET', `/v1/billing-records?limit=1000&offset=${offset}`);
    total = page.total as number;
    records.push(...(page.records as BillingRecordView[]));
    if (records.length >= total || page.records.length === 0) break;
  }
  return { total, records };
}

const ms = (iso: string) => utc(iso).getTime();

t.test('scenario 5: root 10:00, disabled 12:30, deleted 13:15:30; 1,000 certificates under its subordinate', async (t) => {
  const rootId = await createRoot(server, 'asm');
  t.match(await ok('GET', `${CA}/${rootId}`), { status: 'ACTIVED', charging_mode: 1, create_time: ms('2026-01-05T10:00:00') });

  clock.set(utc('2026-01-05T10:20:00'));
  const subId = await createSubordinate(server, rootId, 'asm-subordinate-ca', 6);
  t.match(await ok('GET', `${CA}/${subId}`), { status: 'ACTIVED', charging_mode: 1, free_quota: FREE_PER_CA });

  // 1,000 certificates from one openssl CSR, 40 batches of 25 requests in flight, 25 s of clock apart.
  const { csr } = await opensslCsr(dir, 'workload', [...KEY_ARGS.p256], ['-subj', '/O=cluster.local/CN=workload']);
  clock.set(utc('2026-01-05T10:30:00'));
  const issued: string[] = [];
  for (let batch = 0; batch < 40; batch += 1) {
    const ids = await Promise.all(
      Array.from({ length: 25 }, () =>
        ok('POST', `${CERT}/csr`, { issuer_id: subId, csr, validity: { type: 'DAY', value: 30 } }).then(
          (body) => body.certificate_id as string,
        ),
      ),
    );
    issued.push(...ids);
    clock.advance(25_000);
  }
  t.equal(new Set(issued).size, 1000, '1,000 distinct certificate ids');
  t.equal((await ok('GET', `${CERT}?limit=1`)).total, 1000, 'the list shows 1,000 certificates');
  t.equal((await ok('GET', `${CA}/${subId}`)).free_quota, 0, 'the free quota is used up');

  // Each one is a real certificate: a first, a middle and a last one verify against the exported chain (at the
  // clock's time, which is not the machine's).
  const atTime = String(Math.floor(ms('2026-01-05T11:00:00') / 1000));
  for (const id of [issued[0]!, issued[499]!, issued[999]!]) {
    const exported = await ok('POST', `${CERT}/${id}/export`, { is_compressed: 'false', type: 'OTHER' });
    const chain = pemBlocks(exported.certificate_chain);
    t.equal(chain.length, 2, 'chain: the subordinate, then the root');
    const leaf = await dir.write(`${id}.pem`, exported.certificate);
    const root = await dir.write(`${id}-root.pem`, chain[1]!);
    const sub = await dir.write(`${id}-sub.pem`, chain[0]!);
    const verified = await openssl(['verify', '-x509_strict', '-attime', atTime, '-CAfile', root, '-untrusted', sub, leaf]);
    t.ok(verified.ok, `certificate ${id} verifies: ${verified.stdout}${verified.stderr}`);
  }

  clock.set(utc('2026-01-05T12:30:00'));
  await ok('POST', `${CA}/${rootId}/disable`, undefined, { status: 204 });
  t.equal((await ok('GET', `${CA}/${rootId}`)).status, 'DISABLED');
  clock.set(utc('2026-01-05T13:15:30'));
  await ok('DELETE', `${CA}/${rootId}?pending_days=7`, undefined, { status: 204 });
  const deleted = await ok('GET', `${CA}/${rootId}`);
  t.match(deleted, { status: 'DELETED', delete_time: ms('2026-01-12T13:15:30') }, 'scheduled for removal in 7 days');

  // The job as the server runs it, at 15:05: hours up to 15:00 are settled (2 minutes of grace have passed).
  clock.set(utc('2026-01-05T15:05:00'));
  const first = (await harness.app.jobRunner.runOnce(SETTLEMENT_JOB)) as Record<string, unknown>;
  t.match(first, { settledUntil: '2026-01-05T15:00:00.000Z', recordsCreated: 9, casSettled: 2 }, 'root: 4 hours, subordinate: 5');

  const settled = await allRecords();
  t.equal(settled.total, 1009, '9 CA hours + 1,000 certificates');
  t.equal(settled.records.length, 1009);

  const hour = (caId: string, start: string, end: string, seconds: number, amount: string) => ({
    resource_type: 'CA',
    resource_id: caId,
    charging_mode: 1,
    usage_type: 'CA_DURATION',
    usage_start: ms(start),
    usage_end: ms(end),
    usage_amount: seconds,
    unit_price: '0.001',
    amount,
    currency: 'CNY',
  });
  const durations = (caId: string) =>
    settled.records
      .filter((r) => r.usage_type === 'CA_DURATION' && r.resource_id === caId)
      .sort((a, b) => a.usage_start - b.usage_start)
      .map(({ record_id: _id, domain_id: _domain, create_time: _created, ...rest }) => rest);
  t.same(
    durations(rootId),
    [
      hour(rootId, '2026-01-05T10:00:00', '2026-01-05T11:00:00', 3600, '3.6'),
      hour(rootId, '2026-01-05T11:00:00', '2026-01-05T12:00:00', 3600, '3.6'),
      hour(rootId, '2026-01-05T12:00:00', '2026-01-05T13:00:00', 3600, '3.6'),
      hour(rootId, '2026-01-05T13:00:00', '2026-01-05T13:15:30', 930, '0.93'),
    ],
    'root: billed from creation and while disabled (12:30-13:15:30), not while pending deletion',
  );
  t.same(
    durations(subId),
    [
      hour(subId, '2026-01-05T10:20:00', '2026-01-05T11:00:00', 2400, '2.4'),
      hour(subId, '2026-01-05T11:00:00', '2026-01-05T12:00:00', 3600, '3.6'),
      hour(subId, '2026-01-05T12:00:00', '2026-01-05T13:00:00', 3600, '3.6'),
      hour(subId, '2026-01-05T13:00:00', '2026-01-05T14:00:00', 3600, '3.6'),
      hour(subId, '2026-01-05T14:00:00', '2026-01-05T15:00:00', 3600, '3.6'),
    ],
    'subordinate: from activation at 10:20, every settled hour',
  );
  t.equal(settled.records.filter((r) => r.usage_type === 'CA_DURATION').length, 9, 'no CA_DURATION record for any other resource');

  const issues = settled.records.filter((r) => r.usage_type === 'CERT_ISSUE');
  t.equal(issues.length, 1000, 'one CERT_ISSUE record per certificate');
  t.same(issues.map((r) => r.resource_id).sort(), [...issued].sort(), 'exactly the issued certificate ids, each once');
  t.ok(
    issues.every(
      (r) =>
        r.resource_type === 'CERTIFICATE' &&
        r.usage_amount === 1 &&
        r.amount === r.unit_price &&
        r.usage_start >= ms('2026-01-05T10:30:00') &&
        r.usage_start < ms('2026-01-05T10:46:40'),
    ),
    'each: one issuance, at its issuing time, amount = unit price',
  );
  const byPrice: Record<string, number> = {};
  for (const record of issues) byPrice[record.unit_price] = (byPrice[record.unit_price] ?? 0) + 1;
  t.same(byPrice, { '0': 100, '0.05': 500, '0.03': 400 }, '100 free, then 0.05 up to the 600th of the month, 0.03 after');

  const summaryUrl = `/v1/billing-records/summary?start_time=${ms('2026-01-05T00:00:00')}&end_time=${ms('2026-01-06T00:00:00')}`;
  const summary = await ok('GET', summaryUrl);
  t.same(
    summary,
    {
      start_time: ms('2026-01-05T00:00:00'),
      end_time: ms('2026-01-06T00:00:00'),
      currency: 'CNY',
      total_amount: '65.53',
      totals: [
        { resource_type: 'CA', usage_type: 'CA_DURATION', record_count: 9, usage_amount: 11730 + 16800, amount: '28.53', currency: 'CNY' },
        { resource_type: 'CERTIFICATE', usage_type: 'CERT_ISSUE', record_count: 1000, usage_amount: 1000, amount: '37', currency: 'CNY' },
      ],
    },
    'CA 11730 s + 16800 s at 0.001 = 28.53; certificates 500 × 0.05 + 400 × 0.03 = 37',
  );

  const ids = settled.records.map((r) => r.record_id).sort();
  const second = (await harness.app.jobRunner.runOnce(SETTLEMENT_JOB)) as Record<string, unknown>;
  t.match(second, { settledUntil: '2026-01-05T15:00:00.000Z', recordsCreated: 0 }, 'the job run again adds nothing');

  // A second instance: its own app (and job runner) over the same database, settling at the same moment.
  const keyStores = createKeyStores({ masterKey: harness.config.masterKey, pkcs11: harness.config.keyStore.pkcs11 });
  const other = await buildApp({ config: harness.config, database: harness.database, keyStores, clock, logDestination: false });
  t.teardown(async () => {
    await other.close();
    await Promise.allSettled([keyStores.software.close(), keyStores.pkcs11?.close()]);
  });
  const concurrent = (await Promise.all([
    harness.app.jobRunner.runOnce(SETTLEMENT_JOB),
    other.jobRunner.runOnce(SETTLEMENT_JOB),
  ])) as Record<string, number>[];
  t.same(
    concurrent.map((run) => run.recordsCreated),
    [0, 0],
    'two instances running it at once add nothing',
  );
  const after = await allRecords();
  t.equal(after.total, 1009);
  t.same(after.records.map((r) => r.record_id).sort(), ids, 'the very same records, none added or replaced');
  t.same(await ok('GET', summaryUrl), summary, 'the same totals');

  // An hour later both instances at once find hour 15 of the subordinate to settle: one of them writes it, once.
  clock.set(utc('2026-01-05T16:05:00'));
  const racing = (await Promise.all([harness.app.jobRunner.runOnce(SETTLEMENT_JOB), other.jobRunner.runOnce(SETTLEMENT_JOB)])) as Record<
    string,
    number
  >[];
  t.equal(racing[0]!.recordsCreated! + racing[1]!.recordsCreated!, 1, 'hour 15 written by one of the two');
  const final = await allRecords();
  t.equal(final.total, 1010);
  t.same(
    final.records.filter((r) => !ids.includes(r.record_id)).map((r) => [r.resource_id, r.usage_start, r.usage_amount, r.amount]),
    [[subId, ms('2026-01-05T15:00:00'), 3600, '3.6']],
    "the one new record: the subordinate's hour 15; nothing for the deleted root",
  );
});
