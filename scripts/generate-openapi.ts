/**
 * `npm run openapi`: writes openapi/openapi.yaml from the route schemas, and the openapi-fetch client types
 * generated from it (test/http/openapi.test.ts checks both for drift).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { renderOpenApi } from './openapi-document.ts';
import { CLIENT_TYPES_PATH, renderClientTypes } from './openapi-client-types.ts';

mkdirSync('openapi', { recursive: true });
const document = await renderOpenApi('yaml');
writeFileSync('openapi/openapi.yaml', document);
writeFileSync(CLIENT_TYPES_PATH, await renderClientTypes(document));
process.stdout.write(`wrote openapi/openapi.yaml and ${CLIENT_TYPES_PATH}\n`);
