/**
 * Key pairs the service makes for `POST CERT` (§4.4.1): generated in Node's WebCrypto, exported once as PKCS#8
 * and sealed under the master key (aad = the certificate id), so the row can hand the key out only on export.
 */
import { webCryptoKeyParams, type KeyAlgorithm } from '../../x509/algorithms.ts';

export interface ServerKeyPair {
  spki: Uint8Array;
  pkcs8: Uint8Array;
}

export async function generateServerKey(alg: KeyAlgorithm): Promise<ServerKeyPair> {
  const subtle = globalThis.crypto.subtle;
  const pair = (await subtle.generateKey(webCryptoKeyParams(alg), true, ['sign', 'verify'])) as CryptoKeyPair;
  const [spki, pkcs8] = await Promise.all([subtle.exportKey('spki', pair.publicKey), subtle.exportKey('pkcs8', pair.privateKey)]);
  return { spki: new Uint8Array(spki), pkcs8: new Uint8Array(pkcs8) };
}
