/** A development deployment's secrets (no MASTER_KEY / JWT keys given), kept in DATA_DIR. */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

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
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as DevSecrets) : undefined;
}

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
  writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}
