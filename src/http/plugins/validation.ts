/**
 * Request validation with two Ajv instances: query strings and path parameters arrive as text and are
 * coerced to their schema types; JSON bodies are not, so `{"value": "5"}` is refused where an integer is due.
 * Request schemas are self-contained (no shared $refs), which keeps both instances independent of fastify's store.
 * Response serializers are fastify's own (fast-json-stringify).
 */
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler';
import { Ajv, type Options } from 'ajv';
import formats from 'ajv-formats';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';

/**
 * When the route schemas become code: all of them while the app gets ready (a server: a broken schema stops the
 * start), or each on its first use (a Lambda cold start: compiling the ~600 schemas of every route took more than
 * half of the init, while a request needs two or three of them).
 */
export type SchemaCompilation = 'at-ready' | 'on-first-use';

type Compiled = ((data: never) => unknown) & { errors?: unknown };

/** Defers `compile` to the first call; fastify reads a validator's `errors` after a failed call. */
function compiledOnFirstUse<S, F extends Compiled>(compile: (schema: S) => F): (schema: S) => F {
  return (schema) => {
    let compiled: F | undefined;
    const run = ((data: never) => {
      compiled ??= compile(schema);
      const result = compiled(data);
      run.errors = compiled.errors;
      return result;
    }) as F;
    return run;
  };
}

function ajvWith(options: Options): Ajv {
  const ajv = new Ajv({ removeAdditional: false, useDefaults: true, allErrors: false, strict: false, ...options });
  // ajv-formats is CommonJS: its default export arrives wrapped under NodeNext.
  (formats as unknown as { default: (ajv: Ajv) => void }).default(ajv);
  return ajv;
}

export function registerValidation(app: FastifyInstance, compilation: SchemaCompilation): void {
  // Checking each schema against the JSON Schema meta-schema first compiles the meta-schema itself (~100 ms of a cold
  // start's first request): a server does it at start for every route schema, so those same schemas compiled on
  // first use skip it.
  const validateSchema = compilation === 'at-ready';
  const bodies = ajvWith({ coerceTypes: false, validateSchema });
  const textParts = ajvWith({ coerceTypes: 'array', validateSchema });
  const compile = ({ schema, httpPart }: { schema: object; httpPart?: string }) => (httpPart === 'body' ? bodies : textParts).compile(schema);
  app.setValidatorCompiler(compilation === 'on-first-use' ? compiledOnFirstUse(compile) : compile);
}

/** fastify's `schemaController` option: its default serializers, built when `compilation` says. */
export function schemaController(compilation: SchemaCompilation): FastifyServerOptions['schemaController'] {
  if (compilation === 'at-ready') return undefined;
  const defaultFactory = SerializerSelector();
  return {
    compilersFactory: {
      buildSerializer: (...args: Parameters<typeof defaultFactory>) => compiledOnFirstUse(defaultFactory(...args)),
    },
  };
}
