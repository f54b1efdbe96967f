/**
 * Amounts at the widest prices the catalog takes (12 integer and 8 fraction digits): a prepaid order of 1,200
 * years and the summary's total over two of them are exact to the last fraction digit (§8 "computed exactly in
 * decimal"), where a Decimal product or sum would keep 20 significant digits only.
 */
import t from 'tap';
import { createTestApp, OTHER_DOMAIN } from '../helpers/app.ts';
import { BILLING_ENV, insertCa, utc } from './support.ts';

const YEARLY = '123456789012.12345678';
const harness = await createTestApp({ env: { ...BILLING_ENV, BILLING_CA_PRICE_PER_YEAR: YEARLY } });
t.teardown(() => harness.close());
const db = harness.database.prisma;
const { hooks, records } = harness.app.services.billing;

t.test('a 1,200-year order at a 20-digit yearly price, and the total of two, to the last digit', async (t) => {
  const at = utc('2026-03-01T00:00:00');
  const amounts: string[] = [];
  for (let order = 0; order < 2; order++) {
    const ca = await insertCa(db, OTHER_DOMAIN, { chargingMode: 0, status: 'PENDING' });
    await db.$transaction((tx) =>
      hooks.recordPrepaidOrder(tx, { caId: ca.id, domainId: OTHER_DOMAIN, periodType: 3, periodNum: 1200, at }),
    );
    const record = await db.billingRecord.findUniqueOrThrow({ where: { uniqueKey: `CA_PREPAID:${ca.id}` } });
    amounts.push(record.amount.toFixed());
  }
  t.same(amounts, ['148148146814548.148136', '148148146814548.148136'], '123456789012.12345678 × 1200, not rounded to 20 digits');
  const summary = await records.summary({ domainId: OTHER_DOMAIN, actor: 'test', requestId: 'r' }, {});
  t.equal(summary.total_amount, '296296293629096.296272');
  t.match(summary.totals, [{ usage_type: 'CA_PREPAID', record_count: 2, amount: '296296293629096.296272' }], 'as Postgres sums it');
});
