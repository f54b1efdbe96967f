/**
 * Refused credentials per client address. The rate limit counts a caller once authenticated, so a caller without a
 * valid credential was never limited: each of its requests cost a look-up, a signature check or (for a signed
 * request) the reading and parsing of its body. Past `max` 401s in a window an address gets 429 before any of that.
 * Counters live in the process, like the rate limit's.
 */
import { errors } from '../../errors.ts';

/** Addresses remembered at most; past it the oldest window is forgotten first (Map order is insertion order). */
const MAX_ADDRESSES = 100_000;

export interface AuthFailures {
  /** 429 when `address` used up its refusals for the window. */
  refuseIfOverLimit(address: string): void;
  /** Counts a 401 answered to `address`. */
  count(address: string): void;
}

export function createAuthFailures({ max, windowMs, now = Date.now }: { max: number; windowMs: number; now?: () => number }): AuthFailures {
  const windows = new Map<string, { failures: number; endsAt: number }>();
  const current = (address: string) => {
    const window = windows.get(address);
    if (window && window.endsAt > now()) return window;
    if (window) windows.delete(address);
    return undefined;
  };
  return {
    refuseIfOverLimit(address) {
      const window = current(address);
      if (window && window.failures >= max) throw errors.tooManyRequests(Math.max(1, Math.ceil((window.endsAt - now()) / 1000)));
    },
    count(address) {
      const window = current(address);
      if (window) {
        window.failures++;
        return;
      }
      if (windows.size >= MAX_ADDRESSES) windows.delete(windows.keys().next().value!);
      windows.set(address, { failures: 1, endsAt: now() + windowMs });
    },
  };
}
