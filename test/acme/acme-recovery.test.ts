/**
 * ACME state after a write that fails once: a challenge's outcome (the challenge goes back to pending and the client's
 * next POST validates it, RFC 8555 §7.5.1), and an order's move to valid after its certificate was issued (the next
 * finalize, or POST-as-GET of the order, settles it valid with that certificate, issued and billed once). The write
 * fails through a wrapped Prisma call, armed only for the one challenge or order. And a claim left behind by a request
 * that died (an order or a challenge processing): taken again once stale, and only the claim holder's outcome counts.
 */
import t, { type Test } from 'tap';
import { CHALLENGE_CLAIM_STALE_MS, ORDER_CLAIM_STALE_MS } from '../../src/services/acme/acme-service.ts';
import { acmeFixture, eabKey, startAcmeServer } from './support.ts';
import { RawAcme, accountKey, csrFor } from './jws-client.ts';

const server = await startAcmeServer({
  env: {
    ACME_STATIC_HOSTS: [
      'r.example.internal',
      's.example.internal',
      'u.example.internal',
      'v.example.internal',
      'w.example.internal',
      'x.example.internal',
      'c1.example.internal',
      'c2.example.internal',
      'c3.example.internal',
      'c4.example.internal',
      'c5.example.internal',
      'c6.example.internal',
      'c7.example.internal',
    ]
      .map((name) => `${name}=127.0.0.1`)
      .join(','),
  },
});
const { responder, api, prisma, caId, directoryUrl } = await acmeFixture(t, server);
const idOf = (url: string) => url.split('/').pop()!;

type Args = { where: { id?: string; status?: unknown }; data: { status?: unknown } };

/** The challenge whose claim (pending -> processing) arms a failure of the next transaction: its outcome's. */
let failOutcomeOf: string | null = null;
let failNextTransaction = false;
/** The challenge whose claim is taken over right after it is made, as by another request finding it stale. */
let takeOverClaimOf: string | null = null;
/** The challenge during whose validation another challenge (`winner`) of its authorization validates it, as a concurrent POST would. */
let decideOnClaimOf: { challenge: string; winner: string; authorization: string } | null = null;
const challenges = prisma.acmeChallenge as unknown as { updateMany: (args: Args) => Promise<{ count: number }> };
const updateChallenges = challenges.updateMany;
challenges.updateMany = async function armedUpdateMany(this: unknown, args) {
  const updated = await updateChallenges.call(this, args);
  const claimed = args.data.status === 'processing' && updated.count === 1;
  if (claimed && args.where.id === failOutcomeOf) {
    failOutcomeOf = null;
    failNextTransaction = true;
  }
  if (claimed && decideOnClaimOf && args.where.id === decideOnClaimOf.challenge) {
    const { winner, authorization } = decideOnClaimOf;
    decideOnClaimOf = null;
    await prisma.acmeChallenge.update({ where: { id: winner }, data: { status: 'valid', validatedAt: new Date() } });
    await prisma.acmeAuthorization.update({ where: { id: authorization }, data: { status: 'valid' } });
  }
  if (claimed && args.where.id === takeOverClaimOf) {
    takeOverClaimOf = null;
    await prisma.acmeChallenge.update({ where: { id: args.where.id }, data: { processingSince: new Date(Date.now() + 1000) } });
  }
  return updated;
};
const transactions = prisma as unknown as { $transaction: (fn: unknown, options?: unknown) => Promise<unknown> };
const transaction = transactions.$transaction;
transactions.$transaction = function failingTransaction(this: unknown, fn, options) {
  if (!failNextTransaction || typeof fn !== 'function') return transaction.call(this, fn, options);
  failNextTransaction = false;
  // Its writes are made, then rolled back: the transaction fails as a lost connection or a failed commit would.
  return transaction.call(
    this,
    async (tx: unknown) => {
      await (fn as (tx: unknown) => Promise<unknown>)(tx);
      throw new Error('the database failed (test)');
    },
    options,
  );
};

/** The order whose next move processing -> valid fails once. */
let failValidOf: string | null = null;
const orders = prisma.acmeOrder as unknown as { updateMany: (args: Args) => Promise<{ count: number }> };
const updateOrders = orders.updateMany;
orders.updateMany = async function failingUpdateMany(this: unknown, args) {
  if (args.where.id === failValidOf && args.data.status === 'valid') {
    failValidOf = null;
    throw new Error('the database failed (test)');
  }
  return updateOrders.call(this, args);
};

async function account(): Promise<RawAcme> {
  const client = await new RawAcme(directoryUrl, accountKey('ES256')).init();
  const created = await client.newAccount(await eabKey(api, caId));
  if (created.status !== 201) throw new Error(`newAccount: ${created.status} ${JSON.stringify(created.body)}`);
  return client;
}

t.test('a challenge whose outcome write fails is pending again; the next POST validates it and the order is ready', async (t) => {
  const client = await account();
  const created = await client.newOrder(['r.example.internal']);
  const url = created.headers.get('location')!;
  const authorization = created.body.authorizations[0] as string;
  const challenge = (await client.post(authorization, '')).body.challenges.find((item: { type: string }) => item.type === 'http-01');
  responder.tokens.set(challenge.token, client.keyAuthorization(challenge.token));

  failOutcomeOf = idOf(challenge.url);
  const failed = await client.post(challenge.url, {});
  t.ok(failed.status >= 500, `the failure is the server's (${failed.status} ${JSON.stringify(failed.body)})`);
  t.notOk(failNextTransaction, 'the outcome transaction was the one that failed');
  t.equal((await client.post(challenge.url, '')).body.status, 'pending', 'the challenge is pending again, not processing for good');

  const retried = await client.post(challenge.url, {});
  t.equal(retried.status, 200);
  t.equal(retried.body.status, 'valid', `the retry validates it (${JSON.stringify(retried.body)})`);
  t.equal((await client.post(authorization, '')).body.status, 'valid', 'the authorization is valid');
  t.equal((await client.post(url, '')).body.status, 'ready', 'the order is ready');
});

/** An order whose finalize issued its certificate, then failed to name it in the order. */
async function issuedButProcessing(t: Test, name: string) {
  const client = await account();
  const { url, order } = await client.readyOrder([name], responder.tokens);
  const before = await prisma.certificate.findMany({ where: { issuerId: caId }, select: { id: true } });
  failValidOf = idOf(url);
  const failed = await client.post(order.finalize, { csr: (await csrFor([name])).csr });
  t.ok(failed.status >= 500, `the failure is the server's (${failed.status} ${JSON.stringify(failed.body)})`);
  t.equal(failValidOf, null, 'the order write after the issuance was the one that failed');
  const known = new Set(before.map((row) => row.id));
  const issued = (await prisma.certificate.findMany({ where: { issuerId: caId }, select: { id: true } })).filter(
    (row) => !known.has(row.id),
  );
  t.equal(issued.length, 1, 'the certificate was issued');
  return { client, url, order, certificateId: issued[0]!.id, known };
}

async function issuedOnce(t: Test, client: RawAcme, certificateUrl: string | undefined, certificateId: string, known: Set<string>) {
  t.equal(certificateUrl && idOf(certificateUrl), certificateId, 'the order names the certificate issued the first time');
  if (!certificateUrl) return;
  const fresh = (await prisma.certificate.findMany({ where: { issuerId: caId }, select: { id: true } })).filter(
    (row) => !known.has(row.id),
  );
  t.same(
    fresh.map((row) => row.id),
    [certificateId],
    'no other certificate issued',
  );
  t.equal(await prisma.billingRecord.count({ where: { resourceId: certificateId, usageType: 'CERT_ISSUE' } }), 1, 'billed once');
  const chain = await client.post(certificateUrl, '');
  t.equal(chain.status, 200, 'the account downloads it');
}

t.test('finalize again after the issued order failed to become valid: valid with the certificate issued', async (t) => {
  const { client, url, order, certificateId, known } = await issuedButProcessing(t, 's.example.internal');
  const again = await client.post(order.finalize, { csr: (await csrFor(['s.example.internal'])).csr });
  t.equal(again.status, 200, JSON.stringify(again.body));
  t.equal(again.body.status, 'valid');
  t.equal(again.headers.get('location'), url);
  await issuedOnce(t, client, again.body.certificate, certificateId, known);
  const final = (await client.post(url, '')).body;
  t.equal(final.status, 'valid');
  t.equal(final.certificate, again.body.certificate);
});

t.test('POST-as-GET of the issued order that failed to become valid: valid with the certificate issued', async (t) => {
  const { client, url, certificateId, known } = await issuedButProcessing(t, 'u.example.internal');
  const order = await client.post(url, '');
  t.equal(order.status, 200);
  t.equal(order.body.status, 'valid', JSON.stringify(order.body));
  await issuedOnce(t, client, order.body.certificate, certificateId, known);
});

t.test(
  'finalize with another CSR of an order put back to ready after its certificate was issued: the order is that certificate',
  async (t) => {
    const { client, url, order, certificateId, known } = await issuedButProcessing(t, 'v.example.internal');
    // As a finalize whose issuing commit's reply was lost leaves it: back to ready, its Idempotency-Key naming the certificate.
    await prisma.acmeOrder.update({ where: { id: idOf(url) }, data: { status: 'ready' } });
    const other = await client.post(order.finalize, { csr: (await csrFor(['v.example.internal'])).csr });
    t.equal(other.status, 403, JSON.stringify(other.body));
    t.match(other.body, { type: 'urn:ietf:params:acme:error:orderNotReady', detail: /another CSR/ });
    const final = (await client.post(url, '')).body;
    t.equal(final.status, 'valid', 'the order is valid, not ready for a second certificate');
    await issuedOnce(t, client, final.certificate, certificateId, known);
  },
);

t.test('an order whose finalize died before issuing: refused while the claim is fresh, finalized once it is stale', async (t) => {
  const client = await account();
  const { url, order } = await client.readyOrder(['w.example.internal'], responder.tokens);
  const before = await prisma.certificate.count({ where: { issuerId: caId } });
  const csr = (await csrFor(['w.example.internal'])).csr;
  // As a finalize that claimed the order and died (a Lambda timeout, a killed worker) leaves it: nothing issued.
  const claimedAt = new Date();
  await prisma.acmeOrder.update({ where: { id: idOf(url) }, data: { status: 'processing', processingSince: claimedAt } });
  const fresh = await client.post(order.finalize, { csr });
  t.equal(fresh.status, 403, JSON.stringify(fresh.body));
  t.match(fresh.body, { type: 'urn:ietf:params:acme:error:orderNotReady', detail: /being finalized/ });

  await prisma.acmeOrder.update({
    where: { id: idOf(url) },
    data: { processingSince: new Date(claimedAt.getTime() - ORDER_CLAIM_STALE_MS - 1000) },
  });
  const retried = await client.post(order.finalize, { csr });
  t.equal(retried.status, 200, JSON.stringify(retried.body));
  t.equal(retried.body.status, 'valid');
  t.ok(retried.body.certificate, 'with its certificate');
  t.equal(await prisma.certificate.count({ where: { issuerId: caId } }), before + 1, 'one certificate issued');
  t.equal((await client.post(retried.body.certificate, '')).status, 200, 'the account downloads it');
});

t.test('a stale claim of an expired order is not taken again: its Idempotency-Key may be gone', async (t) => {
  const client = await account();
  const { url, order } = await client.readyOrder(['x.example.internal'], responder.tokens);
  const before = await prisma.certificate.count({ where: { issuerId: caId } });
  const past = new Date(Date.now() - ORDER_CLAIM_STALE_MS - 1000);
  await prisma.acmeOrder.update({ where: { id: idOf(url) }, data: { status: 'processing', processingSince: past, expiresAt: past } });
  const refused = await client.post(order.finalize, { csr: (await csrFor(['x.example.internal'])).csr });
  t.equal(refused.status, 403, JSON.stringify(refused.body));
  t.match(refused.body, { type: 'urn:ietf:params:acme:error:orderNotReady' });
  t.equal(await prisma.certificate.count({ where: { issuerId: caId } }), before, 'nothing issued');
});

/** A new account's order for `names`: its first authorization, that authorization's challenges, its http-01 one and another. */
async function orderChallenges(names: string[]) {
  const client = await account();
  const created = await client.newOrder(names);
  const authorization = created.body.authorizations[0] as string;
  const challenges = (await client.post(authorization, '')).body.challenges as { type: string; url: string; token: string }[];
  const http = challenges.find((item) => item.type === 'http-01')!;
  const other = challenges.find((item) => item.type !== 'http-01')!;
  return { client, orderUrl: created.headers.get('location')!, authorization, http, other };
}

/** A new order's http-01 challenge, answered by the responder, and left processing as a validator that died leaves it. */
async function challengeLeftProcessing(name: string, claimedAt: Date) {
  const { client, orderUrl, authorization, http } = await orderChallenges([name]);
  responder.tokens.set(http.token, client.keyAuthorization(http.token));
  await prisma.acmeChallenge.update({ where: { id: idOf(http.url) }, data: { status: 'processing', processingSince: claimedAt } });
  return { client, orderUrl, authorization, challengeUrl: http.url };
}

const staleClaimTime = () => new Date(Date.now() - CHALLENGE_CLAIM_STALE_MS - 1000);

t.test('a challenge whose validator died: left alone while the claim is fresh, validated by the next POST once stale', async (t) => {
  const { client, orderUrl, authorization, challengeUrl } = await challengeLeftProcessing('c1.example.internal', new Date());
  const fresh = await client.post(challengeUrl, {});
  t.equal(fresh.status, 200);
  t.equal(fresh.body.status, 'processing', "a fresh claim is its validator's");
  t.equal(fresh.headers.get('retry-after'), '2', 'with Retry-After');
  t.equal((await client.post(authorization, '')).body.status, 'pending', 'a poll leaves a fresh claim alone');

  await prisma.acmeChallenge.update({ where: { id: idOf(challengeUrl) }, data: { processingSince: staleClaimTime() } });
  const retried = await client.post(challengeUrl, {});
  t.equal(retried.status, 200);
  t.equal(retried.body.status, 'valid', `validated again (${JSON.stringify(retried.body)})`);
  t.equal((await client.post(authorization, '')).body.status, 'valid', 'the authorization is valid');
  t.equal((await client.post(orderUrl, '')).body.status, 'ready', 'the order is ready');
});

t.test('a poll of the authorization validates its challenge whose claim is stale (certbot and lego poll it)', async (t) => {
  const { client, orderUrl, authorization, challengeUrl } = await challengeLeftProcessing('c2.example.internal', staleClaimTime());
  const polled = await client.post(authorization, '');
  t.equal(polled.status, 200);
  t.equal(polled.body.status, 'valid', `the poll validated it (${JSON.stringify(polled.body)})`);
  t.equal((await client.post(challengeUrl, '')).body.status, 'valid', 'the challenge is valid');
  t.equal((await client.post(orderUrl, '')).body.status, 'ready', 'the order is ready');
});

t.test('a validation whose claim was taken over meanwhile writes no outcome: the claim holder decides', async (t) => {
  const { client, authorization, challengeUrl } = await challengeLeftProcessing('c3.example.internal', new Date());
  await prisma.acmeChallenge.update({ where: { id: idOf(challengeUrl) }, data: { status: 'pending', processingSince: null } });
  takeOverClaimOf = idOf(challengeUrl);
  const answered = await client.post(challengeUrl, {});
  t.equal(takeOverClaimOf, null, 'the claim was taken over');
  t.equal(answered.status, 200);
  t.equal(answered.body.status, 'processing', "the answer is the holder's claim, not this validation's outcome");
  const stored = await prisma.acmeChallenge.findUniqueOrThrow({ where: { id: idOf(challengeUrl) } });
  t.equal(stored.status, 'processing', 'no outcome written');
  t.equal(stored.validatedAt, null);
  t.equal((await client.post(authorization, '')).body.status, 'pending', 'the authorization is untouched');
});

t.test('an outcome written after another challenge decided the authorization leaves the authorization and order alone', async (t) => {
  const { client, orderUrl, authorization, http, other: winner } = await orderChallenges(['c4.example.internal', 'c5.example.internal']);
  // Its key authorization is not served: this validation fails, after the other challenge made the authorization valid.
  decideOnClaimOf = { challenge: idOf(http.url), winner: idOf(winner.url), authorization: idOf(authorization) };
  const answered = await client.post(http.url, {});
  t.equal(decideOnClaimOf, null, 'the other challenge decided meanwhile');
  t.equal(answered.body.status, 'invalid', 'this challenge failed');
  t.equal((await client.post(authorization, '')).body.status, 'valid', "the authorization is the other challenge's");
  t.equal((await client.post(orderUrl, '')).body.status, 'pending', 'the order is not made invalid by the later outcome');
});

t.test('a poll with two stale challenges of one authorization validates until one decides it: order and authorization agree', async (t) => {
  const { client, orderUrl, authorization, http, other: failing } = await orderChallenges(['c6.example.internal', 'c7.example.internal']);
  // Nothing answers the other challenge here.
  responder.tokens.set(http.token, client.keyAuthorization(http.token));
  for (const challenge of [http, failing]) {
    await prisma.acmeChallenge.update({
      where: { id: idOf(challenge.url) },
      data: { status: 'processing', processingSince: staleClaimTime() },
    });
  }
  const polled = await client.post(authorization, '');
  t.equal(polled.status, 200);
  const statuses = new Map((polled.body.challenges as { url: string; status: string }[]).map((item) => [item.url, item.status]));
  const order = (await client.post(orderUrl, '')).body;
  if (polled.body.status === 'valid') {
    t.equal(statuses.get(http.url), 'valid', 'made valid by its http-01 challenge');
    t.equal(statuses.get(failing.url), 'processing', 'the other was not validated after it');
    t.equal(order.status, 'pending', 'the order waits for its second name');
  } else {
    t.equal(polled.body.status, 'invalid', `decided either way (${JSON.stringify(polled.body)})`);
    t.equal(statuses.get(failing.url), 'invalid', 'made invalid by the failing challenge');
    t.equal(statuses.get(http.url), 'processing', 'the other was not validated after it');
    t.equal(order.status, 'invalid', 'the order with it');
  }
});
