// Fast unit tests of revocation rules: reason codes, statuses that revoke or sign, serial forms, CRL timing.
import t from 'tap';
import { ErrorCode } from '../../src/errors.ts';
import { refusal } from './support.ts';
import { REVOKE_REASONS } from '../revocation/support.ts';
import {
  CRL_VALID_DAYS,
  DEFAULT_CRL_VALID_DAYS,
  canonicalSerialHex,
  crlCacheControl,
  crlValidityMs,
  isCrlDue,
  isCrlUnusable,
  isRevokingStatus,
  isSigningStatus,
  reasonCodeOf,
} from '../../src/services/revocation/revocation-rules.ts';

const DAY = 86_400_000;
const now = new Date(Date.UTC(2026, 5, 1));
const ago = (ms: number) => new Date(now.getTime() - ms);
const later = (ms: number) => new Date(now.getTime() + ms);

t.test('reason names map to RFC 5280 CRLReason codes; none is unspecified', async (t) => {
  t.equal(reasonCodeOf(undefined), 0);
  t.same(REVOKE_REASONS.map(reasonCodeOf), [0, 1, 2, 3, 4, 5, 6, 9, 10]);
});

t.test('an unknown reason is a 400 that lists the accepted ones', async (t) => {
  for (const reason of ['REMOVE_FROM_CRL', 'key_compromise', '', 'toString']) {
    t.match(
      refusal(() => reasonCodeOf(reason)),
      {
        status: 400,
        code: ErrorCode.InvalidParameter,
        message: /UNSPECIFIED, KEY_COMPROMISE, CERTIFICATE_AUTHORITY_COMPROMISE, .*ATTRIBUTE_AUTHORITY_COMPROMISE$/,
      },
      reason,
    );
  }
});

t.test('revocations are accepted only while the issuer is ACTIVED, DISABLED or EXPIRED', async (t) => {
  for (const status of ['ACTIVED', 'DISABLED', 'EXPIRED']) t.ok(isRevokingStatus(status), status);
  for (const status of ['PENDING', 'DELETED', 'actived', '']) t.notOk(isRevokingStatus(status), status);
});

t.test('a CA signs CRLs and OCSP answers in the revoking statuses and while DELETED', async (t) => {
  for (const status of ['ACTIVED', 'DISABLED', 'EXPIRED', 'DELETED']) t.ok(isSigningStatus(status), status);
  for (const status of ['PENDING', 'deleted', '']) t.notOk(isSigningStatus(status), status);
});

t.test('serials compare as lowercase unsigned hex without leading zero octets', async (t) => {
  t.equal(canonicalSerialHex('00AB:CD'), 'abcd');
  t.equal(canonicalSerialHex('0000ff'), 'ff');
  t.equal(canonicalSerialHex('abc'), '0abc', 'odd length gets a leading nibble, which is kept');
  t.equal(canonicalSerialHex('00'), '00');
  t.equal(canonicalSerialHex('0000'), '00');
  t.equal(canonicalSerialHex(''), '00');
  t.equal(canonicalSerialHex('0100'), '0100', 'zero octets inside or at the end stay');
  t.equal(canonicalSerialHex('7F 00'), '7f00');
});

t.test('CRL validity is the configured days, 7 by default', async (t) => {
  t.same(CRL_VALID_DAYS, { min: 7, max: 30 });
  t.equal(DEFAULT_CRL_VALID_DAYS, 7);
  t.equal(crlValidityMs(null), 7 * DAY);
  t.equal(crlValidityMs(30), 30 * DAY);
});

t.test('a CRL is due when none exists, a revocation waits, or half its validity has passed', async (t) => {
  const latest = { thisUpdate: ago(2 * DAY), nextUpdate: later(2 * DAY) }; // half-life is now
  t.ok(isCrlDue({ crlStaleSince: null, latest: null }, now));
  t.ok(isCrlDue({ crlStaleSince: ago(1), latest: { thisUpdate: ago(1000), nextUpdate: later(10 * DAY) } }, now));
  t.ok(isCrlDue({ crlStaleSince: null, latest }, now), 'exactly at half-life');
  t.notOk(isCrlDue({ crlStaleSince: null, latest }, ago(1)), 'just before half-life');
  t.notOk(isCrlDue({ crlStaleSince: null, latest: { thisUpdate: ago(DAY), nextUpdate: later(5 * DAY) } }, now));
});

t.test('the stored CRL is unusable when none exists, a revocation waits, or nextUpdate has come', async (t) => {
  const fresh = { thisUpdate: ago(DAY), nextUpdate: later(1) };
  t.ok(isCrlUnusable({ crlStaleSince: null, latest: null }, now));
  t.ok(isCrlUnusable({ crlStaleSince: ago(1), latest: fresh }, now));
  t.notOk(isCrlUnusable({ crlStaleSince: null, latest: fresh }, now));
  t.ok(isCrlUnusable({ crlStaleSince: null, latest: { thisUpdate: ago(DAY), nextUpdate: now } }, now), 'at nextUpdate');
});

t.test('Cache-Control counts whole seconds to nextUpdate, never negative', async (t) => {
  t.equal(crlCacheControl(later(90_999), now), 'public, max-age=90');
  t.equal(crlCacheControl(now, now), 'public, max-age=0');
  t.equal(crlCacheControl(ago(5000), now), 'public, max-age=0');
});
