/** The service's notion of now. Services take a Clock so tests can move time (billing, expiry, CRL updates). */
export interface Clock {
  now(): Date;
}

export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;

export const systemClock: Clock = { now: () => new Date() };

/** A clock tests set and advance by hand. */
export class ManualClock implements Clock {
  private current: number;
  constructor(start: Date | number = Date.now()) {
    this.current = typeof start === 'number' ? start : start.getTime();
  }
  now(): Date {
    return new Date(this.current);
  }
  set(time: Date | number): void {
    this.current = typeof time === 'number' ? time : time.getTime();
  }
  advance(ms: number): void {
    this.current += ms;
  }
}

/**
 * `months` calendar months after `start` (UTC), the day of the month kept where the target month has it and the
 * month's last day otherwise: 31 Jan + 1 month = 28/29 Feb, 29 Feb 2028 + 12 months = 28 Feb 2029 (Date's own
 * setUTCMonth would roll over into March).
 */
export function addCalendarMonthsUtc(start: Date, months: number): Date {
  const target = new Date(start.getTime());
  const day = start.getUTCDate();
  target.setUTCDate(1);
  target.setUTCMonth(target.getUTCMonth() + months);
  const lastDay = new Date(Date.UTC(target.getUTCFullYear(), target.getUTCMonth() + 1, 0)).getUTCDate();
  target.setUTCDate(Math.min(day, lastDay));
  return target;
}
