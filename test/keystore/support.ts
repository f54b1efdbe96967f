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
  const lines = Buffer.from(spki)
    .toString('base64')
    .match(/.{1,64}/g)!;
  return `-----BEGIN PUBLIC KEY-----\n${lines.join('\n')}\n-----END PUBLIC KEY-----\n`;
}

/** `openssl dgst -<hash> -verify pub.pem -signature sig.der data`: true when openssl says "Verified OK". */
export async function opensslVerifies(spki: Uint8Array, hash: HashAlgorithm, data: Uint8Array, signature: Uint8Array): Promise<boolean> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pca-keystore-verify-'));
  const file = (name: string) => path.join(dir, name);
  await Promise.all([writeFile(file('pub.pem'), spkiToPem(spki)), writeFile(file('data'), data), writeFile(file('sig.der'), signature)]);
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

/** A private key object as another PKCS#11 application (a child process) sees it on the token. */
export interface TokenPrivateKey {
  id: string;
  sensitive: boolean;
  neverExtractable: boolean;
}

/**
 * Lists the token's private keys, or deletes the one with `deleteId`, from a separate Node process through pkcs11js
 * (the dependency the key store itself uses), so the tests need no outside tool such as OpenSC's pkcs11-tool.
 */
export async function tokenPrivateKeys(label: string, pin: string, deleteId?: string): Promise<TokenPrivateKey[]> {
  const script = `
    import pkcs11js from 'pkcs11js';
    const [library, label, pin, deleteId] = process.argv.slice(1);
    const lib = new pkcs11js.PKCS11();
    lib.load(library);
    lib.C_Initialize();
    try {
      const slot = lib.C_GetSlotList(true).find((s) => lib.C_GetTokenInfo(s).label.trim() === label);
      const session = lib.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      lib.C_Login(session, pkcs11js.CKU_USER, pin);
      const template = [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY }];
      if (deleteId) template.push({ type: pkcs11js.CKA_ID, value: Buffer.from(deleteId, 'hex') });
      lib.C_FindObjectsInit(session, template);
      const handles = lib.C_FindObjects(session, 1000);
      lib.C_FindObjectsFinal(session);
      const flag = (attribute) => attribute.value[0] === 1;
      const keys = handles.map((handle) => {
        const [id, sensitive, neverExtractable] = lib.C_GetAttributeValue(session, handle, [
          { type: pkcs11js.CKA_ID }, { type: pkcs11js.CKA_SENSITIVE }, { type: pkcs11js.CKA_NEVER_EXTRACTABLE },
        ]);
        return { id: id.value.toString('hex'), sensitive: flag(sensitive), neverExtractable: flag(neverExtractable) };
      });
      if (deleteId) for (const handle of handles) lib.C_DestroyObject(session, handle);
      process.stdout.write(JSON.stringify(keys));
    } finally {
      lib.C_Finalize();
    }`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script, SOFTHSM_LIBRARY, label, pin, deleteId ?? ''], {
    cwd: path.join(import.meta.dirname, '../..'),
  });
  return JSON.parse(stdout) as TokenPrivateKey[];
}
