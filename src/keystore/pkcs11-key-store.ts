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
import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pkcs11js from 'pkcs11js';
import { errors } from '../errors.ts';
import { EC_CURVES, keyFamily, NODE_HASH, type HashAlgorithm, type KeyAlgorithm } from '../x509/algorithms.ts';
import { ecdsaRawToDer } from '../x509/der-writer.ts';
import type { GeneratedKey, KeyStore } from './key-store.ts';
import { KeyStoreError } from './key-store-errors.ts';
import { createReadWriteLock } from './read-write-lock.ts';
import {
  connect,
  disconnect,
  isPinRefusal,
  type Connection,
  type Handle,
  type Pkcs11,
  type Pkcs11KeyStoreOptions,
  type TokenKey,
} from './pkcs11-connection.ts';
import { SessionPoolDrainedError } from './session-pool.ts';
import { findObjects, keyPairGeneration, parseKeyRef, privateKeyAlgorithm, publicKeySpki, type EcAlgorithm } from './pkcs11-objects.ts';

export type { Pkcs11KeyStoreOptions } from './pkcs11-connection.ts';

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

/**
 * Errors after which the connection is useless: it is replaced. CKR_GENERAL_ERROR is among them because SoftHSM2
 * answers it for every object created once this process found the token's files mid-write (another process writing
 * them), until the module is initialised again; a token that keeps answering it is unavailable.
 */
const CONNECTION_LOST = new Set([
  pkcs11js.CKR_GENERAL_ERROR,
  pkcs11js.CKR_SESSION_HANDLE_INVALID,
  pkcs11js.CKR_SESSION_CLOSED,
  pkcs11js.CKR_DEVICE_REMOVED,
  pkcs11js.CKR_DEVICE_ERROR,
  pkcs11js.CKR_TOKEN_NOT_PRESENT,
  pkcs11js.CKR_USER_NOT_LOGGED_IN,
  pkcs11js.CKR_CRYPTOKI_NOT_INITIALIZED,
]);

/** How long a reload waits for the calls still running on the connection it replaces (see reload). */
const RELOAD_WAIT_MS = 5_000;

/** A cached key handle whose object is gone (deleted by another process, or its token removed). */
const STALE_HANDLE = new Set([pkcs11js.CKR_KEY_HANDLE_INVALID, pkcs11js.CKR_OBJECT_HANDLE_INVALID]);

/**
 * No private key with the asked id on the token (or a stale handle to it), as this connection sees it. SoftHSM2's
 * file store can be wrong about that: it re-reads its object list only when the token's generation counter moved
 * since this process last looked, and its own writes also adopt the counter, so a key another process created just
 * before this process wrote to the token stays invisible until the module is initialised again. A miss is therefore
 * believed only after a reload.
 */
class KeyNotOnTokenError extends KeyStoreError {}

/** `retry` is true when the op runs again on a new connection after the previous one was lost during it. */
type SessionOp<T> = (conn: Connection, session: Handle, retry: boolean) => Promise<T> | T;

/**
 * Token objects are created and destroyed while nothing else of this process uses the token: SoftHSM2 (2.6.1,
 * Debian's) fails a C_GenerateKeyPair with CKR_GENERAL_ERROR now and then when a signature or a look-up on another
 * thread re-indexes the token's object files meanwhile and invalidates the object being written (softhsm/SoftHSMv2#573).
 * The index is per process, so one lock per process, whichever store. Keys are made and destroyed for CAs, never
 * per certificate: signing pauses only while a CA key is generated or destroyed.
 */
const tokenObjects = createReadWriteLock();

/** Destroys the token objects with CKA_ID `id`; answers how many there were. */
function destroyObjects(lib: Pkcs11, session: Handle, id: Buffer): number {
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
  return objects.length;
}

export function createPkcs11KeyStore(options: Pkcs11KeyStoreOptions): KeyStore {
  let connection: Promise<Connection> | undefined;
  let closed = false;
  /**
   * Connects once `before` has settled; a failed attempt is forgotten so the next call tries afresh (a token plugged
   * in later), except a PIN the token refused: each retry would count down its retry counter, and any anonymous
   * request reaching the store (a CRL, /ready) would lock the PIN within seconds. That failure stays until restart.
   */
  function open(before: Promise<unknown>): Promise<Connection> {
    const attempt: Promise<Connection> = before
      .then(() => connect(options))
      .catch((error: unknown) => {
        if (connection === attempt && !isPinRefusal(error)) connection = undefined;
        throw error;
      });
    return attempt;
  }

  function connected(): Promise<Connection> {
    if (closed) return Promise.reject(errors.keyStoreUnavailable('the PKCS#11 key store is closed'));
    connection ??= open(Promise.resolve());
    return connection;
  }

  /**
   * Replaces `stale` (once, whoever asks first) by a connection opened after it is fully closed: the last
   * connection of this process to the module finalises it, so the next initialisation reads the token afresh.
   */
  function reload(stale: Promise<Connection>): void {
    if (closed || connection !== stale) return;
    // A failed close leaves nothing to wait for: the module is let go of either way (releaseLibrary). A call hung on
    // the old connection (a network HSM that stopped answering) holds up its successor for RELOAD_WAIT_MS at most:
    // then the new one opens beside it, on the module as it is, and the old one lets go of the module when its calls
    // end, leaving its sessions open: a module may hand their handle values to the new connection's sessions.
    const closing = new AbortController();
    let successorOpened = false;
    const closedOrWaited = Promise.race([
      stale.then((conn) => disconnect(conn, () => !successorOpened)).finally(() => closing.abort()),
      sleep(RELOAD_WAIT_MS, undefined, { signal: closing.signal }).then(() => {
        successorOpened = true;
      }),
    ]);
    connection = open(closedOrWaited.catch(() => undefined));
  }

  /**
   * Runs `op` on a free session, alongside other ops but never beside one that creates or destroys token objects
   * (`changingObjects`, which runs alone). A key not found is looked up once more on a reloaded connection, and a
   * lost connection (sessions closed, logged out, the module finalised) is replaced once by a reloaded one: a 503 only
   * if that fails too. A pool drained under a reload sends `op` to its successor.
   */
  function withSession<T>(op: SessionOp<T>): Promise<T> {
    return tokenObjects.shared(() => onSession(op));
  }

  function changingObjects<T>(op: SessionOp<T>): Promise<T> {
    return tokenObjects.exclusive(() => onSession(op));
  }

  async function onSession<T>(op: SessionOp<T>): Promise<T> {
    let reloaded = false;
    let reconnected = false;
    for (;;) {
      const current = connected();
      const conn = await current;
      try {
        return await conn.pool.run((session) => op(conn, session, reconnected));
      } catch (error) {
        if (error instanceof SessionPoolDrainedError) continue;
        if (error instanceof KeyNotOnTokenError && !reloaded) {
          reloaded = true;
          reload(current);
          continue;
        }
        if (!(error instanceof pkcs11js.Pkcs11Error && CONNECTION_LOST.has(error.code))) throw error;
        reload(current);
        if (!reconnected) {
          reconnected = true;
          continue;
        }
        throw errors.keyStoreUnavailable(`PKCS#11 token '${conn.tokenLabel}' is unavailable: ${error.message}`, error);
      }
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
      if (!handle) throw new KeyNotOnTokenError(`PKCS#11 key ${keyRef} not found on token '${conn.tokenLabel}'`);
      if (others.length > 0) throw new KeyStoreError(`PKCS#11 key id of ${keyRef} is not unique on the token`);
      key = { handle, algorithm: privateKeyAlgorithm(conn.lib, session, handle) };
      conn.keys.set(keyRef, key);
    }
    return key;
  }

  return {
    kind: 'pkcs11',

    async generate(alg: KeyAlgorithm, record?: (keyRef: string) => Promise<void>): Promise<GeneratedKey> {
      const id = randomBytes(16);
      const keyRef = `p11:${id.toString('hex')}`;
      if (record) await record(keyRef); // before the lock: a slow database write must not pause the process's signing
      return changingObjects(async ({ lib }, session, retry) => {
        // The lost connection may have cut the first attempt after the token stored its key: one key per id.
        if (retry) destroyObjects(lib, session, id);
        const { mechanism, publicTemplate } = keyPairGeneration(alg);
        const common = [
          { type: pkcs11js.CKA_ID, value: id },
          { type: pkcs11js.CKA_LABEL, value: `pca-${id.toString('hex')}` },
        ];
        // The public half is a session object: read once for the SPKI, then destroyed.
        const publicKeyTemplate = [
          ...common,
          ...publicTemplate,
          { type: pkcs11js.CKA_TOKEN, value: false },
          { type: pkcs11js.CKA_VERIFY, value: true },
        ];
        const privateKeyTemplate = [
          ...common,
          { type: pkcs11js.CKA_TOKEN, value: true },
          { type: pkcs11js.CKA_PRIVATE, value: true },
          { type: pkcs11js.CKA_SENSITIVE, value: true },
          { type: pkcs11js.CKA_EXTRACTABLE, value: false },
          { type: pkcs11js.CKA_SIGN, value: true },
          { type: pkcs11js.CKA_SIGN_RECOVER, value: false },
          { type: pkcs11js.CKA_DECRYPT, value: false },
          { type: pkcs11js.CKA_UNWRAP, value: false },
          { type: pkcs11js.CKA_DERIVE, value: false },
          // Tokens default both to true: whoever holds the PIN could then turn on decryption (C_SetAttributeValue)
          // or copy the key into an object with other attributes (C_CopyObject). Destroying stays allowed.
          { type: pkcs11js.CKA_MODIFIABLE, value: false },
          { type: pkcs11js.CKA_COPYABLE, value: false },
        ];
        const generate = (template: typeof privateKeyTemplate) =>
          lib.C_GenerateKeyPairAsync(session, { mechanism }, publicKeyTemplate, template);
        const keys = await generate(privateKeyTemplate).catch((error: unknown) => {
          // CKA_COPYABLE came with PKCS#11 v2.40: a token of the v2.20 era refuses an attribute it does not know. It
          // then gets the key without it rather than no CA at all (not modifiable still bars turning on decryption).
          if (!(error instanceof pkcs11js.Pkcs11Error && error.code === pkcs11js.CKR_ATTRIBUTE_TYPE_INVALID)) throw error;
          return generate(privateKeyTemplate.filter(({ type }) => type !== pkcs11js.CKA_COPYABLE));
        });
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
          conn.keys.delete(keyRef);
          // Deleted by another process, or the token went away under this connection (SoftHSM2 answers so for a
          // removed token): looked up again on a reloaded connection, a 503 if the token is unreachable, a
          // KeyStoreError if only the key is gone.
          throw new KeyNotOnTokenError(`PKCS#11 key ${keyRef} is no longer on token '${conn.tokenLabel}'`, { cause: error });
        }
        const input = isRsa ? Buffer.concat([DIGEST_INFO_PREFIX[hash], digest]) : digest;
        const signature = await conn.lib.C_SignAsync(session, input, Buffer.alloc(MAX_SIGNATURE_BYTES));
        return isRsa ? new Uint8Array(signature) : ecdsaRawToDer(signature, EC_CURVES[alg as EcAlgorithm].bits);
      });
    },

    async destroy(keyRef: string): Promise<void> {
      const id = parseKeyRef(keyRef);
      await changingObjects(({ lib, keys, tokenLabel }, session) => {
        keys.delete(keyRef);
        // Nothing found may be a stale object list: looked up again after a reload, so no key is left behind.
        if (destroyObjects(lib, session, id) === 0)
          throw new KeyNotOnTokenError(`PKCS#11 key ${keyRef} not found on token '${tokenLabel}'`);
      }).catch((error: unknown) => {
        if (!(error instanceof KeyNotOnTokenError)) throw error; // still absent after the reload: gone, as asked
      });
    },

    async check(sampleKeyRef?: string): Promise<void> {
      await withSession((conn, session) => {
        const { state } = conn.lib.C_GetSessionInfo(session);
        if (state !== CKS_RW_USER_FUNCTIONS && state !== CKS_RO_USER_FUNCTIONS) {
          throw errors.keyStoreUnavailable(`PKCS#11 token '${conn.tokenLabel}': the session is not logged in`);
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
