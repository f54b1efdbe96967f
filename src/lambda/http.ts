/** The HTTP API function: the app is built, and the database reached once, at init (not at the first request). */
import { buildApp } from '../app.ts';
import { checkNodeVersion, loadConfig } from '../config.ts';
import { openRuntime } from '../runtime.ts';
import { resolveSecretReferences } from '../secrets.ts';
import { httpHandlerFor } from './adapters.ts';
import { precompiledSchemas } from './precompiled-schemas.ts';

// Marks for bench/coldstart's breakdown of the init.
performance.mark('pca:imported');
checkNodeVersion();
const config = loadConfig(await resolveSecretReferences(process.env), 'lambda');
const runtime = await openRuntime(config, { migrate: false });
// Each route's schemas become code on its first request (a cold start serves one or two routes): the bundle's
// generated code, or Ajv and fast-json-stringify for a schema it lacks. The OpenAPI document and Swagger UI are
// loaded only when asked for; the console is not served (nor looked for) on Lambda.
const app = await buildApp({
  config,
  database: runtime.database,
  keyStores: runtime.keyStores,
  schemaCompilation: 'on-first-use',
  precompiledSchemas,
  openApi: 'committed',
  console: false,
});
app.addHook('onClose', () => runtime.close());
performance.mark('pca:built');
// The first connection through pg itself: Prisma's query compiler (WASM) is not loaded for it, and the first issuance
// runs on raw SQL too (services/certificates).
await Promise.all([app.ready(), runtime.database.query({ name: 'ping', text: 'SELECT 1' }, [])]);
performance.mark('pca:ready');

export const handler = httpHandlerFor(app);
