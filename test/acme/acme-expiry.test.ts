/**
 * The `acme-expiry` job (issue #16) with a ManualClock, on the suite's database (PGlite, or CI's Postgres) and on a
 * real Postgres server: nonces past expiry deleted, pending/ready orders past expiry stored invalid and pending
 * authorizations expired, finished records removed a week after expiry with their authorizations and challenges;
 * fresh and finished-but-recent records untouched. Run twice at once, the counts add up to one run's. An order that
 * names a certificate stays until a week after the certificate expired: its account revokes and downloads it through it.
 */
import { randomUUID } from 'node:crypto';
import t, { type Test } from 'tap';
import { ManualClock } from '../../src/clock.ts';
import { ACME_EXPIRY_JOB, acmeExpiryJob } from '../../src/services/acme/acme-jobs.ts';
import { createTestApp, createTestAppOnRealPostgres, type TestApp } from '../helpers/app.ts';
import { countingTransactions, realPostgresOrSkipTest } from '../helpers/database.ts';
import { RawAcme, accountKey, b64, csrFor } from './jws-client.ts';
import { acmeCa, eabKey, http01Responder, startAcmeServer } from './support.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

async function scenario(t: Test, harness: TestApp, clock: ManualClock): Promise<void> {
  const prisma = harness.database.prisma;
  const at = (offset: number) => new Date(clock.now().getTime() + offset);
  const accountId = randomUUID();
  const caId = randomUUID();
  await prisma.acmeAccount.create({
    data: {
      id: accountId,
      domainId: harness.config.defaultDomainId,
      caId,
      eabKid: 'eab_test',
      thumbprint: randomUUID(),
      jwk: {},
      status: 'valid',
      contact: [],
      createdAt: clock.now(),
    },
  });

  /** An order with one authorization (same status and expiry) and one challenge. */
  async function order(status: string, expiresIn: number, authorizationStatus = status === 'ready' ? 'valid' : status) {
    const id = randomUUID();
    const authorizationId = randomUUID();
    await prisma.acmeOrder.create({
      data: {
        id,
        accountId,
        domainId: harness.config.defaultDomainId,
        caId,
        status,
        identifiers: [{ type: 'dns', value: 'a.example.internal' }],
        expiresAt: at(expiresIn),
        createdAt: clock.now(),
      },
    });
    await prisma.acmeAuthorization.create({
      data: {
        id: authorizationId,
        orderId: id,
        accountId,
        identifierType: 'dns',
        identifierValue: 'a.example.internal',
        status: authorizationStatus,
        expiresAt: at(expiresIn),
      },
    });
    await prisma.acmeChallenge.create({
      data: { id: randomUUID(), authorizationId, type: 'http-01', token: randomUUID(), status: 'pending' },
    });
    return { id, authorizationId };
  }
  const orders = {
    pendingDue: await order('pending', 1 * HOUR),
    readyDue: await order('ready', 1 * HOUR),
    validDue: await order('valid', 1 * HOUR),
    pendingFresh: await order('pending', 3 * DAY),
    readyFresh: await order('ready', 3 * DAY),
    // Expired more than the week of retention once the clock moves on.
    pendingOld: await order('pending', -7 * DAY),
    validOld: await order('valid', -7 * DAY),
  };
  const nonce = (value: string, expiresIn: number) => prisma.acmeNonce.create({ data: { value, expiresAt: at(expiresIn) } });
  await nonce(`due-${randomUUID()}`, 30 * 60_000);
  await nonce(`due-${randomUUID()}`, HOUR);
  await nonce(`fresh-${randomUUID()}`, 3 * HOUR);

  clock.advance(2 * HOUR);
  const runner = harness.app.jobRunner;
  const job = runner.job(ACME_EXPIRY_JOB);
  const [first, second] = (await Promise.all([
    job.run({ now: clock.now(), log: harness.app.log }),
    job.run({ now: clock.now(), log: harness.app.log }),
  ])) as Record<string, number>[];
  const sum = (name: string) => first![name]! + second![name]!;
  t.equal(sum('nonces'), 2, 'two expired nonces deleted, once');
  // pendingOld is marked too, then removed in the same run.
  t.equal(sum('expiredOrders'), 3, 'pending and ready orders past expiry marked, once');
  t.equal(sum('expiredAuthorizations'), 2, 'pending authorizations past expiry marked, once');
  t.equal(sum('removedOrders'), 2, 'orders a week past expiry removed, once');

  const nonces = await prisma.acmeNonce.findMany();
  t.same(
    nonces.map(({ value }) => value.split('-')[0]),
    ['fresh'],
    'only the fresh nonce is left',
  );
  const statusOf = async (key: keyof typeof orders) => {
    const row = await prisma.acmeOrder.findUnique({ where: { id: orders[key].id } });
    const authorization = await prisma.acmeAuthorization.findUnique({ where: { id: orders[key].authorizationId } });
    return [row?.status ?? 'removed', authorization?.status ?? 'removed'];
  };
  t.same(await statusOf('pendingDue'), ['invalid', 'expired'], 'pending order past expiry: invalid, its authorization expired');
  t.same(await statusOf('readyDue'), ['invalid', 'valid'], 'ready order past expiry: invalid, its valid authorization kept');
  t.same(await statusOf('validDue'), ['valid', 'valid'], 'a valid order is finished, not expired');
  t.same(await statusOf('pendingFresh'), ['pending', 'pending'], 'fresh pending order untouched');
  t.same(await statusOf('readyFresh'), ['ready', 'valid'], 'fresh ready order untouched');
  t.same(await statusOf('pendingOld'), ['removed', 'removed'], 'removed a week after expiry');
  t.same(await statusOf('validOld'), ['removed', 'removed']);
  const challenges = await prisma.acmeChallenge.count({
    where: { authorizationId: { in: [orders.pendingOld.authorizationId, orders.validOld.authorizationId] } },
  });
  t.equal(challenges, 0, "the removed orders' challenges went with them");
  t.equal(await prisma.acmeChallenge.count(), 5, 'the other challenges stay');

  const again = await runner.runOnce(ACME_EXPIRY_JOB);
  t.same(
    again,
    { nonces: 0, expiredOrders: 0, expiredAuthorizations: 0, removedOrders: 0 },
    "the runner's run (its clock) finds nothing more",
  );
  clock.advance(10 * DAY);
  t.same(
    await runner.runOnce(ACME_EXPIRY_JOB),
    { nonces: 1, expiredOrders: 2, expiredAuthorizations: 1, removedOrders: 5 },
    'ten days on, everything has gone',
  );
  t.equal(await prisma.acmeOrder.count(), 0);
  t.equal(await prisma.acmeAuthorization.count(), 0);
  t.equal(await prisma.acmeChallenge.count(), 0);

  // A backlog larger than a batch goes in one run, a transaction per batch (batches of 2 here: 2, 2 and 1).
  for (let index = 0; index < 5; index++) await order('pending', -8 * DAY);
  const counted = countingTransactions(prisma);
  t.match(await acmeExpiryJob({ db: counted }, 300, 2).run({ now: clock.now(), log: harness.app.log }), { removedOrders: 5 });
  t.equal(counted.transactions(), 3);
  t.equal(await prisma.acmeOrder.count(), 0, 'the whole backlog removed');
}

t.test('on the suite database (PGlite, or DATABASE_URL)', async (t) => {
  const clock = new ManualClock(Date.now());
  const harness = await createTestApp({ clock });
  t.teardown(() => harness.close());
  t.comment(`database: ${harness.database.url ? 'Postgres' : 'PGlite'}`);
  await scenario(t, harness, clock);
});

t.test('on a real Postgres server', async (t) => {
  const clock = new ManualClock(Date.now());
  const postgres = await realPostgresOrSkipTest(t);
  if (!postgres) return;
  const harness = await createTestAppOnRealPostgres(postgres, { clock });
  t.teardown(() => harness.close());
  t.ok(harness.database.url, 'a Postgres database');
  await scenario(t, harness, clock);
});

/** A started ACME server on a ManualClock, and a certificate its account ordered and had issued for `host`. */
async function issuedThroughAcme(t: Test, host: string) {
  const clock = new ManualClock(Date.now());
  const server = await startAcmeServer({ clock, env: { ACME_STATIC_HOSTS: `${host}=127.0.0.1` } });
  t.teardown(() => server.close());
  const responder = await http01Responder(server.http01Port);
  t.teardown(() => responder.close());
  const caId = await acmeCa(server.api, { enabled: true, max_validity_days: 30 });
  const client = await new RawAcme(`${server.baseUrl}/acme/${caId}/directory`, accountKey('ES256')).init();
  t.equal((await client.newAccount(await eabKey(server.api, caId))).status, 201);
  const { url, order } = await client.readyOrder([host], responder.tokens);
  const finalized = await client.post(order.finalize, { csr: (await csrFor([host])).csr });
  t.equal(finalized.body.status, 'valid', 'the certificate is issued');
  const certificateUrl: string = finalized.body.certificate;
  return { clock, server, client, orderUrl: url, certificateUrl, certificateId: certificateUrl.split('/').pop()! };
}

t.test('a valid order stays while its certificate is valid: the account downloads and revokes it through the order', async (t) => {
  const { clock, server, client, orderUrl: url, certificateUrl, certificateId } = await issuedThroughAcme(t, 'kept.example.internal');
  const runner = server.harness.app.jobRunner;

  // The order expired a day after it was made; a week of retention later, its certificate still has three weeks.
  clock.advance(8 * DAY + HOUR);
  await runner.runOnce(ACME_EXPIRY_JOB);
  t.equal((await client.post(url, '')).body.status, 'valid', 'the order is still there');
  const download = await client.post(certificateUrl, '');
  t.equal(download.status, 200, 'the account downloads its certificate');
  const certificate = await server.harness.database.prisma.certificate.findUniqueOrThrow({ where: { id: certificateId } });
  const revoked = await client.post(client.directory.revokeCert!, { certificate: b64(Buffer.from(certificate.certificateDer)) });
  t.equal(revoked.status, 200, `the account revokes its certificate (${JSON.stringify(revoked.body)})`);

  clock.set(new Date(certificate.notAfter.getTime() + 7 * DAY - HOUR));
  await runner.runOnce(ACME_EXPIRY_JOB);
  t.equal((await client.post(url, '')).status, 200, 'kept until a week after the certificate expired');
  clock.advance(2 * HOUR);
  t.match(await runner.runOnce(ACME_EXPIRY_JOB), { removedOrders: 1 }, 'then removed');
  t.equal((await client.post(url, '')).status, 404);
});

t.test('a certificate deleted through the API: its ACME download answers 404, and its order goes a week after it expired', async (t) => {
  const { clock, server, client, orderUrl: url, certificateUrl, certificateId } = await issuedThroughAcme(t, 'deleted.example.internal');
  t.equal((await client.post(certificateUrl, '')).status, 200, 'downloaded while it exists');
  const deleted = await server.api.call('DELETE', `/v1/private-certificates/${certificateId}`);
  t.equal(deleted.status, 204);
  t.equal((await client.post(certificateUrl, '')).status, 404, 'deleted: not served to its ACME account either');
  clock.advance(8 * DAY + HOUR);
  t.match(await server.harness.app.jobRunner.runOnce(ACME_EXPIRY_JOB), { removedOrders: 1 }, 'the order goes with the usual retention');
  t.equal((await client.post(url, '')).status, 404);
});
