/**
 * Connecting to a PKCS#11 token: the module loaded once per process (reference counted), the token chosen, a pool
 * of sessions opened and logged in; and disconnecting. Every failure is a 503 naming its cause.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pkcs11js from 'pkcs11js';
import { errors } from '../errors.ts';
import type { KeyAlgorithm } from '../x509/algorithms.ts';
import { createSessionPool, type SessionPool } from './session-pool.ts';

export type Handle = Buffer;
export type Pkcs11 = InstanceType<typeof pkcs11js.PKCS11>;

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

export interface TokenKey {
  handle: Handle;
  algorithm: KeyAlgorithm | undefined;
}

export interface Connection {
  lib: Pkcs11;
  libraryPath: string;
  tokenLabel: string;
  pool: SessionPool<Handle>;
  /** Object handles are valid in every session of the application, so one lookup serves the whole pool. */
  keys: Map<string, TokenKey>;
}

/**
 * Attempts at opening the token. SoftHSM2 reads its token folders when the module initialises, and a token another
 * process is writing at that moment can fail its integrity check: it is left out (softhsm/SoftHSMv2#757), or listed
 * and then refused (C_GetTokenInfo or C_OpenSession answering CKR_GENERAL_ERROR), and it stays so in this process
 * until the module is initialised again. A token missing or refused by a freshly initialised module is therefore
 * tried again after the module is finalised. A PIN refusal is never tried again (see isPinRefusal).
 */
const TOKEN_ATTEMPTS = 3;

/** Waits before the next attempt at opening the token: 50 ms, then 100 ms. */
function pauseBeforeAttempt(attempt: number): Promise<void> {
  return sleep(50 * attempt);
}

/** Loads the module, picks the token, opens the sessions and logs in; every failure is a 503 naming its cause. */
export async function connect(options: Pkcs11KeyStoreOptions, pause = pauseBeforeAttempt): Promise<Connection> {
  for (let attempt = 1; ; attempt++) {
    const lib = acquireLibrary(options.library);
    const sessions: Handle[] = [];
    let failure: Error;
    try {
      const tokens = initialisedTokens(lib);
      const token = pickToken(tokens, options);
      if (token) {
        const flags = pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION;
        for (let i = 0; i < (options.sessions ?? 4); i++) sessions.push(lib.C_OpenSession(token.slot, flags));
        login(lib, sessions[0], token.tokenLabel, options.pin);
        return { lib, libraryPath: options.library, tokenLabel: token.tokenLabel, pool: createSessionPool(sessions), keys: new Map() };
      }
      failure = missingToken(tokens, options);
    } catch (error) {
      closeSessions(lib, sessions);
      // The token's own answers (CKR_TOKEN_NOT_PRESENT, CKR_SESSION_COUNT, CKR_GENERAL_ERROR…): not reachable now.
      if (!(error instanceof pkcs11js.Pkcs11Error)) {
        releaseLibrary(options.library);
        throw error;
      }
      failure = errors.keyStoreUnavailable(`PKCS#11 token ${tokenNamed(options)} cannot be opened: ${error.message}`, error);
    }
    const finalised = releaseLibrary(options.library);
    if (!finalised || attempt === TOKEN_ATTEMPTS) throw failure;
    await pause(attempt);
  }
}

/**
 * Waits for running operations, then closes the sessions (the last one closed logs the application out), unless
 * `closesSessions` then says no, and lets go of the module.
 */
export async function disconnect(conn: Connection, closesSessions: () => boolean = () => true): Promise<void> {
  const sessions = await conn.pool.drain();
  if (closesSessions()) closeSessions(conn.lib, sessions);
  releaseLibrary(conn.libraryPath);
}

interface Token {
  slot: Handle;
  tokenLabel: string;
}

function initialisedTokens(lib: Pkcs11): Token[] {
  return lib
    .C_GetSlotList(true)
    .map((handle) => ({ slot: handle, info: lib.C_GetTokenInfo(handle) }))
    .filter(({ info }) => (info.flags & pkcs11js.CKF_TOKEN_INITIALIZED) !== 0)
    .map(({ slot: handle, info }) => ({ slot: handle, tokenLabel: info.label.trimEnd() }));
}

function tokenNamed({ slot, tokenLabel }: Pkcs11KeyStoreOptions): string {
  return tokenLabel === undefined ? `at slot index ${slot ?? 0}` : `'${tokenLabel}'`;
}

/** The token by its label if one is configured, else by its index among the initialised tokens. */
function pickToken(tokens: Token[], { slot, tokenLabel }: Pkcs11KeyStoreOptions): Token | undefined {
  return tokenLabel === undefined ? tokens[slot ?? 0] : tokens.find((candidate) => candidate.tokenLabel === tokenLabel);
}

function missingToken(tokens: Token[], { slot, tokenLabel }: Pkcs11KeyStoreOptions): Error {
  const labels = tokens.map((token) => `'${token.tokenLabel}'`).join(', ') || 'none';
  return errors.keyStoreUnavailable(
    tokenLabel === undefined
      ? `no initialised PKCS#11 token at slot index ${slot ?? 0} (initialised tokens: ${labels})`
      : `no PKCS#11 token labelled '${tokenLabel}' (initialised tokens: ${labels})`,
  );
}

/** Login refusals of the PIN itself: trying the same PIN again can only count down the token's retry counter. */
const PIN_REFUSALS = new Map<number, string>([
  [pkcs11js.CKR_PIN_INCORRECT, 'wrong PIN'],
  [pkcs11js.CKR_PIN_LOCKED, 'the PIN is locked'],
  [pkcs11js.CKR_PIN_INVALID, 'the PIN holds characters the token refuses'],
  [pkcs11js.CKR_PIN_LEN_RANGE, "the PIN's length is out of the token's range"],
  [pkcs11js.CKR_PIN_EXPIRED, 'the PIN has expired'],
]);

/** A login the token refused for its PIN; the store does not try that PIN again (see pkcs11-key-store.ts). */
export function isPinRefusal(error: unknown): boolean {
  const cause = (error as { cause?: unknown } | undefined)?.cause;
  return cause instanceof pkcs11js.Pkcs11Error && PIN_REFUSALS.has(cause.code);
}

function login(lib: Pkcs11, session: Handle, tokenLabel: string, pin: string): void {
  try {
    lib.C_Login(session, pkcs11js.CKU_USER, pin);
  } catch (error) {
    if (!(error instanceof pkcs11js.Pkcs11Error)) throw error;
    // Another store in this process is already logged in to the token: the login state is per application.
    if (error.code === pkcs11js.CKR_USER_ALREADY_LOGGED_IN) return;
    const pinRefused = PIN_REFUSALS.get(error.code);
    const reason = pinRefused ? `${pinRefused}; not tried again until the service restarts with another PKCS11_PIN` : error.message;
    throw errors.keyStoreUnavailable(`PKCS#11 login to token '${tokenLabel}' failed: ${reason}`, error);
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
    throw errors.keyStoreUnavailable(`PKCS#11 library ${path} cannot be loaded: ${(error as Error).message}`, error);
  }
  try {
    // Async calls run on worker threads: the module must lock for itself.
    lib.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  } catch (error) {
    if (!(error instanceof pkcs11js.Pkcs11Error && error.code === pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
      lib.close();
      throw errors.keyStoreUnavailable(`PKCS#11 library ${path} failed to initialise: ${(error as Error).message}`, error);
    }
  }
  loadedLibraries.set(path, { lib, users: 1 });
  return lib;
}

/** Lets go of the module; true when this was its last user here, so it was finalised. */
function releaseLibrary(path: string): boolean {
  const loaded = loadedLibraries.get(path);
  if (!loaded || --loaded.users > 0) return false;
  loadedLibraries.delete(path);
  try {
    loaded.lib.C_Finalize();
  } finally {
    loaded.lib.close();
  }
  return true;
}
