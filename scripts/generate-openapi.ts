/** `npm run openapi`: writes openapi/openapi.yaml from the route schemas (test/http/openapi.test.ts checks drift). */
import { mkdirSync, writeFileSync } from 'node:fs';
import { renderOpenApi } from '../src/http/openapi-document.ts';

mkdirSync('openapi', { recursive: true });
writeFileSync('openapi/openapi.yaml', await renderOpenApi('yaml'));
process.stdout.write('wrote openapi/openapi.yaml\n');
