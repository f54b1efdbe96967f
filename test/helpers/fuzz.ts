/** Seeded mutation primitives shared by the fuzz tests: the same seed replays the same cases. */
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

export function fuzzer(seed: number) {
  const random = seededRandom(seed);
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

  return { random, pick, integer, chance, mutateBytes };
}
