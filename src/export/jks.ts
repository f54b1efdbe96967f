/**
 * Java KeyStore (JKS, version 2) with one private-key entry, as sun.security.provider.JavaKeyStore writes it.
 * The key is protected with Sun's proprietary key protector (OID 1.3.6.1.4.1.42.2.17.1.1: a SHA-1 keystream
 * XORed over the PKCS#8 key); the file ends with a SHA-1 over the password, "Mighty Aphrodite" and the content.
 * Tomcat and keytool read it with the same password for the store and the key.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as asn1js from 'asn1js';

const MAGIC = 0xfeedfeed;
const VERSION = 2;
const PRIVATE_KEY_ENTRY = 1;
const SUN_KEY_PROTECTOR_OID = '1.3.6.1.4.1.42.2.17.1.1';
const SHA1_BYTES = 20;

export interface JksInput {
  /** ASCII; Java stores it in modified UTF-8, identical to UTF-8 for ASCII. */
  alias: string;
  pkcs8: Uint8Array;
  /** The entry's certificate chain, leaf first. */
  chain: Uint8Array[];
  password: string;
}

export function buildJks({ alias, pkcs8, chain, password }: JksInput): Uint8Array {
  const passwordBytes = javaPasswordBytes(password);
  const content = Buffer.concat([
    uint32(MAGIC),
    uint32(VERSION),
    uint32(1),
    uint32(PRIVATE_KEY_ENTRY),
    javaUtf(alias),
    uint64(Date.now()),
    lengthPrefixed(protectKey(pkcs8, passwordBytes)),
    uint32(chain.length),
    ...chain.flatMap((certificate) => [javaUtf('X.509'), lengthPrefixed(certificate)]),
  ]);
  const integrity = createHash('sha1').update(passwordBytes).update('Mighty Aphrodite', 'utf8').update(content).digest();
  return new Uint8Array(Buffer.concat([content, integrity]));
}

/** Java hashes a password as its UTF-16 code units, big-endian, without a terminator. */
function javaPasswordBytes(password: string): Buffer {
  return Buffer.from(password, 'utf16le').swap16();
}

/**
 * sun.security.provider.KeyProtector.protect: EncryptedPrivateKeyInfo whose data is
 * salt ‖ (key XOR SHA-1 chain seeded by the salt) ‖ SHA-1(password ‖ key).
 */
function protectKey(pkcs8: Uint8Array, passwordBytes: Buffer): Uint8Array {
  const salt = randomBytes(SHA1_BYTES);
  const keystream = Buffer.alloc(Math.ceil(pkcs8.length / SHA1_BYTES) * SHA1_BYTES);
  let digest: Buffer = salt;
  for (let offset = 0; offset < keystream.length; offset += SHA1_BYTES) {
    digest = createHash('sha1').update(passwordBytes).update(digest).digest();
    digest.copy(keystream, offset);
  }
  const encrypted = Buffer.from(pkcs8.map((byte, i) => byte ^ keystream[i]));
  const check = createHash('sha1').update(passwordBytes).update(pkcs8).digest();
  const info = new asn1js.Sequence({
    value: [
      new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: SUN_KEY_PROTECTOR_OID }), new asn1js.Null()] }),
      new asn1js.OctetString({ valueHex: Buffer.concat([salt, encrypted, check]) }),
    ],
  });
  return new Uint8Array(info.toBER());
}

function uint32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value);
  return bytes;
}

function uint64(value: number): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64BE(BigInt(value));
  return bytes;
}

/** DataOutputStream.writeUTF: a 16-bit length, then the bytes. */
function javaUtf(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  return Buffer.concat([Buffer.from([bytes.length >> 8, bytes.length & 0xff]), bytes]);
}

function lengthPrefixed(bytes: Uint8Array): Buffer {
  return Buffer.concat([uint32(bytes.length), bytes]);
}
