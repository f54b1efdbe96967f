import { sign, type KeyObject } from 'node:crypto';
import { AppError } from '../../src/errors.ts';
import { NODE_HASH, type HashAlgorithm, type KeyAlgorithm, type Signer } from '../../src/x509/algorithms.ts';

/** What a synchronous call refused with, as plain data for t.match; a string when it did not throw an AppError. */
export function refusal(fn: () => unknown): { status: number; code: string; message: string } | string {
  try {
    fn();
    return 'no error thrown';
  } catch (error) {
    return error instanceof AppError
      ? { status: error.statusCode, code: error.code, message: error.message }
      : `non-AppError thrown: ${String(error)}`;
  }
}

/** A Signer over a node:crypto private key (DER ECDSA or PKCS#1 v1.5 signatures) that records what it was asked to sign. */
export function recordingSigner(privateKey: KeyObject, keyAlgorithm: KeyAlgorithm) {
  const calls: { hash: HashAlgorithm; data: Uint8Array }[] = [];
  const signer: Signer = {
    keyAlgorithm,
    sign: async (hash, data) => {
      calls.push({ hash, data: data.slice() });
      return new Uint8Array(sign(NODE_HASH[hash], data, privateKey));
    },
  };
  return { signer, calls };
}

/** A promise and the function that settles it, so a test decides when each operation ends (no timers). */
export function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

/** Lets every operation that can proceed reach its next wait. */
export const settle = () => new Promise((resolve) => setImmediate(resolve));
