/** Renders the OpenAPI document from the route schemas without a database or key store (nothing is called). */
import { generateKeyPairSync } from 'node:crypto';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import type { DatabaseHandle } from '../src/db/database.ts';
import type { KeyStores } from '../src/services/index.ts';

/** Stands in for a dependency: reading is allowed (services are wired up), using it throws. */
export function unusable<T extends object>(name: string): T {
  const fail = () => {
    throw new Error(`${name} is not available while rendering the OpenAPI document`);
  };
  return new Proxy(fail, {
    // Binding is wiring too (the key-store metrics wrap each operation): the bound function still throws when used.
    get: (_target, property) =>
      property === 'then' ? undefined : property === 'bind' ? () => unusable(name) : unusable(`${name}.${String(property)}`),
    apply: fail,
  }) as unknown as T;
}

export async function renderOpenApi(format: 'yaml' | 'json' = 'yaml'): Promise<string> {
  // Fixed settings so the document does not depend on the machine it is rendered on.
  const config = loadConfig({ DATA_DIR: '/nonexistent', MASTER_KEY: Buffer.alloc(32).toString('base64'), ...documentationJwtKeys() });
  const app = await buildApp({
    config,
    database: unusable<DatabaseHandle>('database'),
    keyStores: unusable<KeyStores>('key stores'),
    logDestination: false,
  });
  await app.ready();
  const document = format === 'yaml' ? (app.swagger({ yaml: true }) as unknown as string) : `${JSON.stringify(app.swagger(), null, 2)}\n`;
  await app.close();
  return document;
}

/** A throwaway ES256 pair: the document never shows keys, but config validation wants a valid pair. */
export function documentationJwtKeys(): Record<string, string> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    JWT_PRIVATE_KEY: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    JWT_PUBLIC_KEY: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
  };
}
