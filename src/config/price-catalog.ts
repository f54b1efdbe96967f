/**
 * The price catalog (§8 "Prices and currency are configured"), read from the environment by src/config.ts.
 * Prices are decimal strings with at most 8 fraction digits (the scale of billing_records.unit_price), so every
 * record's `amount = usage_amount × unit_price` is exact.
 *
 *   BILLING_CURRENCY            ISO 4217 code, default CNY
 *   BILLING_CA_PRICE_PER_HOUR   pay-per-use CA (charging_mode 1), default 3.6; billed per second, so the price
 *                               divided by 3600 must be exact at 8 decimals (3.6 -> 0.001 per second)
 *   BILLING_CA_PRICE_PER_MONTH  prepaid CA (charging_mode 0), per purchased month, default 2000
 *   BILLING_CA_PRICE_PER_YEAR   prepaid CA (charging_mode 0), per purchased year, default 20000
 *   BILLING_CERTIFICATE_PRICES  per issued certificate, monthly volume tiers: `price[:upTo],...`, e.g.
 *                               `0.05:1000,0.04:10000,0.03` = the 1st..1000th certificate of a domain in a UTC
 *                               calendar month cost 0.05, the 1001st..10000th 0.04, the rest 0.03. Default 0.05.
 */

export interface CertificatePriceTier {
  /** The last certificate number of the month (1-based) this price applies to; null for the open last tier. */
  upTo: number | null;
  unitPrice: string;
}

export interface PriceCatalog {
  currency: string;
  /** Pay-per-use CA per hour, and the exact per-second price that CA_DURATION records carry. */
  caPricePerHour: string;
  caPricePerSecond: string;
  caPricePerMonth: string;
  caPricePerYear: string;
  /** Ascending `upTo`, the last tier open (upTo null). */
  certificateTiers: CertificatePriceTier[];
}

const SCALE = 8;
const PRICE_PATTERN = /^\d{1,12}(\.\d{1,8})?$/;

type Env = Record<string, string | undefined>;

/** A price as an integer count of 1e-8 units. */
function scaled(price: string): bigint {
  const [whole, fraction = ''] = price.split('.');
  return BigInt(whole + fraction.padEnd(SCALE, '0'));
}

function formatScaled(value: bigint): string {
  const digits = value.toString().padStart(SCALE + 1, '0');
  const fraction = digits.slice(-SCALE).replace(/0+$/, '');
  const whole = digits.slice(0, -SCALE);
  return fraction ? `${whole}.${fraction}` : whole;
}

/**
 * `price` × `count`, exact. A Decimal product keeps 20 significant digits, while a price alone may have 20 (12 + 8)
 * and a period count or a second count adds more.
 */
export function priceTimes(price: string, count: number): string {
  return formatScaled(scaled(price) * BigInt(count));
}

/** The exact sum of non-negative amounts of at most 8 fraction digits (as billing records store them). */
export function sumAmounts(amounts: readonly string[]): string {
  return formatScaled(amounts.reduce((sum, amount) => sum + scaled(amount), 0n));
}

function price(env: Env, name: string, fallback: string): string {
  const raw = env[name]?.trim() || fallback;
  if (!PRICE_PATTERN.test(raw)) throw new Error(`${name} must be a decimal price with at most 8 fraction digits, got '${raw}'`);
  return formatScaled(scaled(raw));
}

function perSecond(hourly: string): string {
  const value = scaled(hourly);
  if (value % 3600n !== 0n) {
    throw new Error(`BILLING_CA_PRICE_PER_HOUR / 3600 must be exact at 8 decimals (per-second billing), got '${hourly}'`);
  }
  return formatScaled(value / 3600n);
}

function certificateTiers(raw: string): CertificatePriceTier[] {
  const tiers = raw.split(',').map((part, index, parts): CertificatePriceTier => {
    const [unitPrice = '', upTo] = part.trim().split(':');
    if (!PRICE_PATTERN.test(unitPrice))
      throw new Error(`BILLING_CERTIFICATE_PRICES: '${unitPrice}' is not a decimal price with at most 8 fraction digits`);
    const last = index === parts.length - 1;
    if (last !== (upTo === undefined))
      throw new Error('BILLING_CERTIFICATE_PRICES: every tier but the last needs `:upTo`, the last must have none');
    const bound = upTo === undefined ? null : Number(upTo);
    if (bound !== null && (!Number.isSafeInteger(bound) || bound < 1))
      throw new Error(`BILLING_CERTIFICATE_PRICES: '${upTo}' is not a positive integer`);
    return { upTo: bound, unitPrice: formatScaled(scaled(unitPrice)) };
  });
  tiers.reduce((previous, tier) => {
    if (tier.upTo !== null && tier.upTo <= previous) throw new Error('BILLING_CERTIFICATE_PRICES: tier bounds must ascend');
    return tier.upTo ?? previous;
  }, 0);
  return tiers;
}

/** Throws an Error naming the variable; src/config.ts turns it into a ConfigError. */
export function loadPriceCatalog(env: Env): PriceCatalog {
  const currency = env.BILLING_CURRENCY?.trim() || 'CNY';
  if (!/^[A-Z]{3}$/.test(currency)) throw new Error(`BILLING_CURRENCY must be an ISO 4217 code, got '${currency}'`);
  const caPricePerHour = price(env, 'BILLING_CA_PRICE_PER_HOUR', '3.6');
  return {
    currency,
    caPricePerHour,
    caPricePerSecond: perSecond(caPricePerHour),
    caPricePerMonth: price(env, 'BILLING_CA_PRICE_PER_MONTH', '2000'),
    caPricePerYear: price(env, 'BILLING_CA_PRICE_PER_YEAR', '20000'),
    certificateTiers: certificateTiers(env.BILLING_CERTIFICATE_PRICES?.trim() || '0.05'),
  };
}

/** The unit price of the `ordinal`-th (1-based) certificate of a domain's month. */
export function certificateUnitPrice(tiers: readonly CertificatePriceTier[], ordinal: number): string {
  const tier = tiers.find((candidate) => candidate.upTo === null || ordinal <= candidate.upTo);
  return (tier ?? tiers[tiers.length - 1]!).unitPrice;
}
