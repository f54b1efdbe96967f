/** The service's notion of now. Services take a Clock so tests can move time (billing, expiry, CRL updates). */
export interface Clock {
  now(): Date;
}

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
