/** Shared setup of the billing tests: the price catalog they write expected amounts from, and CA rows. */
import { randomUUID } from 'node:crypto';
import type { Db } from '../../src/db/database.ts';

/**
 * Prices the expected amounts in the tests are worked out from by hand:
 * 3.6 per CA hour = 0.001 per second; prepaid 2000 a month, 20000 a year; certificates: the 1st..600th of a
 * domain's month 0.05, later ones 0.03.
 */
export const BILLING_ENV = {
  BILLING_CURRENCY: 'CNY',
  BILLING_CA_PRICE_PER_HOUR: '3.6',
  BILLING_CA_PRICE_PER_MONTH: '2000',
  BILLING_CA_PRICE_PER_YEAR: '20000',
  BILLING_CERTIFICATE_PRICES: '0.05:600,0.03',
};

export const utc = (iso: string) => new Date(`${iso}Z`);

export async function insertCa(
  db: Db,
  domainId: string,
  fields: { type?: 'ROOT' | 'SUBORDINATE'; status?: string; chargingMode?: number; freeQuota?: number; issuerId?: string } = {},
) {
  return db.certificateAuthority.create({
    data: {
      id: randomUUID(),
      domainId,
      type: fields.type ?? 'ROOT',
      status: fields.status ?? 'ACTIVED',
      chargingMode: fields.chargingMode ?? 1,
      freeQuota: fields.freeQuota ?? 0,
      issuerId: fields.issuerId ?? null,
      commonName: 'billing test',
    },
  });
}
