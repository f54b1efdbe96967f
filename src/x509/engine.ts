/**
 * The one pkijs CryptoEngine of the service, over Node's WebCrypto. X.509 code passes it explicitly (never the
 * pkijs global engine). Private-key operations do not go through it: signing is the key store's `Signer`.
 */
import * as pkijs from 'pkijs';

export const cryptoEngine = new pkijs.CryptoEngine({ name: 'node-webcrypto', crypto: globalThis.crypto });
