/**
 * Refused credentials per client address. The rate limit counts a caller once authenticated, so a caller without a
 * valid credential was never limited: each of its requests cost a look-up, a signature check or (for a signed
 * request) the reading and parsing of its body. Past `max` 401s in a window an address gets 429 before any of that.
 * A credential still being judged holds a place too: otherwise a burst sent at once would all pass the check before
 * the first of its 401s were counted. Counters live in the process, like the rate limit's.
 */
import { errors } from '../../errors.ts';

/** Addresses remembered at most; past it the oldest window is forgotten first (Map order is insertion order). */
const MAX_ADDRESSES = 100_000;

/** One request's credential, from its arrival until it is accepted or the request is answered. */
export interface AuthAttempt {
  /** The credential is valid: the attempt stops holding a place, whatever the request's answer. */
  accepted(): void;
  /** The request was answered (or its connection closed); `refused` (a 401) counts against the address. */
  answered(refused: boolean): void;
}

export interface AuthFailures {
  /** 429 when `address`'s refusals in the window plus its credentials still being judged reach the limit. */
  attempt(address: string): AuthAttempt;
}

export function createAuthFailures({ max, windowMs, now = Date.now }: { max: number; windowMs: number; now?: () => number }): AuthFailures {
  const windows = new Map<string, { failures: number; endsAt: number }>();
  /** Credentials of each address not yet accepted or refused; an address leaves once it has none. */
  const judging = new Map<string, number>();
  const current = (address: string) => {
    const window = windows.get(address);
    if (window && window.endsAt > now()) return window;
    if (window) windows.delete(address);
    return undefined;
  };
  const count = (address: string) => {
    const window = current(address);
    if (window) {
      window.failures++;
      return;
    }
    if (windows.size >= MAX_ADDRESSES) windows.delete(windows.keys().next().value!);
    windows.set(address, { failures: 1, endsAt: now() + windowMs });
  };
  return {
    attempt(address) {
      const window = current(address);
      const undecided = judging.get(address) ?? 0;
      if ((window?.failures ?? 0) + undecided >= max) {
        // Refusals used up: wait for the window's end. Else credentials still being judged hold the places, and one
        // is free again in a moment (a Huawei SDK honouring Retry-After must not stall for a whole window).
        const usedUp = window !== undefined && window.failures >= max;
        throw errors.tooManyRequests(usedUp ? Math.max(1, Math.ceil((window.endsAt - now()) / 1000)) : 1);
      }
      judging.set(address, undecided + 1);
      let decided = false;
      const decide = () => {
        if (decided) return;
        decided = true;
        const left = judging.get(address)! - 1;
        if (left === 0) judging.delete(address);
        else judging.set(address, left);
      };
      return {
        accepted: decide,
        answered(refused) {
          decide();
          if (refused) count(address);
        },
      };
    },
  };
}
