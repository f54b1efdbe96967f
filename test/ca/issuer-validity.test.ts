/**
 * A CA issues only within its own validity. One dated to start later (validity.start_from) is ACTIVED at once but
 * signs nothing before its not_before: a certificate it signed earlier would end before its issuer is valid, or start
 * before it, and no chain would verify. Once past its not_after it is EXPIRED, and every issuing route says so.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { ManualClock } from '../../src/clock.ts';
import { createTestApp } from '../helpers/app.ts';
import { CA, DN, assertError, client } from './support.ts';
import { KEY_ARGS, opensslCsr, scratch } from '../certificates/support.ts';

const DAY = 86_400_000;
const clock = new ManualClock();
const harness = await createTestApp({ clock });
t.teardown(() => harness.close());
const api = client(harness);
const dir = await scratch('issuer-validity');

const rootId = await api.root();
const startsAt = clock.now().getTime() + DAY;
/** What the CA's certificate states, and the API shows: whole seconds. */
const statedStart = startsAt - (startsAt % 1000);
const laterId = await api.subordinate(rootId, { validity: { type: 'DAY', value: 60, start_from: startsAt }, path_length: 1 });
const { csr } = await opensslCsr(dir, 'leaf', [...KEY_ARGS.p256], ['-subj', '/CN=leaf.example.com']);
/** A certificate with a server-made key, one from a CSR and a subordinate, all under the later CA. */
const issueAll = (validity: Record<string, unknown> = { type: 'DAY', value: 10 }, name = 'below-later') =>
  Promise.all([
    api.call('POST', '/v1/private-certificates', { issuer_id: laterId, distinguished_name: { common_name: 'leaf' }, validity }),
    api.call('POST', '/v1/private-certificates/csr', { issuer_id: laterId, csr, validity }),
    api.call('POST', CA, {
      type: 'SUBORDINATE',
      issuer_id: laterId,
      distinguished_name: { ...DN, common_name: name },
      key_algorithm: 'EC256',
      signature_algorithm: 'SHA256',
      validity,
    }),
  ]);

t.test('before its not_before it is ACTIVED but refuses certificates, CSRs and subordinates', async (t) => {
  const shown = (await api.call('GET', `${CA}/${laterId}`)).body;
  t.equal(shown.status, 'ACTIVED');
  t.equal(shown.not_before, statedStart);
  for (const refused of await issueAll()) {
    assertError(t, refused, 400, 'PCA.00020001', new RegExp(`valid from ${new Date(statedStart).toISOString()}`));
  }
  t.equal((await api.call('GET', '/v1/private-certificates?limit=0')).body.total, 0, 'nothing issued');
});

t.test('from its not_before it issues, each certificate starting no earlier than it', async (t) => {
  clock.set(startsAt);
  const answers = await issueAll();
  t.same(
    answers.map((answer) => answer.status),
    [200, 200, 200],
    JSON.stringify(answers.map((answer) => answer.body)),
  );
  const leaf = (await api.call('GET', `/v1/private-certificates/${answers[0].body.certificate_id}`)).body;
  t.ok(leaf.not_before >= statedStart, 'the certificate starts with its issuer');
});

t.test("start_from's five minutes' tolerance does not date a child before its issuer's not_before", async (t) => {
  clock.set(startsAt + 60_000);
  const refusals = await issueAll({ type: 'DAY', value: 3, start_from: startsAt - 200_000 }, 'early-sub');
  for (const refused of refusals) {
    assertError(
      t,
      refused,
      400,
      'PCA.00020109',
      new RegExp(`no earlier than the issuer's not_before \\(${new Date(statedStart).toISOString()}`),
    );
  }
});

t.test('past its not_after every issuing route refuses it for its state, not for the validity asked', async (t) => {
  clock.set(startsAt + 61 * DAY);
  for (const refused of await issueAll()) {
    assertError(t, refused, 400, 'PCA.00020001', /status EXPIRED; it must be ACTIVED/);
  }
});

t.test("a validity's syntax is judged before the issuer's existence (§2)", async (t) => {
  assertError(
    t,
    await api.call('POST', '/v1/private-certificates', {
      issuer_id: randomUUID(),
      distinguished_name: { common_name: 'leaf' },
      validity: { type: 'YEAR', value: 25 },
    }),
    400,
    'PCA.00020109',
  );
});
