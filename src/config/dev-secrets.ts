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

/** Generated once per data folder, so restarts keep their keys. For development only. */
export function loadOrCreateDevSecrets(dataDir: string): DevSecrets {
  const file = path.join(dataDir, 'dev-secrets.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as DevSecrets;
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
