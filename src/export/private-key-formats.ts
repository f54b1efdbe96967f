/**
 * Private-key encodings of the export contract (§4.4.5): the traditional PEM forms (PKCS#1, SEC 1) handed out
 * without a password, and PKCS#8 encrypted with PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) with one.
 * Passwords are printable ASCII (validateExportPassword), so their UTF-8 bytes are what OpenSSL and Java feed
 * to PBKDF2 as well.
 */
import { createCipheriv, createPrivateKey, pbkdf2, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { errors } from '../errors.ts';
import { DER_NULL, objectIdentifier, octetString, sequence, smallInteger } from '../x509/der-writer.ts';
import { toPem } from '../x509/pem.ts';

const OID = {
  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
  hmacWithSha256: '1.2.840.113549.2.9',
  aes256Cbc: '2.16.840.1.101.3.4.1.42',
} as const;

/** PBKDF2 rounds for every password-protected export; OpenSSL 3 and Java 17 accept this count. */
export const PBKDF2_ITERATIONS = 100_000;
const SALT_BYTES = 16;
const MAX_PASSWORD_BYTES = 32;
/**
 * Every password-protected export is open to offline guessing, and JKS's KeyProtector (unsalted, iterated SHA-1)
 * makes each guess cheap: a short password would protect nothing.
 */
export const MIN_PASSWORD_BYTES = 8;

/** 8–32 printable ASCII characters other than space: letters, digits and symbols. */
export function validateExportPassword(password: string): void {
  if (password.length < MIN_PASSWORD_BYTES || password.length > MAX_PASSWORD_BYTES) {
    throw errors.invalidParameter(`password must be ${MIN_PASSWORD_BYTES} to ${MAX_PASSWORD_BYTES} bytes long`);
  }
  checkExportPasswordSyntax(password);
}

/**
 * The contract's syntax of the field (§4.4.5): at most 32 printable ASCII characters other than space. Judged before
 * the certificate is looked up (§2), whether or not the service holds a key for it to protect.
 */
export function checkExportPasswordSyntax(password: string): void {
  if (password.length > MAX_PASSWORD_BYTES) throw errors.invalidParameter(`password must be at most ${MAX_PASSWORD_BYTES} bytes long`);
  if (!/^[\x21-\x7e]+$/.test(password)) {
    throw errors.invalidParameter('password may contain only letters, digits and symbols');
  }
}

/** The contract's `private_key` form ends with a CRLF, unlike certificates. */
function privateKeyPem(label: string, der: Uint8Array): string {
  return `${toPem(label, der)}\r\n`;
}

/** PKCS#1 `RSA PRIVATE KEY` or SEC 1 `EC PRIVATE KEY` (named curve and public key included) from PKCS#8 DER. */
export function pkcs8ToTraditionalPem(pkcs8: Uint8Array): string {
  const key = createPrivateKey({ key: Buffer.from(pkcs8), format: 'der', type: 'pkcs8' });
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return privateKeyPem('RSA PRIVATE KEY', key.export({ format: 'der', type: 'pkcs1' }));
    case 'ec':
      return privateKeyPem('EC PRIVATE KEY', key.export({ format: 'der', type: 'sec1' }));
    default:
      throw new Error(`cannot export a ${key.asymmetricKeyType} private key`);
  }
}

/** PBES2 ciphertext and the AlgorithmIdentifier that tells a reader how to decrypt it (RFC 8018 §6.2, A.4). */
export interface Pbes2Encrypted {
  /** DER */
  algorithm: Uint8Array;
  ciphertext: Uint8Array;
}

const pbkdf2Async = promisify(pbkdf2);

/** PBKDF2 runs on libuv's pool: its 100,000 rounds would hold the event loop for tens of milliseconds. */
export async function pbes2Encrypt(plaintext: Uint8Array, password: string): Promise<Pbes2Encrypted> {
  const salt = randomBytes(SALT_BYTES);
  const iv = randomBytes(16);
  const key = await pbkdf2Async(Buffer.from(password, 'utf8'), salt, PBKDF2_ITERATIONS, 32, 'sha256');
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const algorithm = sequence(
    objectIdentifier(OID.pbes2),
    sequence(
      sequence(
        objectIdentifier(OID.pbkdf2),
        sequence(octetString(salt), smallInteger(PBKDF2_ITERATIONS), sequence(objectIdentifier(OID.hmacWithSha256), DER_NULL)),
      ),
      sequence(objectIdentifier(OID.aes256Cbc), octetString(iv)),
    ),
  );
  return { algorithm, ciphertext };
}

/** EncryptedPrivateKeyInfo DER (RFC 5958) of a PKCS#8 key; also the bag value of a PKCS#12 shrouded key bag. */
export async function encryptPkcs8(pkcs8: Uint8Array, password: string): Promise<Uint8Array> {
  const { algorithm, ciphertext } = await pbes2Encrypt(pkcs8, password);
  return sequence(algorithm, octetString(ciphertext));
}

export async function encryptPkcs8Pem(pkcs8: Uint8Array, password: string): Promise<string> {
  return privateKeyPem('ENCRYPTED PRIVATE KEY', await encryptPkcs8(pkcs8, password));
}
