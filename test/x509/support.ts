/** Fixtures for the X.509 tests: throwaway WebCrypto signers, and openssl as the outside judge. */
import { execFile } from 'node:child_process';
import { checkPrimeSync, createECDH, createHash, createPrivateKey, generatePrimeSync, sign } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  EC_CURVES,
  NODE_HASH,
  WEBCRYPTO_HASH,
  keyFamily,
  webCryptoKeyParams,
  type HashAlgorithm,
  type KeyAlgorithm,
  type Signer,
} from '../../src/x509/algorithms.ts';
import { clientErrorOf, type AppError } from '../../src/errors.ts';
import {
  bigintBytes,
  bitString,
  contextConstructed,
  DER_NULL,
  ecdsaRawToDer,
  objectIdentifier,
  octetString,
  sequence,
  unsignedInteger,
} from '../../src/x509/der-writer.ts';
import { Oid } from '../../src/x509/oids.ts';

const execFileAsync = promisify(execFile);

export interface TestKey {
  spki: Uint8Array;
  signer: Signer;
  /** PKCS#8 PEM, for handing the key to openssl. */
  privateKeyPem: string;
}

/** A key pair in WebCrypto with a Signer that returns what X.509 carries (DER ECDSA-Sig-Value for EC). */
export async function generateTestKey(alg: KeyAlgorithm): Promise<TestKey> {
  const pair = (await crypto.subtle.generateKey(webCryptoKeyParams(alg), true, ['sign', 'verify'])) as CryptoKeyPair;
  const spki = new Uint8Array(await crypto.subtle.exportKey('spki', pair.publicKey));
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey('pkcs8', pair.privateKey));
  const privateKeyPem = `-----BEGIN PRIVATE KEY-----\n${Buffer.from(pkcs8).toString('base64')}\n-----END PRIVATE KEY-----\n`;
  // An RSASSA key is bound to one hash in WebCrypto, so import it once per hash used.
  const rsaKeys = new Map<HashAlgorithm, Promise<CryptoKey>>();
  const rsaKeyFor = (hash: HashAlgorithm): Promise<CryptoKey> => {
    let key = rsaKeys.get(hash);
    if (!key) {
      key = crypto.subtle.importKey('pkcs8', pkcs8, webCryptoKeyParams(alg, hash), false, ['sign']);
      rsaKeys.set(hash, key);
    }
    return key;
  };
  const signer: Signer = {
    keyAlgorithm: alg,
    async sign(hash, data) {
      if (keyFamily(alg) === 'RSA') {
        return new Uint8Array(await crypto.subtle.sign('RSASSA-PKCS1-v1_5', await rsaKeyFor(hash), data.slice()));
      }
      const params = { name: 'ECDSA', hash: WEBCRYPTO_HASH[hash] };
      const raw = new Uint8Array(await crypto.subtle.sign(params, pair.privateKey, data.slice()));
      return ecdsaRawToDer(raw, EC_CURVES[alg as keyof typeof EC_CURVES].bits);
    },
  };
  return { spki, signer, privateKeyPem };
}

/** A scratch directory for openssl's files. */
export async function scratch(prefix: string) {
  const dir = await mkdtemp(path.join(os.tmpdir(), `pca-x509-${prefix}-`));
  const file = (name: string): string => path.join(dir, name);
  return {
    file,
    write: async (name: string, content: string | Uint8Array): Promise<string> => {
      await writeFile(file(name), content);
      return file(name);
    },
    read: (name: string): Promise<Buffer> => readFile(file(name)),
  };
}

/** Runs openssl; resolves with its output whatever the exit status. */
export async function openssl(args: string[]): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync('openssl', args, { maxBuffer: 16 * 1024 * 1024 });
    return { ok: true, stdout, stderr };
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    return { ok: false, stdout, stderr };
  }
}

export interface OcspCheck {
  /** The CA certificate (file) the response answers for. */
  issuer: string;
  /** Trust anchors the signature is verified against; not verified at all when omitted. */
  caFile?: string;
  /** The request (DER file) whose nonce the response must echo; without it the nonce is not checked. */
  request?: string;
  /** Certificates (files) and serials (0x…) whose statuses openssl prints. */
  certs?: string[];
  serials?: string[];
  /** Print the whole response (`-resp_text`). */
  text?: boolean;
}

/** openssl's reading of an OCSP response file (`openssl ocsp -respin`): the verdict and the statuses asked for. */
export function opensslOcsp(
  responseFile: string,
  { issuer, caFile, request, certs = [], serials = [], text = false }: OcspCheck,
): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  return openssl([
    'ocsp',
    '-respin',
    responseFile,
    '-issuer',
    issuer,
    ...(caFile ? ['-CAfile', caFile] : ['-noverify']),
    ...(request ? ['-reqin', request] : ['-no_nonce']),
    ...certs.flatMap((cert) => ['-cert', cert]),
    ...serials.flatMap((serial) => ['-serial', serial]),
    ...(text ? ['-resp_text'] : []),
  ]);
}

/** Runs `fn` and returns the AppError it throws (or a description of what else happened, to fail the test). */
export async function appErrorOf(fn: () => unknown): Promise<AppError | string> {
  try {
    await fn();
    return 'no error thrown';
  } catch (error) {
    return clientErrorOf(error) ?? `neither an AppError nor an X509Error thrown: ${String(error)}`;
  }
}

/** Deterministic pseudo-random numbers (mulberry32) so that a failing mutation case can be replayed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * An OCSPRequest (RFC 6960 §4.1.1) built by hand, for shapes openssl will not make: many CertIDs (each a CertID's
 * DER, e.g. from an openssl request) and a nonce of any length (wrapped in an OCTET STRING, as RFC 8954 and openssl do).
 */
export function ocspRequestDer(certIds: readonly Uint8Array[], nonce?: Uint8Array): Uint8Array {
  const extensions = nonce
    ? [contextConstructed(2, sequence(sequence(objectIdentifier(Oid.ocspNonce), octetString(octetString(nonce)))))]
    : [];
  return sequence(sequence(sequence(...certIds.map((certId) => sequence(certId))), ...extensions));
}

// ---------------------------------------------------------------------------------------------------------------
// Keys built by hand (BigInt arithmetic), for what no key generator makes: weak RSA moduli, odd encodings.

export function modPow(base: bigint, exponent: bigint, modulus: bigint): bigint {
  let result = 1n;
  let square = base % modulus;
  for (let e = exponent; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * square) % modulus;
    square = (square * square) % modulus;
  }
  return result;
}

function modInverse(a: bigint, modulus: bigint): bigint {
  let [r0, r1, s0, s1] = [a % modulus, modulus, 1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1, s0, s1] = [r1, r0 - q * r1, s1, s0 - q * s1];
  }
  if (r0 !== 1n) throw new Error('not invertible');
  return ((s0 % modulus) + modulus) % modulus;
}

export const bitLengthOf = (n: bigint): number => n.toString(2).length;

/** A prime of `bits` bits (its top two set, so two of 1024 bits make 2048) with p − 1 prime to e = 65537. */
export function rsaPrime(bits: number): bigint {
  for (;;) {
    const p = generatePrimeSync(bits, { bigint: true });
    if ((p - 1n) % 65537n !== 0n) return p;
  }
}

/** The first prime ≥ `from` (OpenSSL's test). */
export function nextPrime(from: bigint): bigint {
  let candidate = from | 1n;
  while (!checkPrimeSync(candidate)) candidate += 2n;
  return candidate;
}

/** SubjectPublicKeyInfo of an RSA key with e = 65537 and the AlgorithmIdentifier `parameters` given (null: none). */
export function rsaSpki(n: bigint, parameters: Uint8Array | null = DER_NULL): Uint8Array {
  const algorithm = sequence(objectIdentifier(Oid.rsaEncryption), ...(parameters ? [parameters] : []));
  return sequence(algorithm, bitString(sequence(unsignedInteger(bigintBytes(n)), unsignedInteger(bigintBytes(65537n)))));
}

const DIGEST_OIDS: Record<HashAlgorithm, string> = { SHA256: Oid.sha256, SHA384: Oid.sha384, SHA512: Oid.sha512 };

/**
 * The RSA key n with e = 65537, whose multiplicative group has order `groupOrder` (φ(n), from the factors the test
 * chose): a Signer that signs PKCS#1 v1.5 as RFC 8017 §8.2.1 says, s = EM^d mod n, whatever n is.
 */
export function handMadeRsaKey(n: bigint, groupOrder: bigint): { spki: Uint8Array; signer: Signer } {
  const d = modInverse(65537n, groupOrder);
  const length = Math.ceil(bitLengthOf(n) / 8);
  const signer: Signer = {
    keyAlgorithm: `RSA${bitLengthOf(n)}` as KeyAlgorithm,
    async sign(hash, data) {
      const digestInfo = sequence(
        sequence(objectIdentifier(DIGEST_OIDS[hash]), DER_NULL),
        octetString(createHash(NODE_HASH[hash]).update(data).digest()),
      );
      const padding = 'ff'.repeat(length - 3 - digestInfo.length);
      const encoded = BigInt(`0x0001${padding}00${Buffer.from(digestInfo).toString('hex')}`);
      return Uint8Array.from(
        Buffer.from(
          modPow(encoded, d, n)
            .toString(16)
            .padStart(2 * length, '0'),
          'hex',
        ),
      );
    },
  };
  return { spki: rsaSpki(n), signer };
}

export type TestCurve = 'P-256' | 'P-384' | 'P-521';
const CURVES: Record<TestCurve, { alg: KeyAlgorithm; openSslName: string; size: number }> = {
  'P-256': { alg: 'EC256', openSslName: 'prime256v1', size: 32 },
  'P-384': { alg: 'EC384', openSslName: 'secp384r1', size: 48 },
  'P-521': { alg: 'EC521', openSslName: 'secp521r1', size: 66 },
};

/** SubjectPublicKeyInfo of an EC point in any encoding (uncompressed, compressed, off the curve). */
export function ecSpki(curve: TestCurve, point: Uint8Array): Uint8Array {
  const oid = EC_CURVES[CURVES[curve].alg as keyof typeof EC_CURVES].oid;
  return sequence(sequence(objectIdentifier(Oid.ecPublicKey), objectIdentifier(oid)), bitString(point));
}

/** The EC key with private key `d` (OpenSSL computes d·G); its point uncompressed and compressed. */
export function ecKeyOf(curve: TestCurve, d: bigint): { signer: Signer; point: Uint8Array; compressed: Uint8Array } {
  const { alg, openSslName, size } = CURVES[curve];
  const ecdh = createECDH(openSslName);
  ecdh.setPrivateKey(Buffer.from(d.toString(16).padStart(2 * size, '0'), 'hex'));
  const point = ecdh.getPublicKey();
  const coordinate = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');
  const key = createPrivateKey({
    key: {
      kty: 'EC',
      crv: curve,
      d: coordinate(ecdh.getPrivateKey()),
      x: coordinate(point.subarray(1, 1 + size)),
      y: coordinate(point.subarray(1 + size)),
    },
    format: 'jwk',
  });
  const signer: Signer = {
    keyAlgorithm: alg,
    sign: async (hash, data) => new Uint8Array(sign(NODE_HASH[hash], data, key)),
  };
  return { signer, point: new Uint8Array(point), compressed: new Uint8Array(ecdh.getPublicKey(null, 'compressed')) };
}
