/**
 * PKCS#11 key custody (an HSM, or SoftHSM2 in tests): private keys are generated on the token as sensitive,
 * never-extractable token objects and used only through it.
 *
 * Built on pkcs11js directly rather than node-webcrypto-p11: that library's RSA signing takes the hash bound to
 * the key at generation (not the one asked for), picks mechanisms by the order the token lists them, and
 * initialises the module without CKF_OS_LOCKING_OK although its async calls run on libuv worker threads.
 * Here hashing happens in Node and the token gets the raw mechanisms (CKM_ECDSA over the digest, CKM_RSA_PKCS over
 * the DigestInfo), which works the same on every token.
 *
 * keyRef = `p11:<hex CKA_ID>`; the id is random, so a key is found again after a restart by (private key, id).
 */
import { createHash, createPublicKey, randomBytes, type JsonWebKey } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { errors } from '../errors.ts';
import { ecdsaRawToDer, objectIdentifier, Tag } from '../x509/der-writer.ts';
import { contentOf, readSingle } from '../x509/der-reader.ts';
import {
  EC_CURVES,
  keyFamily,
  NODE_HASH,
  RSA_MODULUS_BITS,
  type HashAlgorithm,
  type KeyAlgorithm,
} from '../x509/algorithms.ts';
import type { GeneratedKey, KeyStore } from './key-store.ts';
import { KeyStoreError } from './key-store-errors.ts';

type Handle = Buffer;
type Pkcs11 = InstanceType<typeof pkcs11js.PKCS11>;

export interface Pkcs11KeyStoreOptions {
  /** Path of the PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so. */
  library: string;
  /** Index among the slots holding an initialised token (default 0); ignored when tokenLabel is given. */
  slot?: number;
  tokenLabel?: string;
  pin: string;
  /** Sessions kept open on the token; each runs one operation at a time (default 4, libuv's pool size). */
  sessions?: number;
}

type EcAlgorithm = keyof typeof EC_CURVES;

/** CK_STATE values; pkcs11js does not export them. */
const CKS_RO_USER_FUNCTIONS = 1;
const CKS_RW_USER_FUNCTIONS = 3;
const MAX_SIGNATURE_BYTES = 1024;

/** DER DigestInfo prefixes (RFC 8017 §9.2 note 1): PKCS#1 v1.5 signs prefix || digest. */
const DIGEST_INFO_PREFIX: Record<HashAlgorithm, Buffer> = {
  SHA256: Buffer.from('3031300d060960864801650304020105000420', 'hex'),
  SHA384: Buffer.from('3041300d060960864801650304020205000430', 'hex'),
  SHA512: Buffer.from('3051300d060960864801650304020305000440', 'hex'),
};

/** Errors after which the sessions are useless: reconnect on the next call. */
const CONNECTION_LOST = new Set([
  pkcs11js.CKR_SESSION_HANDLE_INVALID,
  pkcs11js.CKR_SESSION_CLOSED,
  pkcs11js.CKR_DEVICE_REMOVED,
  pkcs11js.CKR_DEVICE_ERROR,
  pkcs11js.CKR_TOKEN_NOT_PRESENT,
  pkcs11js.CKR_USER_NOT_LOGGED_IN,
  pkcs11js.CKR_CRYPTOKI_NOT_INITIALIZED,
]);

/** A cached key handle whose object is gone (deleted by another process). */
const STALE_HANDLE = new Set([pkcs11js.CKR_KEY_HANDLE_INVALID, pkcs11js.CKR_OBJECT_HANDLE_INVALID]);

interface TokenKey {
  handle: Handle;
  algorithm: KeyAlgorithm | undefined;
}

interface Connection {
  lib: Pkcs11;
  libraryPath: string;
  tokenLabel: string;
  pool: SessionPool;
  /** Object handles are valid in every session of the application, so one lookup serves the whole pool. */
  keys: Map<string, TokenKey>;
}

export function createPkcs11KeyStore(options: Pkcs11KeyStoreOptions): KeyStore {
  let connection: Promise<Connection> | undefined;
  let closed = false;

  function connected(): Promise<Connection> {
    if (closed) return Promise.reject(errors.unavailable('the PKCS#11 key store is closed'));
    connection ??= Promise.resolve()
      .then(() => connect(options))
      .catch((error: unknown) => {
        connection = undefined; // a token plugged in or a PIN fixed later gets a fresh attempt
        throw error;
      });
    return connection;
  }

  /** Runs `op` on a free session; a lost session drops the connection so the next call reconnects. */
  async function withSession<T>(op: (conn: Connection, session: Handle) => Promise<T> | T): Promise<T> {
    const current = connected();
    const conn = await current;
    try {
      return await conn.pool.run((session) => op(conn, session));
    } catch (error) {
      if (!(error instanceof pkcs11js.Pkcs11Error && CONNECTION_LOST.has(error.code))) throw error;
      if (connection === current) {
        connection = undefined;
        void disconnect(conn).catch(() => undefined);
      }
      throw errors.unavailable(`PKCS#11 token '${conn.tokenLabel}' is unavailable: ${error.message}`, error);
    }
  }

  function tokenKey(conn: Connection, session: Handle, keyRef: string): TokenKey {
    let key = conn.keys.get(keyRef);
    if (!key) {
      const id = parseKeyRef(keyRef);
      const [handle, ...others] = findObjects(conn.lib, session, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
        { type: pkcs11js.CKA_TOKEN, value: true },
        { type: pkcs11js.CKA_ID, value: id },
      ]);
      if (!handle) throw new KeyStoreError(`PKCS#11 key ${keyRef} not found on token '${conn.tokenLabel}'`);
      if (others.length > 0) throw new KeyStoreError(`PKCS#11 key id of ${keyRef} is not unique on the token`);
      key = { handle, algorithm: privateKeyAlgorithm(conn.lib, session, handle) };
      conn.keys.set(keyRef, key);
    }
    return key;
  }

  return {
    kind: 'pkcs11',

    async generate(alg: KeyAlgorithm): Promise<GeneratedKey> {
      return withSession(async ({ lib }, session) => {
        const id = randomBytes(16);
        const keyRef = `p11:${id.toString('hex')}`;
        const { mechanism, publicTemplate } = keyPairGeneration(alg);
        const common = [
          { type: pkcs11js.CKA_ID, value: id },
          { type: pkcs11js.CKA_LABEL, value: `pca-${id.toString('hex')}` },
        ];
        const keys = await lib.C_GenerateKeyPairAsync(
          session,
          { mechanism },
          // The public half is a session object: read once for the SPKI, then destroyed.
          [...common, ...publicTemplate, { type: pkcs11js.CKA_TOKEN, value: false }, { type: pkcs11js.CKA_VERIFY, value: true }],
          [
            ...common,
            { type: pkcs11js.CKA_TOKEN, value: true },
            { type: pkcs11js.CKA_PRIVATE, value: true },
            { type: pkcs11js.CKA_SENSITIVE, value: true },
            { type: pkcs11js.CKA_EXTRACTABLE, value: false },
            { type: pkcs11js.CKA_SIGN, value: true },
            { type: pkcs11js.CKA_DECRYPT, value: false },
            { type: pkcs11js.CKA_UNWRAP, value: false },
            { type: pkcs11js.CKA_DERIVE, value: false },
          ],
        );
        try {
          return { keyRef, spki: publicKeySpki(lib, session, keys.publicKey, alg) };
        } catch (error) {
          lib.C_DestroyObject(session, keys.privateKey); // no orphan on the token
          throw error;
        } finally {
          lib.C_DestroyObject(session, keys.publicKey);
        }
      });
    },

    async sign(keyRef: string, alg: KeyAlgorithm, hash: HashAlgorithm, data: Uint8Array): Promise<Uint8Array> {
      const digest = createHash(NODE_HASH[hash]).update(data).digest();
      const isRsa = keyFamily(alg) === 'RSA';
      return withSession(async (conn, session) => {
        const key = tokenKey(conn, session, keyRef);
        if (key.algorithm !== alg) {
          throw new KeyStoreError(`PKCS#11 key ${keyRef} is ${key.algorithm ?? 'of an unsupported type'}, not ${alg}`);
        }
        try {
          conn.lib.C_SignInit(session, { mechanism: isRsa ? pkcs11js.CKM_RSA_PKCS : pkcs11js.CKM_ECDSA }, key.handle);
        } catch (error) {
          if (!(error instanceof pkcs11js.Pkcs11Error && STALE_HANDLE.has(error.code))) throw error;
          conn.keys.delete(keyRef); // deleted behind our back (another process): look it up afresh next time
          throw new KeyStoreError(`PKCS#11 key ${keyRef} is no longer on token '${conn.tokenLabel}'`, { cause: error });
        }
        const input = isRsa ? Buffer.concat([DIGEST_INFO_PREFIX[hash], digest]) : digest;
        const signature = await conn.lib.C_SignAsync(session, input, Buffer.alloc(MAX_SIGNATURE_BYTES));
        return isRsa ? new Uint8Array(signature) : ecdsaRawToDer(signature, EC_CURVES[alg as EcAlgorithm].bits);
      });
    },

    async destroy(keyRef: string): Promise<void> {
      const id = parseKeyRef(keyRef);
      return withSession(({ lib, keys }, session) => {
        keys.delete(keyRef);
        const objects = findObjects(lib, session, [
          { type: pkcs11js.CKA_TOKEN, value: true },
          { type: pkcs11js.CKA_ID, value: id },
        ]);
        for (const handle of objects) {
          try {
            lib.C_DestroyObject(session, handle);
          } catch (error) {
            // Destroyed by another process since the lookup: gone is what was asked (destroy is idempotent).
            if (!(error instanceof pkcs11js.Pkcs11Error && STALE_HANDLE.has(error.code))) throw error;
          }
        }
      });
    },

    async check(sampleKeyRef?: string): Promise<void> {
      await withSession((conn, session) => {
        const { state } = conn.lib.C_GetSessionInfo(session);
        if (state !== CKS_RW_USER_FUNCTIONS && state !== CKS_RO_USER_FUNCTIONS) {
          throw errors.unavailable(`PKCS#11 token '${conn.tokenLabel}': the session is not logged in`);
        }
        if (sampleKeyRef) tokenKey(conn, session, sampleKeyRef);
      });
    },

    async close(): Promise<void> {
      closed = true;
      const current = connection;
      connection = undefined;
      const conn = await current?.catch(() => undefined);
      if (conn) await disconnect(conn);
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Connecting

/** Loads the module, picks the token, opens the sessions and logs in; every failure is a 503 naming its cause. */
function connect(options: Pkcs11KeyStoreOptions): Connection {
  const lib = acquireLibrary(options.library);
  const sessions: Handle[] = [];
  try {
    const { slot, tokenLabel } = chooseToken(lib, options);
    const flags = pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION;
    for (let i = 0; i < (options.sessions ?? 4); i++) sessions.push(lib.C_OpenSession(slot, flags));
    login(lib, sessions[0], tokenLabel, options.pin);
    return { lib, libraryPath: options.library, tokenLabel, pool: createSessionPool(sessions), keys: new Map() };
  } catch (error) {
    closeSessions(lib, sessions);
    releaseLibrary(options.library);
    throw error;
  }
}

/** Waits for running operations, then closes the sessions (the last one closed logs the application out). */
async function disconnect(conn: Connection): Promise<void> {
  closeSessions(conn.lib, await conn.pool.drain());
  releaseLibrary(conn.libraryPath);
}

function chooseToken(lib: Pkcs11, { slot, tokenLabel }: Pkcs11KeyStoreOptions): { slot: Handle; tokenLabel: string } {
  const tokens = lib
    .C_GetSlotList(true)
    .map((handle) => ({ slot: handle, info: lib.C_GetTokenInfo(handle) }))
    .filter(({ info }) => (info.flags & pkcs11js.CKF_TOKEN_INITIALIZED) !== 0)
    .map(({ slot: handle, info }) => ({ slot: handle, tokenLabel: info.label.trimEnd() }));
  const labels = tokens.map((token) => `'${token.tokenLabel}'`).join(', ') || 'none';
  if (tokenLabel !== undefined) {
    const token = tokens.find((candidate) => candidate.tokenLabel === tokenLabel);
    if (!token) throw errors.unavailable(`no PKCS#11 token labelled '${tokenLabel}' (initialised tokens: ${labels})`);
    return token;
  }
  const index = slot ?? 0;
  const token = tokens[index];
  if (!token) throw errors.unavailable(`no initialised PKCS#11 token at slot index ${index} (initialised tokens: ${labels})`);
  return token;
}

function login(lib: Pkcs11, session: Handle, tokenLabel: string, pin: string): void {
  try {
    lib.C_Login(session, pkcs11js.CKU_USER, pin);
  } catch (error) {
    if (!(error instanceof pkcs11js.Pkcs11Error)) throw error;
    // Another store in this process is already logged in to the token: the login state is per application.
    if (error.code === pkcs11js.CKR_USER_ALREADY_LOGGED_IN) return;
    const reason =
      error.code === pkcs11js.CKR_PIN_INCORRECT ? 'wrong PIN'
      : error.code === pkcs11js.CKR_PIN_LOCKED ? 'the PIN is locked'
      : error.message;
    throw errors.unavailable(`PKCS#11 login to token '${tokenLabel}' failed: ${reason}`, error);
  }
}

function closeSessions(lib: Pkcs11, sessions: Handle[]): void {
  for (const session of sessions) {
    try {
      lib.C_CloseSession(session);
    } catch {
      // already gone with its token
    }
  }
}

/**
 * One loaded module per library path, shared by the stores of this process: C_Finalize ends every session of the
 * process, so only the last store to let go may call it.
 */
const loadedLibraries = new Map<string, { lib: Pkcs11; users: number }>();

function acquireLibrary(path: string): Pkcs11 {
  const loaded = loadedLibraries.get(path);
  if (loaded) {
    loaded.users++;
    return loaded.lib;
  }
  const lib = new pkcs11js.PKCS11();
  try {
    lib.load(path);
  } catch (error) {
    throw errors.unavailable(`PKCS#11 library ${path} cannot be loaded: ${(error as Error).message}`, error);
  }
  try {
    // Async calls run on worker threads: the module must lock for itself.
    lib.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  } catch (error) {
    if (!(error instanceof pkcs11js.Pkcs11Error && error.code === pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
      lib.close();
      throw errors.unavailable(`PKCS#11 library ${path} failed to initialise: ${(error as Error).message}`, error);
    }
  }
  loadedLibraries.set(path, { lib, users: 1 });
  return lib;
}

function releaseLibrary(path: string): void {
  const loaded = loadedLibraries.get(path);
  if (!loaded || --loaded.users > 0) return;
  loadedLibraries.delete(path);
  try {
    loaded.lib.C_Finalize();
  } finally {
    loaded.lib.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Sessions: a PKCS#11 session runs one operation at a time (CKR_OPERATION_ACTIVE otherwise).

interface SessionPool {
  run<T>(op: (session: Handle) => Promise<T> | T): Promise<T>;
  /** Takes every session once the operations queued before it have finished; the pool is unusable afterwards. */
  drain(): Promise<Handle[]>;
}

function createSessionPool(sessions: Handle[]): SessionPool {
  const idle = [...sessions];
  const waiting: ((session: Handle) => void)[] = [];

  const acquire = (): Promise<Handle> =>
    idle.length > 0 ? Promise.resolve(idle.pop()!) : new Promise((resolve) => waiting.push(resolve));

  function release(session: Handle): void {
    const next = waiting.shift();
    if (next) next(session);
    else idle.push(session);
  }

  return {
    async run(op) {
      const session = await acquire();
      try {
        return await op(session);
      } finally {
        release(session);
      }
    },
    drain: () => Promise.all(sessions.map(acquire)),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Objects and keys

function findObjects(lib: Pkcs11, session: Handle, template: pkcs11js.Template): Handle[] {
  lib.C_FindObjectsInit(session, template);
  try {
    return lib.C_FindObjects(session, 16);
  } finally {
    lib.C_FindObjectsFinal(session);
  }
}

function keyPairGeneration(alg: KeyAlgorithm): { mechanism: number; publicTemplate: pkcs11js.Template } {
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
const curveParameters = (alg: EcAlgorithm) => Buffer.from(objectIdentifier(EC_CURVES[alg].oid));

function publicKeySpki(lib: Pkcs11, session: Handle, publicKey: Handle, alg: KeyAlgorithm): Uint8Array {
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
function uncompressedPoint(encoded: Buffer, bits: number): Buffer {
  const length = 1 + 2 * Math.ceil(bits / 8);
  const point = encoded.length === length ? encoded : Buffer.from(contentOf(readSingle(encoded, Tag.OCTET_STRING)));
  if (point.length !== length || point[0] !== 0x04) throw new KeyStoreError('the token returned an unexpected EC point');
  return point;
}

/** Which KeyAlgorithm a private key on the token is, from its public attributes. */
function privateKeyAlgorithm(lib: Pkcs11, session: Handle, key: Handle): KeyAlgorithm | undefined {
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

function attributes(lib: Pkcs11, session: Handle, object: Handle, types: number[]): Buffer[] {
  return lib.C_GetAttributeValue(session, object, types.map((type) => ({ type }))).map(({ value }) => value);
}

function parseKeyRef(keyRef: string): Buffer {
  const match = /^p11:((?:[0-9a-f]{2}){1,64})$/.exec(keyRef);
  if (!match) throw new KeyStoreError('not a PKCS#11 key reference');
  return Buffer.from(match[1], 'hex');
}
