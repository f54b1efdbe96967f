/** A development deployment's secrets (no MASTER_KEY / JWT keys given), kept in DATA_DIR. */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from './env.ts';

export interface DevSecrets {
  masterKey: string;
  jwtPrivateKeyPem: string;
  jwtPublicKeyPem: string;
  domainId: string;
}

const devSecretsFile = (dataDir: string) => path.join(dataDir, 'dev-secrets.json');

/** The data folder's development secrets, if it has any (without making them). */
export function existingDevSecrets(dataDir: string): DevSecrets | undefined {
  const file = devSecretsFile(dataDir);
  if (!existsSync(file)) return undefined;
  let secrets: Partial<DevSecrets> | null;
  try {
    secrets = JSON.parse(readFileSync(file, 'utf8')) as Partial<DevSecrets> | null;
  } catch (error) {
    throw unreadable(file, (error as Error).message);
  }
  const missing = (['masterKey', 'jwtPrivateKeyPem', 'jwtPublicKeyPem', 'domainId'] as const).filter(
    (field) => typeof secrets?.[field] !== 'string',
  );
  if (missing.length > 0) throw unreadable(file, `no ${missing.join(', ')}`);
  return secrets as DevSecrets;
}

function unreadable(file: string, reason: string): ConfigError {
  return new ConfigError(
    `${file} holds no usable development secrets (${reason}): restore it from a backup, or delete it to generate new ` +
      'ones (data sealed under its master key, software CA keys included, will no longer open)',
  );
}

/** What link(2) answers where the file system has no hard links. */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV']);

/** Generated once per data folder, so restarts keep their keys. For development only. */
export function loadOrCreateDevSecrets(dataDir: string): DevSecrets {
  const existing = existingDevSecrets(dataDir);
  if (existing) return existing;
  const file = devSecretsFile(dataDir);
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const secrets: DevSecrets = {
    masterKey: randomBytes(32).toString('base64'),
    jwtPrivateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    jwtPublicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    domainId: randomBytes(16).toString('hex'),
  };
  mkdirSync(dataDir, { recursive: true });
  // Written beside it, then linked into place: a crash mid-write leaves the temp file, never a truncated secrets file.
  // A link, unlike a rename, never replaces a file: of processes starting together on an empty folder, the first
  // one's secrets stay and the others take them, where with a rename the last won and the others ran on a master key
  // that was no longer on disk.
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const text = JSON.stringify(secrets, null, 2);
  try {
    writeFileSync(temp, text, { mode: 0o600, flush: true });
    placeExclusively(temp, file, text);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return loadOrCreateDevSecrets(dataDir);
  } finally {
    rmSync(temp, { force: true });
  }
  return secrets;
}

/**
 * Puts the written `temp` (holding `text`) in place as `file`, unless a file is there already (EEXIST). On a file
 * system without hard links (FAT, SMB shares, some FUSE mounts) `file` is created exclusively in place instead, so the
 * first process still wins, at the cost of a file cut short by a crash mid-write (a ConfigError at the next start,
 * saying what to do).
 */
export function placeExclusively(
  temp: string,
  file: string,
  text: string,
  link: (existing: string, created: string) => void = linkSync,
): void {
  try {
    link(temp, file);
  } catch (error) {
    if (!NO_HARD_LINKS.has((error as NodeJS.ErrnoException).code ?? '')) throw error;
    writeFileSync(file, text, { mode: 0o600, flush: true, flag: 'wx' });
  }
}
