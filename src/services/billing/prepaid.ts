/**
 * What the CA object shows about a prepaid (yearly/monthly) CA: the days left of its purchased period,
 * the console's "expires in N days" column (scenario 4), and where it stands after that period ends.
 * Huawei's rule for yearly/monthly resources (international site, docs/contract-notes.md): at expiry a resource
 * enters a 15-day grace period in which it still works, then it is frozen for a 15-day retention period (usable for
 * nothing but viewing), then it is deleted. Derived on read from `prepaid_until`, like expiry and scheduled
 * deletion, so no job has to run for an edge to take effect.
 */
import { DAY_MS } from '../../clock.ts';
import { CHARGING_MODE } from './billing-codes.ts';

export const PREPAID_GRACE_MS = 15 * DAY_MS;
export const PREPAID_RETENTION_MS = 15 * DAY_MS;
/**
 * How long before `prepaid_until` auto-renewal renews (billing/prepaid-renewal.ts): 7 days, Huawei's default
 * deduction date ("at 03:00 seven days before the resource expires", Billing Center, Auto-Renewal Rules). With an
 * hourly job that leaves 168 runs to succeed before the period ends, so an outage shorter than a week never lets
 * an auto-renewed CA into its grace period; the 7 days also match what a customer sees on Huawei's side.
 */
export const PREPAID_RENEWAL_LEAD_MS = 7 * DAY_MS;

/** IN_PERIOD until `prepaid_until`, GRACE for 15 days from it, FROZEN for 15 more, then RELEASED (gone). */
export type PrepaidPhase = 'IN_PERIOD' | 'GRACE' | 'FROZEN' | 'RELEASED';

export function prepaidPhase(ca: { chargingMode: number; prepaidUntil: Date | null }, now: Date): PrepaidPhase | null {
  if (ca.chargingMode !== CHARGING_MODE.PREPAID || !ca.prepaidUntil) return null;
  const sinceExpiry = now.getTime() - ca.prepaidUntil.getTime();
  if (sinceExpiry < 0) return 'IN_PERIOD';
  if (sinceExpiry < PREPAID_GRACE_MS) return 'GRACE';
  return sinceExpiry < PREPAID_GRACE_MS + PREPAID_RETENTION_MS ? 'FROZEN' : 'RELEASED';
}

/** The earliest `prepaid_until` of a prepaid CA still present at `now` (its retention period not over). */
export function releasedBefore(now: Date): Date {
  return new Date(now.getTime() - PREPAID_GRACE_MS - PREPAID_RETENTION_MS);
}

/**
 * Whole days until `prepaidUntil`, rounded up (a period ending in 3 h still has 1 day), 0 once it has passed;
 * null for a pay-per-use CA or a prepaid CA without a recorded period.
 */
export function prepaidDaysLeft(ca: { chargingMode: number; prepaidUntil: Date | null }, now: Date): number | null {
  if (ca.chargingMode !== CHARGING_MODE.PREPAID || !ca.prepaidUntil) return null;
  return Math.max(0, Math.ceil((ca.prepaidUntil.getTime() - now.getTime()) / DAY_MS));
}
