/**
 * Request validation with two Ajv instances: query strings and path parameters arrive as text and are
 * coerced to their schema types; JSON bodies are not, so `{"value": "5"}` is refused where an integer is due.
 * Request schemas are self-contained (no shared $refs), which keeps both instances independent of fastify's store.
 */
import { Ajv, type Options } from 'ajv';
import formats from 'ajv-formats';
import type { FastifyInstance } from 'fastify';

function ajvWith(options: Options): Ajv {
  const ajv = new Ajv({ removeAdditional: false, useDefaults: true, allErrors: false, strict: false, ...options });
  // ajv-formats is CommonJS: its default export arrives wrapped under NodeNext.
  (formats as unknown as { default: (ajv: Ajv) => void }).default(ajv);
  return ajv;
}

export function registerValidation(app: FastifyInstance): void {
  const bodies = ajvWith({ coerceTypes: false });
  const textParts = ajvWith({ coerceTypes: 'array' });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodies : textParts).compile(schema));
}
