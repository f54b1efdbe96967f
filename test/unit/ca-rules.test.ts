// Fast unit tests of the CA hierarchy rules: validity windows, derived status, checks, path lengths, URLs.
import t from 'tap';
import { ErrorCode } from '../../src/errors.ts';
import { PREPAID_GRACE_MS, PREPAID_RETENTION_MS } from '../../src/services/billing/prepaid.ts';
import {
  caKeyUsages,
  checkCaType,
  checkKeyAlgorithm,
  checkSignatureAlgorithm,
  checkStoredValidity,
  checkSubordinatePathLength,
  effectiveStatus,
  existingCa,
  publicUrls,
  requireStatus,
  validityWindow,
} from '../../src/services/ca/ca-rules.ts';
import { refusal } from './support.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const now = new Date(Date.UTC(2026, 0, 31, 12)); // 31 January: month arithmetic shows
const invalidValidity = (message: RegExp) => ({ status: 400, code: ErrorCode.InvalidValidity, message });

t.test('validity periods: calendar years, 31-day months, days and hours from now', async (t) => {
  t.same(validityWindow({ type: 'YEAR', value: 2 }, now, 20), { notBefore: now, notAfter: new Date(Date.UTC(2028, 0, 31, 12)) });
  t.same(validityWindow({ type: 'MONTH', value: 1 }, now, 20).notAfter, new Date(now.getTime() + 31 * DAY));
  t.same(validityWindow({ type: 'DAY', value: 3 }, now, 20).notAfter, new Date(now.getTime() + 3 * DAY));
  t.same(validityWindow({ type: 'HOUR', value: 5 }, now, 20).notAfter, new Date(now.getTime() + 5 * HOUR));
  const leap = new Date(Date.UTC(2028, 1, 29));
  // 12 calendar months end on the month's last day where it has no 29th (Java's plusYears, and the prepaid periods).
  t.same(validityWindow({ type: 'YEAR', value: 1 }, leap, 20).notAfter, new Date(Date.UTC(2029, 1, 28)), '29 Feb + 1 year');
  t.same(validityWindow({ type: 'YEAR', value: 4 }, leap, 20).notAfter, new Date(Date.UTC(2032, 1, 29)), '29 Feb + 4 years');
});

t.test('start_from moves the start; up to 5 minutes in the past is tolerated', async (t) => {
  const start = now.getTime() + DAY;
  t.same(validityWindow({ type: 'DAY', value: 1, start_from: start }, now, 20), {
    notBefore: new Date(start),
    notAfter: new Date(start + DAY),
  });
  const recent = now.getTime() - 5 * 60_000 + 1;
  t.same(
    validityWindow({ type: 'HOUR', value: 1, start_from: recent }, now, 20),
    { notBefore: new Date(recent - 1), notAfter: new Date(recent - 1 + HOUR) },
    'taken down to its whole second, as the certificate states it',
  );
  const late = new Date(now.getTime() + 999);
  t.same(validityWindow({ type: 'DAY', value: 1 }, late, 20), { notBefore: now, notAfter: new Date(now.getTime() + DAY) }, "now's too");
  t.same(validityWindow({ type: 'HOUR', value: 1, start_from: null }, now, 20).notBefore, now);
  t.match(
    refusal(() => validityWindow({ type: 'HOUR', value: 1, start_from: now.getTime() - 5 * 60_000 }, now, 20)),
    invalidValidity(/later than now minus 5 minutes/),
  );
  t.match(
    refusal(() => validityWindow({ type: 'HOUR', value: 1, start_from: 1.5 }, now, 20)),
    invalidValidity(/milliseconds since the epoch/),
  );
});

t.test('a window past 9999-12-31 is refused: no certificate time can state it (RFC 5280 §4.1.2.5)', async (t) => {
  const last = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
  t.same(
    validityWindow({ type: 'HOUR', value: 1, start_from: last - HOUR }, now, 20).notAfter,
    new Date(last - 999),
    'ending on its last second',
  );
  t.match(
    refusal(() => validityWindow({ type: 'YEAR', value: 1, start_from: last - DAY }, now, 20)),
    invalidValidity(/before the year 10000/),
  );
  // Past 8.64e15 ms a Date is invalid; between, its year has five digits.
  for (const start_from of [last + 1, 8.64e15 + 1, Number.MAX_SAFE_INTEGER]) {
    t.match(
      refusal(() => validityWindow({ type: 'DAY', value: 1, start_from }, now, 20)),
      invalidValidity(/before the year 10000/),
      String(start_from),
    );
  }
});

t.test('a bad type, value or shape is PCA.00020109', async (t) => {
  t.match(
    refusal(() => validityWindow(null as never, now, 20)),
    invalidValidity(/must be an object/),
  );
  t.match(
    refusal(() => validityWindow('YEAR' as never, now, 20)),
    invalidValidity(/must be an object/),
  );
  t.match(
    refusal(() => validityWindow({ type: 'WEEK', value: 1 }, now, 20)),
    invalidValidity(/YEAR, MONTH, DAY or HOUR/),
  );
  for (const value of [0, -1, 1.5, Number.NaN, 2 ** 53]) {
    t.match(
      refusal(() => validityWindow({ type: 'DAY', value }, now, 20)),
      invalidValidity(/integer of at least 1/),
      String(value),
    );
  }
});

t.test('the period may reach but not pass maxYears calendar years', async (t) => {
  t.same(validityWindow({ type: 'YEAR', value: 20 }, now, 20).notAfter, new Date(Date.UTC(2046, 0, 31, 12)));
  t.match(
    refusal(() => validityWindow({ type: 'YEAR', value: 21 }, now, 20)),
    invalidValidity(/exceeds 20 years/),
  );
  t.match(
    refusal(() => validityWindow({ type: 'MONTH', value: 236 }, now, 20)),
    invalidValidity(/exceeds 20 years/),
    '236 × 31 days > 20 years',
  );
  t.ok(validityWindow({ type: 'MONTH', value: 235 }, now, 20), '235 × 31 days < 20 years');
  t.match(
    refusal(() => validityWindow({ type: 'HOUR', value: 20 * 24 * 366 + 1 }, now, 20)),
    invalidValidity(/exceeds 20 years/),
  );
  t.match(
    refusal(() => validityWindow({ type: 'YEAR', value: 1e15 }, now, 30)),
    invalidValidity(/exceeds 30 years/),
    'absurd values do not overflow Date',
  );
  const days = Math.floor((Date.UTC(2046, 0, 31, 12) - now.getTime()) / DAY);
  t.ok(validityWindow({ type: 'DAY', value: days }, now, 20));
  t.match(
    refusal(() => validityWindow({ type: 'DAY', value: days + 1 }, now, 20)),
    invalidValidity(/exceeds 20 years/),
  );
});

t.test("the period ends no later than the issuer's not_after", async (t) => {
  const issuerEnd = new Date(now.getTime() + 10 * DAY);
  t.same(validityWindow({ type: 'DAY', value: 10 }, now, 20, issuerEnd).notAfter, issuerEnd);
  t.match(
    refusal(() => validityWindow({ type: 'HOUR', value: 10 * 24 + 1 }, now, 20, issuerEnd)),
    invalidValidity(/issuer's not_after \(2026-02-10T12:00:00.000Z\)/),
  );
});

/** The part of Prisma's where-clause language existingCa speaks (null, gt, AND, OR), applied to one row. */
type Row = Record<string, Date | null>;
function matches(row: Row, where: Record<string, unknown>): boolean {
  return Object.entries(where).every(([key, condition]) => {
    if (key === 'AND') return (condition as Record<string, unknown>[]).every((part) => matches(row, part));
    if (key === 'OR') return (condition as Record<string, unknown>[]).some((part) => matches(row, part));
    if (condition === null) return row[key] === null;
    const { gt } = condition as { gt: Date };
    return row[key] !== null && row[key]!.getTime() > gt.getTime();
  });
}

t.test('existingCa: not removed, no deletion time or one still ahead, and a paid period not past its retention', async (t) => {
  const kept: Row = { removedAt: null, deleteTime: null, prepaidUntil: null };
  const where = existingCa(now) as Record<string, unknown>;
  const at = (offset: number) => new Date(now.getTime() + offset);
  t.ok(matches(kept, where), 'a plain CA exists');
  t.notOk(matches({ ...kept, removedAt: at(-HOUR) }, where), 'a removed CA does not');
  t.ok(matches({ ...kept, deleteTime: at(1) }, where), 'a deletion still ahead: it exists');
  t.notOk(matches({ ...kept, deleteTime: now }, where), 'from delete_time on it does not');
  const released = -(PREPAID_GRACE_MS + PREPAID_RETENTION_MS);
  t.ok(matches({ ...kept, prepaidUntil: at(released + 1) }, where), 'a paid period within grace and retention: it exists');
  t.notOk(matches({ ...kept, prepaidUntil: at(released) }, where), 'once grace and retention are over it does not');
  t.notOk(matches({ ...kept, deleteTime: at(DAY), prepaidUntil: at(released) }, where), 'both conditions hold, not either');
});

t.test('ACTIVED and DISABLED read EXPIRED from not_after on; other statuses stay', async (t) => {
  const notAfter = now;
  t.equal(effectiveStatus({ status: 'ACTIVED', notAfter }, now), 'EXPIRED');
  t.equal(effectiveStatus({ status: 'DISABLED', notAfter }, new Date(now.getTime() + 1)), 'EXPIRED');
  t.equal(effectiveStatus({ status: 'ACTIVED', notAfter }, new Date(now.getTime() - 1)), 'ACTIVED');
  t.equal(effectiveStatus({ status: 'DISABLED', notAfter: null }, now), 'DISABLED');
  t.equal(effectiveStatus({ status: 'PENDING', notAfter }, now), 'PENDING');
  t.equal(effectiveStatus({ status: 'DELETED', notAfter }, now), 'DELETED');
});

t.test('algorithm and type checks return the value or name the accepted ones', async (t) => {
  t.equal(checkKeyAlgorithm('EC256'), 'EC256');
  t.match(
    refusal(() => checkKeyAlgorithm('EC999')),
    { status: 400, code: ErrorCode.InvalidKeyAlgorithm, message: /^key_algorithm must be one of RSA2048, .*EC256/ },
  );
  t.match(
    refusal(() => checkKeyAlgorithm(undefined, 'csr key')),
    { message: /^csr key must be one of/ },
  );
  t.equal(checkSignatureAlgorithm('SHA384'), 'SHA384');
  t.match(
    refusal(() => checkSignatureAlgorithm('MD5')),
    { status: 400, code: ErrorCode.InvalidSignatureAlgorithm, message: /^signature_algorithm must be one of SHA256, SHA384, SHA512$/ },
  );
  t.match(
    refusal(() => checkSignatureAlgorithm('MD5', 'alg')),
    { message: /^alg must be one of/ },
  );
  t.equal(checkCaType('ROOT'), 'ROOT');
  t.equal(checkCaType('SUBORDINATE'), 'SUBORDINATE');
  t.match(
    refusal(() => checkCaType('LEAF')),
    { status: 400, code: ErrorCode.InvalidCaType, message: 'type must be ROOT or SUBORDINATE' },
  );
});

t.test('requireStatus refuses CSR-issued CAs and statuses outside the allowed ones', async (t) => {
  t.equal(requireStatus({ genMode: 'GENERATE' }, 'ACTIVED', ['ACTIVED', 'DISABLED'], 'disable'), undefined);
  t.equal(requireStatus({ genMode: null }, 'DISABLED', ['ACTIVED', 'DISABLED'], 'disable'), undefined);
  t.match(
    refusal(() => requireStatus({ genMode: 'CSR' }, 'ACTIVED', ['ACTIVED'], 'disable')),
    { status: 400, code: ErrorCode.InvalidParameter, message: 'disable is not possible for a CA issued from a CSR' },
  );
  t.match(
    refusal(() => requireStatus({ genMode: null }, 'PENDING', ['ACTIVED', 'DISABLED'], 'enable')),
    { status: 400, code: ErrorCode.InvalidParameter, message: 'enable is not possible in status PENDING (needs ACTIVED or DISABLED)' },
  );
});

t.test("a subordinate path length is 0-6 and below its issuer's", async (t) => {
  t.equal(checkSubordinatePathLength(undefined, 7), 0);
  t.equal(checkSubordinatePathLength(null, 1), 0);
  t.equal(checkSubordinatePathLength(6, 7), 6);
  t.equal(checkSubordinatePathLength(2, 3), 2);
  for (const value of [-1, 7, 1.5]) {
    t.match(
      refusal(() => checkSubordinatePathLength(value, 7)),
      { status: 400, code: ErrorCode.InvalidPathLength, message: 'path_length must be 0-6' },
      String(value),
    );
  }
  t.match(
    refusal(() => checkSubordinatePathLength(3, 3)),
    { code: ErrorCode.InvalidPathLength, message: "path_length must be below the issuer's path_length 3" },
  );
  t.match(
    refusal(() => checkSubordinatePathLength(0, 0)),
    { code: ErrorCode.InvalidPathLength, message: 'the issuer has path_length 0 and cannot sign a CA' },
  );
});

t.test('a CA keeps keyCertSign and cRLSign whatever else was asked, once each, and no bit its key cannot use', async (t) => {
  t.same(caKeyUsages(undefined, 'EC'), ['digitalSignature', 'keyCertSign', 'cRLSign']);
  t.same(caKeyUsages([], 'RSA'), ['digitalSignature', 'keyCertSign', 'cRLSign']);
  t.same(caKeyUsages(['nonRepudiation'], 'EC'), ['nonRepudiation', 'keyCertSign', 'cRLSign']);
  t.same(caKeyUsages(['cRLSign', 'keyCertSign'], 'EC'), ['cRLSign', 'keyCertSign']);
  t.same(
    caKeyUsages(['digitalSignature'], 'EC'),
    ['digitalSignature', 'keyCertSign', 'cRLSign'],
    'an Istio CSR asking digitalSignature only',
  );
  t.same(caKeyUsages(['keyEncipherment', 'dataEncipherment'], 'EC'), ['keyCertSign', 'cRLSign'], 'no encipherment on an EC key (RFC 8813)');
  t.same(caKeyUsages(['keyEncipherment', 'keyAgreement'], 'RSA'), ['keyEncipherment', 'keyCertSign', 'cRLSign'], 'no key agreement on RSA');
});

t.test('public URLs of a CA', async (t) => {
  t.equal(publicUrls.caCertificate('https://pki.example', 'c1'), 'https://pki.example/ca/c1.crt');
  t.equal(publicUrls.crl('https://pki.example', 'c1'), 'https://pki.example/crl/c1.crl');
  t.equal(publicUrls.ocsp('https://pki.example', 'c1'), 'https://pki.example/ocsp/c1');
});

t.test('an imported CA certificate is stored only with a validity after 1950; chains are not held to it', async (t) => {
  const year = (y: number) => new Date(Date.UTC(y, 0, 1));
  for (const [notBefore, notAfter] of [
    [year(0), year(2030)],
    [year(1), year(2030)],
    [year(49), year(2030)],
    [year(1949), year(2030)],
    [year(2020), year(49)],
  ]) {
    t.throws(
      () => checkStoredValidity({ notBefore: notBefore!, notAfter: notAfter! }),
      /validity must lie after 1950/,
      notBefore!.toISOString(),
    );
  }
  t.doesNotThrow(() => checkStoredValidity({ notBefore: year(1950), notAfter: year(9999) }));
});
