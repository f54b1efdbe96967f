/**
 * The Lambda bundle's validators and serializers: scripts/bundle-lambda.mjs replaces this module with the code
 * scripts/lambda-schemas.ts generates. Run from source (tests, development), there is none and the route schemas
 * are compiled on first use.
 */
import type { PrecompiledSchemas } from '../http/plugins/validation.ts';

export const precompiledSchemas: PrecompiledSchemas | undefined = undefined;
