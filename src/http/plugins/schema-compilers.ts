/**
 * The compilers behind http/plugins/validation.ts: two Ajv instances (query strings and path parameters arrive as
 * text and are coerced to their schema types; JSON bodies are not, so `{"value": "5"}` is refused where an integer
 * is due) and fastify's own response serializers (fast-json-stringify). Request schemas are self-contained (no
 * shared $refs), which keeps both instances independent of fastify's store. scripts/lambda-schemas.ts generates the
 * Lambda bundle's code from these same instances; a Lambda cold start does not load this module at all.
 */
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler';
import { Ajv, type Options } from 'ajv';
import formats from 'ajv-formats';

export type Validator = ((data: never) => unknown) & { errors?: unknown };
export type Serializer = (data: never) => string;
/** What a validator compiles: the request part it checks decides the Ajv instance. */
export type ValidatedPart = 'body' | 'text';

/** The two Ajv instances; `options` adds to both (the meta-schema check, or code generation for the bundle). */
export function validationAjvs(options: Options): Record<ValidatedPart, Ajv> {
  const ajvWith = (coerceTypes: Options['coerceTypes']) => {
    const ajv = new Ajv({ removeAdditional: false, useDefaults: true, allErrors: false, strict: false, coerceTypes, ...options });
    // ajv-formats is CommonJS: its default export arrives wrapped under NodeNext.
    (formats as unknown as { default: (ajv: Ajv) => void }).default(ajv);
    return ajv;
  };
  return { body: ajvWith(false), text: ajvWith('array') };
}

export { SerializerSelector };
