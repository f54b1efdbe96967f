/**
 * What the CA object shows about a prepaid (yearly/monthly) CA: the days left of its purchased period,
 * the console's "expires in N days" column (scenario 4).
 */
import { CHARGING_MODE } from './usage-hooks.ts';

const DAY_MS = 86_400_000;

/**
 * Whole days until `prepaidUntil`, rounded up (a period ending in 3 h still has 1 day), 0 once it has passed;
 * null for a pay-per-use CA or a prepaid CA without a recorded period.
 */
export function prepaidDaysLeft(ca: { chargingMode: number; prepaidUntil: Date | null }, now: Date): number | null {
  if (ca.chargingMode !== CHARGING_MODE.PREPAID || !ca.prepaidUntil) return null;
  return Math.max(0, Math.ceil((ca.prepaidUntil.getTime() - now.getTime()) / DAY_MS));
}
