/** Seeded mutation primitives shared by the fuzz tests: the same seed replays the same cases. */
import { randomInt } from 'node:crypto';
import type { Test } from 'tap';
import { seededRandom } from '../x509/support.ts';

/**
 * Multiplies every fuzz suite's case count: 1 in CI (about 12,000 inputs, sized to keep CI short); `npm run fuzz`
 * (15) runs the suites at the nightly size (about 190,000 mutated inputs in total).
 */
export const FUZZ_SCALE = (() => {
  const scale = Number(process.env.FUZZ_SCALE ?? '1');
  if (!Number.isInteger(scale) || scale < 1) throw new Error(`FUZZ_SCALE must be a positive integer, got ${process.env.FUZZ_SCALE}`);
  return scale;
})();
export const fuzzCases = (ciCount: number): number => ciCount * FUZZ_SCALE;

/**
 * Added to every suite's own seed. 0 (unset) in CI, so every run replays the same cases; `random` (what `npm run
 * fuzz` sets unless FUZZ_SEED is given) draws one per test file, so each nightly run explores cases none before it
 * did. A suite prints a seed other than 0; `FUZZ_SEED=<printed> npx tap <file>` replays its run.
 */
export const FUZZ_SEED = (() => {
  const text = process.env.FUZZ_SEED || '0';
  if (text === 'random') return randomInt(1, 2 ** 32);
  const seed = Number(text);
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32)
    throw new Error(`FUZZ_SEED must be "random" or an integer below 2^32, got ${text}`);
  return seed;
})();

/** The suite's generator: `suiteSeed` shifted by FUZZ_SEED, which is printed on `t` unless it is 0. */
export function fuzzer(t: Test, suiteSeed: number) {
  if (FUZZ_SEED !== 0) t.comment(`FUZZ_SEED=${FUZZ_SEED}`);
  const random = seededRandom((suiteSeed + FUZZ_SEED) >>> 0);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const integer = (max: number) => Math.floor(random() * max);
  const chance = (probability: number) => random() < probability;

  /** Bits flipped, cut short, bytes inserted, or a header byte replaced (tags and lengths are near the start). */
  function mutateBytes(der: Uint8Array): Buffer {
    const bytes = Buffer.from(der);
    switch (integer(4)) {
      case 0:
        for (let i = 0, n = 1 + integer(4); i < n; i++) bytes[integer(bytes.length)] ^= 1 << integer(8);
        return bytes;
      case 1:
        return bytes.subarray(0, integer(bytes.length));
      case 2: {
        const at = integer(bytes.length);
        return Buffer.concat([
          bytes.subarray(0, at),
          Buffer.from(Array.from({ length: 1 + integer(16) }, () => integer(256))),
          bytes.subarray(at),
        ]);
      }
      default:
        bytes[integer(Math.min(bytes.length, 24))] = pick([0x00, 0x80, 0x81, 0x84, 0xff, 0x30, 0x02]);
        return bytes;
    }
  }

  const deep = (depth: number): unknown => (depth === 0 ? 1 : chance(0.5) ? [deep(depth - 1)] : { a: deep(depth - 1) });
  /** Hostile JSON values of no API in particular (each call a fresh one): wrong types, extremes, odd text, nesting. */
  const jsonJunk: (() => unknown)[] = [
    () => null,
    () => true,
    () => 0,
    () => -1,
    () => 1.5,
    () => 2 ** 53,
    () => 1e20,
    () => 2 ** 63,
    () => -1e308,
    () => '',
    () => 'x'.repeat(5000),
    () => [],
    () => ({}),
    () => [{}],
    () => ({ a: 1 }),
    () => '\u0000',
    () => 'a\u0000b',
    () => 'é😀\u202e',
    () => '\ud800',
    () => deep(50),
  ];

  /**
   * `base` with one to three values replaced by `junk()`, deleted, or added under a hostile key, each at the top or
   * some levels in. `junk` must give a fresh value each call: a shared object written into itself would loop.
   */
  function mutateJson<T extends object>(base: T, junk: () => unknown): T {
    const body = structuredClone(base);
    for (let i = 0, n = 1 + integer(3); i < n; i++) {
      let node = body as Record<string, unknown>;
      while (chance(0.5)) {
        const children = Object.values(node).filter(
          (value): value is Record<string, unknown> => Boolean(value) && typeof value === 'object',
        );
        if (children.length === 0) break;
        node = pick(children);
      }
      const keys = Object.keys(node);
      if (keys.length === 0 || chance(0.1)) {
        node[pick(['extra', '__proto__', 'constructor', '', '\u0000', 'x'.repeat(300)])] = junk();
      } else if (chance(0.2)) {
        delete node[pick(keys)];
      } else {
        node[pick(keys)] = junk();
      }
    }
    return body;
  }

  return { random, pick, integer, chance, mutateBytes, jsonJunk, mutateJson };
}
