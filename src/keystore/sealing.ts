/**
 * Envelope encryption of software CA keys.
 *
 * Each sealed item gets a fresh random 32-byte data key. The plaintext is encrypted under the data key with
 * AES-256-GCM and the caller's aad (the key id) bound; the data key is wrapped under the master key with
 * AES-256-GCM, bound to the master-key fingerprint and the same aad. Master-key rotation rewraps only the data key.
 * Only the current master key seals; other master keys (OTHER_MASTER_KEYS) open what was sealed under them, so that
 * instances of a deployment can move from one key to the next one after another, none stopped (README).
 *
 *   v1.<master fingerprint>.<wrapped data key>.<body>     (parts base64url; boxes are iv || ciphertext || tag)
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { KeyStoreError } from './key-store-errors.ts';

export { KeyStoreError };

/** The sealing context of an ACME EAB HMAC key: a sealed key copied to another kid does not open. */
export const eabSealingAad = (kid: string): string => `acme-eab:${kid}`;

export interface Sealer {
  /** Short public identifier of the master key that seals, written into every sealed item. */
  readonly fingerprint: string;
  seal(plaintext: Uint8Array, aad: string): string;
  unseal(sealed: string, aad: string): Uint8Array;
  /**
   * Re-encrypts the data key of `sealed` under the master key of `newSealer`; the encrypted body is unchanged. An item
   * already sealed under that key is returned as it is.
   */
  rewrap(sealed: string, aad: string, newSealer: Sealer): string;
}

const VERSION = 'v1';
const MASTER_KEY_BYTES = 32;
const DATA_KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const FINGERPRINT_BYTES = 8;

/** The master-key half of a sealer, reachable only from this module (rewrap needs the new sealer's). */
const dataKeyWrappers = new WeakMap<Sealer, (dataKey: Buffer, aad: string) => string>();

interface SealedParts {
  fingerprint: string;
  wrappedDataKey: Buffer;
  body: string;
  bodyBox: Buffer;
}

/** Seals under `masterKey`; opens what was sealed under it or under one of `otherMasterKeys`. */
export function createSealer(masterKey: Uint8Array, otherMasterKeys: readonly Uint8Array[] = []): Sealer {
  for (const [index, key] of [masterKey, ...otherMasterKeys].entries()) {
    if (key.length !== MASTER_KEY_BYTES) {
      throw new KeyStoreError(`${index === 0 ? 'the' : 'another'} master key must be ${MASTER_KEY_BYTES} bytes, got ${key.length}`);
    }
  }
  const master = Buffer.from(masterKey);
  const fingerprint = masterKeyFingerprint(master);
  const opening = new Map([...otherMasterKeys, masterKey].map((key) => [masterKeyFingerprint(Buffer.from(key)), Buffer.from(key)]));

  const wrapDataKey = (dataKey: Buffer, aad: string) => toBase64Url(gcmEncrypt(master, dataKey, wrapAad(fingerprint, aad)));

  /** Unwraps the data key of `parts`, lends it to `use`, then wipes it. */
  function withDataKey<T>(parts: SealedParts, aad: string, use: (dataKey: Buffer) => T): T {
    const sealedUnder = opening.get(parts.fingerprint);
    if (!sealedUnder) {
      const others = opening.size > 1 ? `, or ${[...opening.keys()].filter((other) => other !== fingerprint).join(', ')}` : '';
      throw new KeyStoreError(
        `sealed key was sealed with a different master key (fingerprint ${parts.fingerprint}, configured master key ${fingerprint}${others})`,
      );
    }
    const dataKey = gcmDecrypt(sealedUnder, parts.wrappedDataKey, wrapAad(parts.fingerprint, aad));
    if (!dataKey || dataKey.length !== DATA_KEY_BYTES) throw authenticationFailure('wrapped data key');
    try {
      return use(dataKey);
    } finally {
      dataKey.fill(0);
    }
  }

  const sealer: Sealer = {
    fingerprint,
    seal(plaintext, aad) {
      const dataKey = randomBytes(DATA_KEY_BYTES);
      try {
        const body = toBase64Url(gcmEncrypt(dataKey, plaintext, bodyAad(aad)));
        return [VERSION, fingerprint, wrapDataKey(dataKey, aad), body].join('.');
      } finally {
        dataKey.fill(0);
      }
    },
    unseal(sealed, aad) {
      const parts = parseSealed(sealed);
      return withDataKey(parts, aad, (dataKey) => decryptBody(dataKey, parts, aad));
    },
    rewrap(sealed, aad, newSealer) {
      const wrapForNewMaster = dataKeyWrappers.get(newSealer);
      if (!wrapForNewMaster) throw new KeyStoreError('rewrap needs a sealer made by createSealer');
      const parts = parseSealed(sealed);
      if (parts.fingerprint === newSealer.fingerprint) return sealed;
      return withDataKey(parts, aad, (dataKey) => {
        // Authenticate the whole item before vouching for it under the new master key.
        decryptBody(dataKey, parts, aad).fill(0);
        return [VERSION, newSealer.fingerprint, wrapForNewMaster(dataKey, aad), parts.body].join('.');
      });
    },
  };
  dataKeyWrappers.set(sealer, wrapDataKey);
  return sealer;
}

function masterKeyFingerprint(master: Buffer): string {
  const mac = createHmac('sha256', master).update('pca-keystore master key fingerprint v1').digest();
  return toBase64Url(mac.subarray(0, FINGERPRINT_BYTES));
}

function decryptBody(dataKey: Buffer, parts: SealedParts, aad: string): Buffer {
  const plaintext = gcmDecrypt(dataKey, parts.bodyBox, bodyAad(aad));
  if (!plaintext) throw authenticationFailure('encrypted body');
  return plaintext;
}

const wrapAad = (fingerprint: string, aad: string) => `pca-data-key|${VERSION}|${fingerprint}|${aad}`;
const bodyAad = (aad: string) => `pca-sealed-body|${VERSION}|${aad}`;

function authenticationFailure(part: string): KeyStoreError {
  return new KeyStoreError(`sealed key failed authentication (${part}): it was tampered with or belongs to a different key id`);
}

function parseSealed(sealed: string): SealedParts {
  const parts = sealed.split('.');
  if (parts[0] !== VERSION) throw new KeyStoreError(`sealed key has an unsupported format (expected ${VERSION})`);
  if (parts.length !== 4) throw new KeyStoreError('sealed key is malformed (expected 4 parts)');
  const [, fingerprint, wrapped, body] = parts;
  return { fingerprint, wrappedDataKey: fromBase64Url(wrapped), body, bodyBox: fromBase64Url(body) };
}

function gcmEncrypt(key: Buffer, plaintext: Uint8Array, aad: string): Buffer {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  return Buffer.concat([iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

/** Returns undefined when the box does not authenticate. */
function gcmDecrypt(key: Buffer, box: Buffer, aad: string): Buffer | undefined {
  if (box.length < IV_BYTES + TAG_BYTES) return undefined;
  const decipher = createDecipheriv('aes-256-gcm', key, box.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(box.subarray(box.length - TAG_BYTES));
  try {
    return Buffer.concat([decipher.update(box.subarray(IV_BYTES, box.length - TAG_BYTES)), decipher.final()]);
  } catch {
    return undefined;
  }
}

const toBase64Url = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');

/** Strict: Node's decoder skips foreign characters and ignores spare bits, which would hide some edits. */
function fromBase64Url(text: string): Buffer {
  const bytes = Buffer.from(text, 'base64url');
  if (text.length === 0 || bytes.toString('base64url') !== text) {
    throw new KeyStoreError('sealed key is malformed (invalid base64url)');
  }
  return bytes;
}
