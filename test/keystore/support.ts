/** Outside judges and fixtures for the key-store tests: openssl verifies, SoftHSM2 holds a throwaway token. */
import { execFile, spawnSync } from 'node:child_process';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Db } from '../../src/db/database.ts';
import type { HashAlgorithm } from '../../src/x509/algorithms.ts';

export const run = promisify(execFile);
export const SOFTHSM_LIBRARY = '/usr/lib/softhsm/libsofthsm2.so';

/** Why the SoftHSM2 cases cannot run here, or undefined when they can (tap's `skip` option takes it as is). */
export const softHsmMissing = !existsSync(SOFTHSM_LIBRARY)
  ? `${SOFTHSM_LIBRARY} is absent (apt-get install softhsm2)`
  : spawnSync('softhsm2-util', ['--version']).error
    ? 'softhsm2-util is not on PATH (apt-get install softhsm2)'
    : undefined;

/** An issued EC256 certificate row holding a server-made key (sealed for `id`), with placeholder DER. */
export function storeCertificateWithKey(db: Db, id: string, issuerId: string, serialNumber: string, sealedPrivateKey: string) {
  return db.certificate.create({
    data: {
      id,
      domainId: 'd1',
      issuerId,
      status: 'ISSUED',
      genMode: 'GENERATE',
      keyAlgorithm: 'EC256',
      signatureAlgorithm: 'SHA256',
      serialNumber,
      notBefore: new Date(),
      notAfter: new Date(Date.now() + 1e9),
      certificateDer: new Uint8Array([0x30, 0]),
      sealedPrivateKey,
    },
  });
}

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
  modifiable: boolean;
  copyable: boolean;
  signRecover: boolean;
  decrypt: boolean;
  unwrap: boolean;
  derive: boolean;
}

/**
 * Another PKCS#11 application on the token: a separate Node process through pkcs11js (the dependency the key store
 * itself uses), so the tests need no outside tool such as OpenSC's pkcs11-tool. It lists the token's private keys,
 * deletes the one with id `deleteId`, generates a P-256 key pair (private key on the token, public key printed), or
 * tries to allow decryption with the key of id `id` (C_SetAttributeValue) and prints the token's answer.
 */
async function otherApplication(
  label: string,
  pin: string,
  action: 'list' | 'delete' | 'generate' | 'allow-decrypt',
  id = '',
): Promise<unknown> {
  const script = `
    import pkcs11js from 'pkcs11js';
    import { randomBytes } from 'node:crypto';
    const [library, label, pin, action, id] = process.argv.slice(1);
    const lib = new pkcs11js.PKCS11();
    lib.load(library);
    lib.C_Initialize();
    try {
      const slot = lib.C_GetSlotList(true).find((s) => lib.C_GetTokenInfo(s).label.trim() === label);
      const session = lib.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      lib.C_Login(session, pkcs11js.CKU_USER, pin);
      if (action === 'generate') {
        const keyId = randomBytes(16);
        const { publicKey } = lib.C_GenerateKeyPair(session, { mechanism: pkcs11js.CKM_EC_KEY_PAIR_GEN }, [
          { type: pkcs11js.CKA_TOKEN, value: false },
          { type: pkcs11js.CKA_EC_PARAMS, value: Buffer.from('06082a8648ce3d030107', 'hex') },
        ], [
          { type: pkcs11js.CKA_ID, value: keyId }, { type: pkcs11js.CKA_TOKEN, value: true },
          { type: pkcs11js.CKA_PRIVATE, value: true }, { type: pkcs11js.CKA_SENSITIVE, value: true },
          { type: pkcs11js.CKA_SIGN, value: true },
        ]);
        const [point] = lib.C_GetAttributeValue(session, publicKey, [{ type: pkcs11js.CKA_EC_POINT }]);
        process.stdout.write(JSON.stringify({ id: keyId.toString('hex'), ecPoint: point.value.toString('hex') }));
      } else if (action === 'allow-decrypt') {
        lib.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY }, { type: pkcs11js.CKA_ID, value: Buffer.from(id, 'hex') }]);
        const [handle] = lib.C_FindObjects(session, 1);
        lib.C_FindObjectsFinal(session);
        let answer = 0; // CKR_OK
        try {
          lib.C_SetAttributeValue(session, handle, [{ type: pkcs11js.CKA_DECRYPT, value: true }]);
        } catch (error) {
          answer = Number(/:(\\d+)/.exec(error.message)[1]); // pkcs11js names codes past v2.20 CKR_VENDOR_DEFINED
        }
        process.stdout.write(JSON.stringify(answer));
      } else {
        const template = [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY }];
        if (action === 'delete') template.push({ type: pkcs11js.CKA_ID, value: Buffer.from(id, 'hex') });
        lib.C_FindObjectsInit(session, template);
        const handles = lib.C_FindObjects(session, 1000);
        lib.C_FindObjectsFinal(session);
        const flag = (attribute) => attribute.value[0] === 1;
        const flags = ['SENSITIVE', 'NEVER_EXTRACTABLE', 'MODIFIABLE', 'COPYABLE', 'SIGN_RECOVER', 'DECRYPT', 'UNWRAP', 'DERIVE'];
        const names = ['sensitive', 'neverExtractable', 'modifiable', 'copyable', 'signRecover', 'decrypt', 'unwrap', 'derive'];
        const keys = handles.map((handle) => {
          const [keyId, ...values] = lib.C_GetAttributeValue(session, handle, [
            { type: pkcs11js.CKA_ID }, ...flags.map((name) => ({ type: pkcs11js['CKA_' + name] })),
          ]);
          return { id: keyId.value.toString('hex'), ...Object.fromEntries(names.map((name, i) => [name, flag(values[i])])) };
        });
        if (action === 'delete') for (const handle of handles) lib.C_DestroyObject(session, handle);
        process.stdout.write(JSON.stringify(keys));
      }
    } finally {
      lib.C_Finalize();
    }`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script, SOFTHSM_LIBRARY, label, pin, action, id], {
    cwd: path.join(import.meta.dirname, '../..'),
  });
  return JSON.parse(stdout);
}

/** The token's private keys as another application sees them, after deleting the one with `deleteId` if given. */
export async function tokenPrivateKeys(label: string, pin: string, deleteId?: string): Promise<TokenPrivateKey[]> {
  return (await otherApplication(label, pin, deleteId ? 'delete' : 'list', deleteId)) as TokenPrivateKey[];
}

/** The CK_RV the token answered another application that set CKA_DECRYPT on the private key of id `id` (hex). */
export async function allowDecryptInOtherApplication(label: string, pin: string, id: string): Promise<number> {
  return (await otherApplication(label, pin, 'allow-decrypt', id)) as number;
}

/** A P-256 key generated on the token by another application: its CKA_ID (hex) and its public key. */
export async function generateInOtherApplication(label: string, pin: string): Promise<{ id: string; publicKey: KeyObject }> {
  const { id, ecPoint } = (await otherApplication(label, pin, 'generate')) as { id: string; ecPoint: string };
  // CKA_EC_POINT is the DER OCTET STRING (04 41) around the uncompressed point 04 || x || y.
  const point = Buffer.from(ecPoint, 'hex').subarray(2);
  const coordinate = (from: number) => point.subarray(from, from + 32).toString('base64url');
  return { id, publicKey: createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: coordinate(1), y: coordinate(33) }, format: 'jwk' }) };
}
