/**
 * PKCS#12 (RFC 7292) in the layout OpenSSL 3 writes by default: certificates in a PBES2-encrypted SafeContents,
 * the key in a PBES2 shrouded key bag, an HMAC-SHA256 integrity MAC. OpenSSL 3, Java ≥ 12 and Windows 10 1709+
 * read it; older Windows versions, which only know RC2/3DES, do not.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import * as asn1js from 'asn1js';
import { iteratedSha256 } from './iterated-hash.ts';
import { Oid } from '../x509/oids.ts';
import { PBKDF2_ITERATIONS, encryptPkcs8, pbes2Encrypt } from './private-key-formats.ts';

const OID = {
  data: '1.2.840.113549.1.7.1',
  encryptedData: '1.2.840.113549.1.7.6',
  shroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  friendlyName: '1.2.840.113549.1.9.20',
  localKeyId: '1.2.840.113549.1.9.21',
  sha256: Oid.sha256,
} as const;

const MAC_SALT_BYTES = 16;

export interface Pkcs12Input {
  pkcs8: Uint8Array;
  certificate: Uint8Array;
  /** Issuer first, root last. */
  chain: Uint8Array[];
  password: string;
  /** Shown by Windows' certificate store and by keytool as the alias. */
  friendlyName?: string;
}

/**
 * DER PFX holding the key, the leaf and its chain; key and leaf are paired by a localKeyId attribute. Its three key
 * derivations run off the event loop (libuv's pool for PBKDF2, a worker for the MAC's iterated hash), concurrently.
 */
export async function buildPkcs12({ pkcs8, certificate, chain, password, friendlyName }: Pkcs12Input): Promise<Uint8Array> {
  const leafAttributes = [
    attribute(OID.localKeyId, new asn1js.OctetString({ valueHex: createHash('sha1').update(certificate).digest() })),
    ...(friendlyName === undefined ? [] : [attribute(OID.friendlyName, new asn1js.BmpString({ value: friendlyName }))]),
  ];
  const certificates = safeContents([certBag(certificate, leafAttributes), ...chain.map((der) => certBag(der, []))]);
  const macSalt = randomBytes(MAC_SALT_BYTES);
  const [encryptedKey, encryptedCertificates, macKey] = await Promise.all([
    encryptPkcs8(pkcs8, password),
    encryptedContentInfo(certificates, password),
    pkcs12MacKey(password, macSalt, PBKDF2_ITERATIONS),
  ]);
  const keyBag = safeBag(OID.shroudedKeyBag, asn1js.fromBER(encryptedKey).result, leafAttributes);
  const authenticatedSafe = der(new asn1js.Sequence({ value: [encryptedCertificates, dataContentInfo(safeContents([keyBag]))] }));
  return der(
    new asn1js.Sequence({
      value: [new asn1js.Integer({ value: 3 }), dataContentInfo(authenticatedSafe), macData(authenticatedSafe, macKey, macSalt)],
    }),
  );
}

function der(value: asn1js.BaseBlock): Uint8Array {
  return new Uint8Array(value.toBER());
}

/** A SET OF in DER order, its elements sorted by their encodings (X.690 11.6): asn1js writes them as given. */
function derSetOf(elements: asn1js.BaseBlock[]): asn1js.Set {
  const encoded = elements.map((element) => ({ element, bytes: Buffer.from(element.toBER()) }));
  encoded.sort((a, b) => Buffer.compare(a.bytes, b.bytes));
  return new asn1js.Set({ value: encoded.map(({ element }) => element) });
}

function contextTag0(value: asn1js.BaseBlock): asn1js.Constructed {
  return new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: [value] });
}

function attribute(oid: string, value: asn1js.BaseBlock): asn1js.Sequence {
  return new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: oid }), new asn1js.Set({ value: [value] })] });
}

function safeBag(bagId: string, bagValue: asn1js.BaseBlock, attributes: asn1js.Sequence[]): asn1js.Sequence {
  return new asn1js.Sequence({
    value: [
      new asn1js.ObjectIdentifier({ value: bagId }),
      contextTag0(bagValue),
      ...(attributes.length === 0 ? [] : [derSetOf(attributes)]),
    ],
  });
}

function certBag(certificate: Uint8Array, attributes: asn1js.Sequence[]): asn1js.Sequence {
  const value = new asn1js.Sequence({
    value: [new asn1js.ObjectIdentifier({ value: OID.x509Certificate }), contextTag0(new asn1js.OctetString({ valueHex: certificate }))],
  });
  return safeBag(OID.certBag, value, attributes);
}

function safeContents(bags: asn1js.Sequence[]): Uint8Array {
  return der(new asn1js.Sequence({ value: bags }));
}

function dataContentInfo(content: Uint8Array): asn1js.Sequence {
  return new asn1js.Sequence({
    value: [new asn1js.ObjectIdentifier({ value: OID.data }), contextTag0(new asn1js.OctetString({ valueHex: content }))],
  });
}

/** ContentInfo of type encryptedData (RFC 5652 §8) around PBES2-encrypted content. */
async function encryptedContentInfo(content: Uint8Array, password: string): Promise<asn1js.Sequence> {
  const { algorithm, ciphertext } = await pbes2Encrypt(content, password);
  const encryptedData = new asn1js.Sequence({
    value: [
      new asn1js.Integer({ value: 0 }),
      new asn1js.Sequence({
        value: [
          new asn1js.ObjectIdentifier({ value: OID.data }),
          asn1js.fromBER(algorithm).result,
          new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 0 }, valueHex: ciphertext }),
        ],
      }),
    ],
  });
  return new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: OID.encryptedData }), contextTag0(encryptedData)] });
}

function macData(authenticatedSafe: Uint8Array, macKey: Uint8Array, salt: Uint8Array): asn1js.Sequence {
  const mac = createHmac('sha256', macKey).update(authenticatedSafe).digest();
  return new asn1js.Sequence({
    value: [
      new asn1js.Sequence({
        value: [
          new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: OID.sha256 }), new asn1js.Null()] }),
          new asn1js.OctetString({ valueHex: mac }),
        ],
      }),
      new asn1js.OctetString({ valueHex: salt }),
      new asn1js.Integer({ value: PBKDF2_ITERATIONS }),
    ],
  });
}

/**
 * The PKCS#12 key derivation (RFC 7292 B.2) with SHA-256 and ID 3 (MAC key). The HMAC-SHA256 key is exactly one
 * hash output long, so only the first block of the algorithm is needed.
 */
async function pkcs12MacKey(password: string, salt: Uint8Array, iterations: number): Promise<Uint8Array> {
  const blockBytes = 64;
  const diversifier = Buffer.alloc(blockBytes, 3);
  const bmpPassword = Buffer.from(`${password}\0`, 'utf16le').swap16();
  const input = Buffer.concat([repeatToBlocks(salt, blockBytes), repeatToBlocks(bmpPassword, blockBytes)]);
  const first = createHash('sha256').update(diversifier).update(input).digest();
  return iteratedSha256(first, iterations - 1);
}

/** `bytes` repeated and cut to the next multiple of `blockBytes` (empty stays empty). */
function repeatToBlocks(bytes: Uint8Array, blockBytes: number): Buffer {
  const length = Math.ceil(bytes.length / blockBytes) * blockBytes;
  return Buffer.from(Array.from({ length }, (_, i) => bytes[i % bytes.length]));
}
