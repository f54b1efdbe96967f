/** Outside judges and fixtures for the key-store tests: openssl verifies, SoftHSM2 holds a throwaway token. */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { HashAlgorithm } from '../../src/x509/algorithms.ts';

export const run = promisify(execFile);
export const SOFTHSM_LIBRARY = '/usr/lib/softhsm/libsofthsm2.so';

export function spkiToPem(spki: Uint8Array): string {
  const lines = Buffer.from(spki).toString('base64').match(/.{1,64}/g)!;
  return `-----BEGIN PUBLIC KEY-----\n${lines.join('\n')}\n-----END PUBLIC KEY-----\n`;
}

/** `openssl dgst -<hash> -verify pub.pem -signature sig.der data`: true when openssl says "Verified OK". */
export async function opensslVerifies(
  spki: Uint8Array,
  hash: HashAlgorithm,
  data: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pca-keystore-verify-'));
  const file = (name: string) => path.join(dir, name);
  await Promise.all([
    writeFile(file('pub.pem'), spkiToPem(spki)),
    writeFile(file('data'), data),
    writeFile(file('sig.der'), signature),
  ]);
  const digest = `-${hash.toLowerCase()}`;
  try {
    const { stdout } = await run('openssl', ['dgst', digest, '-verify', file('pub.pem'), '-signature', file('sig.der'), file('data')]);
    return stdout.trim() === 'Verified OK';
  } catch {
    return false;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * A fresh SoftHSM2 token in a temp folder, made by scripts/softhsm-init.sh. Points this process's SOFTHSM2_CONF at
 * it (SoftHSM reads it when the module initialises). The caller removes `dir` when done.
 */
export async function softHsmToken(label: string, pin: string): Promise<{ dir: string; conf: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pca-softhsm-'));
  const script = path.join(import.meta.dirname, '../../scripts/softhsm-init.sh');
  const { stdout } = await run(script, [dir, label, pin]);
  const conf = /export SOFTHSM2_CONF='([^']+)'/.exec(stdout)![1];
  process.env.SOFTHSM2_CONF = conf;
  return { dir, conf };
}
