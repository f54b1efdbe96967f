/**
 * The CA quota under concurrent creation on a real Postgres (where transactions truly overlap): however the
 * creations interleave, a domain never holds more CAs than its quota, and every CA that was answered is stored.
 */
import t from 'tap';
import { createTestAppOnRealPostgres } from '../helpers/app.ts';
import { realPostgresOrSkipFile } from '../helpers/database.ts';

const QUOTA = 3;
const harness = await createTestAppOnRealPostgres(await realPostgresOrSkipFile(t), { env: { CA_QUOTA: String(QUOTA) } });
t.teardown(() => harness.close());
const CA = '/v1/private-certificate-authorities';
const DOMAIN = 'c0ffee00c0ffee00c0ffee00c0ffee00';

const createRoot = (index: number) =>
  harness.app.inject({
    method: 'POST',
    url: CA,
    headers: harness.auth(DOMAIN),
    payload: {
      type: 'ROOT',
      key_algorithm: 'EC256',
      signature_algorithm: 'SHA256',
      distinguished_name: {
        common_name: `quota-race-${index}`,
        country: 'CN',
        state: 'zhejiang',
        locality: 'hangzhou',
        organization: 'race',
        organizational_unit: 'pki',
      },
      validity: { type: 'YEAR', value: 1 },
    },
  });

t.test(`12 concurrent creations under a quota of ${QUOTA}: never more than ${QUOTA} stored, each answered CA stored`, async (t) => {
  const responses = await Promise.all(Array.from({ length: 12 }, (_, index) => createRoot(index)));
  const created = responses.filter((response) => response.statusCode === 200).map((response) => response.json().ca_id as string);
  const refused = responses.filter((response) => response.statusCode !== 200);
  for (const response of refused) {
    // The quota refusal, or a transaction that waited past its limit on this loaded machine (then retried by clients).
    t.ok(
      (response.statusCode === 400 && /quota/.test(response.json().error_msg)) || response.statusCode === 503,
      `refused as the quota or a busy database: ${response.statusCode} ${response.body}`,
    );
  }
  const stored = await harness.database.prisma.certificateAuthority.findMany({ where: { domainId: DOMAIN }, select: { id: true } });
  t.ok(created.length >= 1 && created.length <= QUOTA, `${created.length} created, at most ${QUOTA}`);
  t.same(stored.map((row) => row.id).sort(), [...created].sort(), 'exactly the answered CAs are stored');
  const quota = await harness.app.inject({ method: 'GET', url: `${CA}/quotas`, headers: harness.auth(DOMAIN) });
  t.same(quota.json(), { quotas: { resources: [{ type: 'CERTIFICATE_AUTHORITY', used: created.length, quota: QUOTA }] } });
  if (refused.every((response) => response.statusCode !== 503)) t.equal(created.length, QUOTA, 'with no busy refusal, the quota is filled');
});
