/** The HTTP API function: the app is built, and the database reached once, at init (not at the first request). */
import { buildApp } from '../app.ts';
import { checkNodeVersion, loadConfig } from '../config.ts';
import { openRuntime } from '../runtime.ts';
import { resolveSecretReferences } from '../secrets.ts';
import { httpHandlerFor } from './adapters.ts';

// Marks for bench/coldstart's breakdown of the init.
performance.mark('pca:imported');
checkNodeVersion();
const config = loadConfig(await resolveSecretReferences(process.env), 'lambda');
const runtime = await openRuntime(config, { migrate: false });
// Each route's schemas are compiled on its first request (a cold start serves one or two routes), and the OpenAPI
// document and Swagger UI are loaded only when asked for.
const app = await buildApp({
  config,
  database: runtime.database,
  keyStores: runtime.keyStores,
  schemaCompilation: 'on-first-use',
  openApi: 'committed',
});
app.addHook('onClose', () => runtime.close());
performance.mark('pca:built');
await Promise.all([app.ready(), runtime.database.ping()]);
performance.mark('pca:ready');

export const handler = httpHandlerFor(app);
