/**
 * Key pairs the service makes for `POST CERT` (§4.4.1): generated in Node's WebCrypto, exported once as PKCS#8
 * and sealed under the master key (aad = the certificate id), so the row can hand the key out only on export.
 */
import { concurrencyLimit } from '../../concurrency.ts';
import { keyFamily, webCryptoKeyParams, type KeyAlgorithm } from '../../x509/algorithms.ts';

/**
 * RSA key pairs take 0.1-2 s each on one of libuv's four pool threads, which also sign with RSA CA keys and derive
 * export passwords: at most two at once leave the other two to everyone else (60 RSA-4096 requests at once had
 * held another tenant's issuance for over a minute). EC pairs take microseconds and are not limited.
 */
const RSA_KEY_PAIRS_AT_ONCE = 2;
const rsaTurn = concurrencyLimit(RSA_KEY_PAIRS_AT_ONCE);

export interface ServerKeyPair {
  spki: Uint8Array;
  pkcs8: Uint8Array;
}

export function generateServerKey(alg: KeyAlgorithm): Promise<ServerKeyPair> {
  return keyFamily(alg) === 'RSA' ? rsaTurn(() => generatePair(alg)) : generatePair(alg);
}

async function generatePair(alg: KeyAlgorithm): Promise<ServerKeyPair> {
  const subtle = globalThis.crypto.subtle;
  const pair = (await subtle.generateKey(webCryptoKeyParams(alg), true, ['sign', 'verify'])) as CryptoKeyPair;
  const [spki, pkcs8] = await Promise.all([subtle.exportKey('spki', pair.publicKey), subtle.exportKey('pkcs8', pair.privateKey)]);
  return { spki: new Uint8Array(spki), pkcs8: new Uint8Array(pkcs8) };
}
