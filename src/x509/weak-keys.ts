/**
 * Keys of an accepted type and size that this CA still refuses to certify, because their private key is known or
 * easily found: RSA moduli that factor (CA/Browser Forum Baseline Requirements 6.1.1.3; OpenSSL's public-key check,
 * NIST SP 800-56B §6.4.2.1) and EC keys whose private key is a small number. Pure functions.
 */
import { createECDH } from 'node:crypto';
import { bigintBytes, bytesToHex, hexToBytes } from './der-writer.ts';

function primesBelow(limit: number): number[] {
  const composite = new Uint8Array(limit);
  const primes: number[] = [];
  for (let i = 2; i < limit; i++) {
    if (composite[i]) continue;
    primes.push(i);
    for (let j = i * i; j < limit; j += i) composite[j] = 1;
  }
  return primes;
}

/** OpenSSL's trial division: no factor below 752 (ossl_rsa_sp800_56b_check_public). */
const SMALL_PRIMES = primesBelow(752);

/** The small primes in groups whose product stays an exact double: one BigInt division per group, then Number ones. */
const PRIME_GROUPS = SMALL_PRIMES.reduce<{ product: number; primes: number[] }[]>((groups, prime) => {
  const last = groups.at(-1);
  if (last && last.product * prime <= Number.MAX_SAFE_INTEGER) {
    last.product *= prime;
    last.primes.push(prime);
  } else {
    groups.push({ product: prime, primes: [prime] });
  }
  return groups;
}, []).map(({ product, primes }) => ({ product: BigInt(product), primes }));

/** n mod each of SMALL_PRIMES, in their order. */
function smallPrimeResidues(n: bigint): number[] {
  const residues: number[] = [];
  for (const { product, primes } of PRIME_GROUPS) {
    const residue = Number(n % product);
    for (const prime of primes) residues.push(residue % prime);
  }
  return residues;
}

function powMod(base: number, exponent: number, modulus: number): number {
  let result = 1;
  let square = base % modulus;
  for (let e = exponent; e > 0; e = Math.floor(e / 2)) {
    if (e % 2 === 1) result = (result * square) % modulus;
    square = (square * square) % modulus;
  }
  return result;
}

/**
 * ROCA (CVE-2017-15361; Nemec et al., "The Return of Coppersmith's Attack", CCS 2017): Infineon's RSALib made each
 * prime as k·M + (65537^a mod M), M the product of the first 39, 71, 126 or 225 primes by key size (71 or more for
 * keys of 992 bits and up). So n = p·q ≡ 65537^(a+b) modulo every prime r of M: n mod r lies in the subgroup that
 * 65537 generates modulo r. For each odd prime of the first 71, which of its residues that subgroup holds; a random
 * modulus has all its residues in them with probability about 2^-83.
 */
const ROCA_SUBGROUPS = SMALL_PRIMES.slice(1, 71).map((prime) => {
  const members = new Uint8Array(prime);
  for (let x = 1; members[x] === 0; x = (x * 65537) % prime) members[x] = 1;
  return members;
});

/**
 * For each prime k that can be the exponent of a perfect power m^k of 4096 bits or fewer (m has no factor below
 * 752, so k ≤ 4096 / log2(753)): the small primes r ≡ 1 (mod k), by index. n mod such an r must then be a k-th power
 * residue, (n mod r)^((r-1)/k) ≡ 1, which a random n is with probability 1/k per r: a cheap filter before the root.
 */
const POWER_WITNESSES = SMALL_PRIMES.filter((k) => k <= 4096 / Math.log2(753)).map((k) => ({
  k,
  witnesses: SMALL_PRIMES.flatMap((r, index) => ((r - 1) % k === 0 ? [index] : [])),
}));

/** ⌊n^(1/k)⌋ (n ≥ 0, k ≥ 2): Newton's method down from just above it, started from a floating-point estimate. */
export function integerRoot(n: bigint, k: number): bigint {
  if (n < 2n) return n;
  const bits = n.toString(16).length * 4;
  const shift = Math.max(0, bits - 64);
  const log2Root = (shift + Math.log2(Number(n >> BigInt(shift)))) / k;
  const exponent = Math.max(0, Math.floor(log2Root) - 52);
  const estimate = BigInt(Math.ceil(2 ** (log2Root - exponent))) << BigInt(exponent);
  // The estimate is good to about 2^-40; the margin puts it above the root, where Newton's steps only go down.
  let x = estimate + (estimate >> 32n) + 1n;
  const K = BigInt(k);
  for (;;) {
    const next = ((K - 1n) * x + n / x ** (K - 1n)) / K;
    if (next >= x) return x;
    x = next;
  }
}

/** Baseline Requirements 6.1.1.3: a modulus Fermat's method factors within 100 rounds (primes too close together) is refused. */
const FERMAT_ROUNDS = 100;

/** The residues of squares modulo 64, 63, 65 and 11: a number leaving any other is no square (0.8 % pass). */
const SQUARE_FILTER = [64, 63, 65, 11].map((modulus) => {
  const squares = new Uint8Array(modulus);
  for (let x = 0; x < modulus; x++) squares[(x * x) % modulus] = 1;
  return { modulus, squares };
});
const SQUARE_FILTER_MODULUS = 64 * 63 * 65 * 11;

const maybeSquare = (residue: number): boolean => SQUARE_FILTER.every(({ modulus, squares }) => squares[residue % modulus] === 1);

/** Whether a² − n is a square for one of a = ⌈√n⌉ … ⌈√n⌉ + 99 (then n = (a − b)(a + b)). */
function fermatFactors(n: bigint): boolean {
  let a = integerRoot(n, 2);
  if (a * a < n) a += 1n;
  // a and a² − n modulo the filter's modulus, stepped in Numbers: (a + 1)² − n = a² − n + 2a + 1.
  let aResidue = Number(a % BigInt(SQUARE_FILTER_MODULUS));
  let differenceResidue = Number((a * a - n) % BigInt(SQUARE_FILTER_MODULUS));
  for (let round = 0; round < FERMAT_ROUNDS; round++) {
    if (maybeSquare(differenceResidue)) {
      const difference = (a + BigInt(round)) ** 2n - n;
      const b = integerRoot(difference, 2);
      if (b * b === difference) return true;
    }
    differenceResidue = (differenceResidue + 2 * aResidue + 1) % SQUARE_FILTER_MODULUS;
    aResidue = (aResidue + 1) % SQUARE_FILTER_MODULUS;
  }
  return false;
}

/** What is wrong with n that needs no more than small arithmetic, or null; n has `bits` bits or fewer. */
function arithmeticWeakness(n: bigint, bits: number): string | null {
  const residues = smallPrimeResidues(n);
  const factor = SMALL_PRIMES.find((_, index) => residues[index] === 0);
  if (factor !== undefined) return `RSA modulus is divisible by ${factor}`;
  for (const { k, witnesses } of POWER_WITNESSES) {
    if (k > bits / Math.log2(753)) break;
    const residuesFit = witnesses.every((index) => {
      const r = SMALL_PRIMES[index];
      return powMod(residues[index], (r - 1) / k, r) === 1;
    });
    if (residuesFit && integerRoot(n, k) ** BigInt(k) === n) return `RSA modulus is a perfect power (m^${k})`;
  }
  if (ROCA_SUBGROUPS.every((members, index) => members[residues[index + 1]] === 1)) {
    return 'RSA key has the ROCA fingerprint of Infineon RSALib keys, whose factors can be computed (CVE-2017-15361)';
  }
  if (fermatFactors(n)) return "RSA modulus's primes are so close that Fermat's method factors it";
  return null;
}

/**
 * Verdicts by modulus (hex), bounded (the oldest goes first): clients resend a CSR with the same key. A new RSA-2048
 * modulus costs about 0.11 ms (measured with 1000 p·q moduli on 2 shared vCPUs at load 7-8), a remembered one 1 µs.
 * A modulus that is itself prime is not looked for: only a forger makes one, and OpenSSL's Miller-Rabin test spends
 * all its rounds on a prime (2 s for 4096 bits), so a tenant sending new primes could hold the thread pool.
 */
const verdicts = new Map<string, string | null>();
const MAX_VERDICTS = 1024;

/** Why this CA refuses an RSA modulus (its magnitude, big-endian), or null. */
export function rsaModulusWeakness(modulus: Uint8Array): string | null {
  const hex = bytesToHex(modulus);
  let verdict = verdicts.get(hex);
  if (verdict === undefined) {
    if (verdicts.size >= MAX_VERDICTS) verdicts.delete(verdicts.keys().next().value!);
    verdict = arithmeticWeakness(BigInt(`0x${hex}`), modulus.length * 8);
    verdicts.set(hex, verdict);
  }
  return verdict;
}

/** Per curve: OpenSSL's name, the coordinate size in bytes, and the field prime p (−(k·G) is k·G with y → p − y). */
const SMALL_MULTIPLE_CURVES = {
  'P-256': { openSslName: 'prime256v1', size: 32, p: 2n ** 256n - 2n ** 224n + 2n ** 192n + 2n ** 96n - 1n },
  'P-384': { openSslName: 'secp384r1', size: 48, p: 2n ** 384n - 2n ** 128n - 2n ** 96n + 2n ** 32n - 1n },
  'P-521': { openSslName: 'secp521r1', size: 66, p: 2n ** 521n - 1n },
} as const;
export type NamedCurve = keyof typeof SMALL_MULTIPLE_CURVES;

/** Private keys ±1 … ±256 are refused: anyone finds them by trying. */
const SMALL_MULTIPLE_LIMIT = 256;

/** The last four bytes of an uncompressed point's x, as a number: a lookup key that allocates nothing. */
const xTail = (point: Uint8Array, size: number): number =>
  ((point[size - 3] << 24) | (point[size - 2] << 16) | (point[size - 1] << 8) | point[size]) >>> 0;

const smallMultiples = new Map<NamedCurve, Map<number, Uint8Array[]>>();

/**
 * k·G and −k·G for k = 1 … 256, by xTail; made on the curve's first use by OpenSSL's scalar multiplication, which
 * took 6 ms for P-256, 130 ms for P-384 and 300 ms for P-521 (2 shared vCPUs at load 7-8), once per process.
 */
function smallMultiplesOf(curve: NamedCurve): Map<number, Uint8Array[]> {
  let points = smallMultiples.get(curve);
  if (points !== undefined) return points;
  const { openSslName, size, p } = SMALL_MULTIPLE_CURVES[curve];
  const ecdh = createECDH(openSslName);
  points = new Map();
  for (let k = 1; k <= SMALL_MULTIPLE_LIMIT; k++) {
    ecdh.setPrivateKey(bigintBytes(BigInt(k)));
    const point = new Uint8Array(ecdh.getPublicKey());
    const y = BigInt(`0x${bytesToHex(point.subarray(1 + size))}`);
    const negated = Uint8Array.from(point);
    negated.set(hexToBytes((p - y).toString(16).padStart(2 * size, '0')), 1 + size);
    const key = xTail(point, size);
    points.set(key, [...(points.get(key) ?? []), point, negated]);
  }
  smallMultiples.set(curve, points);
  return points;
}

/** Whether an uncompressed point of `curve` is ±k·G for a small k: a map lookup, no curve arithmetic. */
export function isSmallMultipleOfGenerator(curve: NamedCurve, point: Uint8Array): boolean {
  const { size } = SMALL_MULTIPLE_CURVES[curve];
  const candidates = smallMultiplesOf(curve).get(xTail(point, size));
  return candidates?.some((candidate) => Buffer.from(candidate).equals(point)) === true;
}
