/** Objects on a PKCS#11 token: finding them, the key pair templates, and a key's public half and algorithm. */
import { createPublicKey, type JsonWebKey } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { EC_CURVES, keyFamily, RSA_MODULUS_BITS, type KeyAlgorithm } from '../x509/algorithms.ts';
import { contentOf, readSingle } from '../x509/der-reader.ts';
import { objectIdentifier, Tag } from '../x509/der-writer.ts';
import { KeyStoreError } from './key-store-errors.ts';
import type { Handle, Pkcs11 } from './pkcs11-connection.ts';

export type EcAlgorithm = keyof typeof EC_CURVES;

export function findObjects(lib: Pkcs11, session: Handle, template: pkcs11js.Template): Handle[] {
  lib.C_FindObjectsInit(session, template);
  try {
    return lib.C_FindObjects(session, 16);
  } finally {
    lib.C_FindObjectsFinal(session);
  }
}

export function keyPairGeneration(alg: KeyAlgorithm): { mechanism: number; publicTemplate: pkcs11js.Template } {
  if (keyFamily(alg) === 'RSA') {
    return {
      mechanism: pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN,
      publicTemplate: [
        { type: pkcs11js.CKA_MODULUS_BITS, value: RSA_MODULUS_BITS[alg] },
        { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
      ],
    };
  }
  return {
    mechanism: pkcs11js.CKM_EC_KEY_PAIR_GEN,
    publicTemplate: [{ type: pkcs11js.CKA_EC_PARAMS, value: curveParameters(alg as EcAlgorithm) }],
  };
}

/** CKA_EC_PARAMS: the DER OID of the named curve. */
export const curveParameters = (alg: EcAlgorithm) => Buffer.from(objectIdentifier(EC_CURVES[alg].oid));

export function publicKeySpki(lib: Pkcs11, session: Handle, publicKey: Handle, alg: KeyAlgorithm): Uint8Array {
  let jwk: JsonWebKey;
  if (keyFamily(alg) === 'RSA') {
    const [modulus, exponent] = attributes(lib, session, publicKey, [pkcs11js.CKA_MODULUS, pkcs11js.CKA_PUBLIC_EXPONENT]);
    jwk = { kty: 'RSA', n: modulus.toString('base64url'), e: exponent.toString('base64url') };
  } else {
    const curve = EC_CURVES[alg as EcAlgorithm];
    const [encodedPoint] = attributes(lib, session, publicKey, [pkcs11js.CKA_EC_POINT]);
    const point = uncompressedPoint(encodedPoint, curve.bits);
    const size = Math.ceil(curve.bits / 8);
    jwk = {
      kty: 'EC',
      crv: curve.namedCurve,
      x: point.subarray(1, 1 + size).toString('base64url'),
      y: point.subarray(1 + size).toString('base64url'),
    };
  }
  return new Uint8Array(createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'der' }));
}

/** CKA_EC_POINT is a DER OCTET STRING around 04 || X || Y (some older tokens return the bare point). */
export function uncompressedPoint(encoded: Buffer, bits: number): Buffer {
  const length = 1 + 2 * Math.ceil(bits / 8);
  const point = encoded.length === length ? encoded : Buffer.from(contentOf(readSingle(encoded, Tag.OCTET_STRING)));
  if (point.length !== length || point[0] !== 0x04) throw new KeyStoreError('the token returned an unexpected EC point');
  return point;
}

/** Which KeyAlgorithm a private key on the token is, from its public attributes. */
export function privateKeyAlgorithm(lib: Pkcs11, session: Handle, key: Handle): KeyAlgorithm | undefined {
  const [keyType] = attributes(lib, session, key, [pkcs11js.CKA_KEY_TYPE]);
  const type = keyType.readUIntLE(0, Math.min(keyType.length, 6));
  if (type === pkcs11js.CKK_RSA) {
    const [modulus] = attributes(lib, session, key, [pkcs11js.CKA_MODULUS]);
    const bits = modulus.length * 8;
    return (Object.keys(RSA_MODULUS_BITS) as KeyAlgorithm[]).find((alg) => RSA_MODULUS_BITS[alg] === bits);
  }
  if (type === pkcs11js.CKK_EC) {
    const [params] = attributes(lib, session, key, [pkcs11js.CKA_EC_PARAMS]);
    return (Object.keys(EC_CURVES) as EcAlgorithm[]).find((alg) => curveParameters(alg).equals(params));
  }
  return undefined;
}

export function attributes(lib: Pkcs11, session: Handle, object: Handle, types: number[]): Buffer[] {
  return lib
    .C_GetAttributeValue(
      session,
      object,
      types.map((type) => ({ type })),
    )
    .map(({ value }) => value);
}

export function parseKeyRef(keyRef: string): Buffer {
  const match = /^p11:((?:[0-9a-f]{2}){1,64})$/.exec(keyRef);
  if (!match) throw new KeyStoreError('not a PKCS#11 key reference');
  return Buffer.from(match[1], 'hex');
}
