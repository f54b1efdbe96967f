/** The validity an ACME certificate is issued with (acmeValidity): the policy's days, or what the CA has left. */
import t from 'tap';
import { acmeValidity, DEFAULT_ACME_VALIDITY_DAYS } from '../../src/services/acme/acme-policy.ts';

const withMaximum = (max_validity_days: number | null) => ({ enabled: true, allowed_identifiers: null, max_validity_days });

const HOUR = 3_600_000;
const now = new Date('2026-12-06T00:00:00Z');
const caEndingIn = (ms: number) => new Date(now.getTime() + ms);

t.test("the policy's days while the CA outlives them, the default without a maximum", async (t) => {
  t.same(acmeValidity(withMaximum(30), caEndingIn(31 * 24 * HOUR), now), { type: 'DAY', value: 30 });
  t.same(acmeValidity(withMaximum(null), caEndingIn(400 * 24 * HOUR), now), { type: 'DAY', value: DEFAULT_ACME_VALIDITY_DAYS });
  t.same(acmeValidity(withMaximum(30), null, now), { type: 'DAY', value: 30 });
});

t.test("whole hours up to the CA's end, a minute's margin kept; nothing under an hour", async (t) => {
  t.same(acmeValidity(withMaximum(30), caEndingIn(30 * 24 * HOUR), now), { type: 'HOUR', value: 30 * 24 - 1 });
  t.same(acmeValidity(withMaximum(null), caEndingIn(10 * 24 * HOUR + 30 * 60_000), now), { type: 'HOUR', value: 240 });
  t.same(acmeValidity(withMaximum(null), caEndingIn(HOUR + 60_000), now), { type: 'HOUR', value: 1 });
  t.equal(acmeValidity(withMaximum(null), caEndingIn(HOUR + 59_999), now), null);
  t.equal(acmeValidity(withMaximum(null), caEndingIn(-HOUR), now), null, 'an expired CA');
});
