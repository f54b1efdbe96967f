/**
 * When and how route schemas become code (the compilers themselves: http/plugins/schema-compilers.ts).
 * fastify gets both compilers through `schemaController`, so it loads neither of its own (@fastify/ajv-compiler,
 * @fastify/fast-json-stringify-compiler).
 */
import { createHash } from 'node:crypto';
import type { FastifyServerOptions } from 'fastify';
import type { Serializer, ValidatedPart, Validator } from './schema-compilers.ts';

/**
 * When the route schemas become code: all of them while the app gets ready (a server: a broken schema stops the
 * start), or each on its first use (a Lambda cold start: compiling the ~600 schemas of every route took more than
 * half of the init, while a request needs two or three of them).
 */
export type SchemaCompilation = 'at-ready' | 'on-first-use';

/**
 * Where a schema's code may come from instead of the compilers: the Lambda bundle's generated code
 * (`generatedSchemas`), or scripts/lambda-schemas.ts, which generates it. Each returns a maker, called on first use.
 */
export interface PrecompiledSchemas {
  validator(part: ValidatedPart, schema: object): (() => Validator) | undefined;
  serializer(schema: object, externalSchemas: Record<string, unknown>): (() => Serializer) | undefined;
}

/**
 * The key of a schema's generated code: its content and what compiles it (a validator's Ajv instance, or the
 * serializer), so a route whose schema differs from the bundle's (another configuration) is compiled, never served
 * with another schema's code. The serializers' shared schemas are the app's own, the same in both.
 */
export const schemaKey = (compiler: ValidatedPart | 'response', schema: unknown): string =>
  createHash('sha256').update(compiler).update(JSON.stringify(schema)).digest('base64url');

/** The code scripts/lambda-schemas.ts generated, by schemaKey. */
export function generatedSchemas(tables: {
  validators: Record<string, () => Validator>;
  serializers: Record<string, () => Serializer>;
}): PrecompiledSchemas {
  return {
    validator: (part, schema) => tables.validators[schemaKey(part, schema)],
    serializer: (schema) => tables.serializers[schemaKey('response', schema)],
  };
}

/** Which Ajv instance checks a request part (schema-compilers.ts says why two). */
export const validatedPart = (httpPart: string | undefined): ValidatedPart => (httpPart === 'body' ? 'body' : 'text');

/** Defers `make` to the first call; fastify reads a validator's `errors` after a failed call. */
function madeOnFirstUse<F extends (data: never) => unknown>(make: () => F): F {
  let made: F | undefined;
  const run = ((data: never) => {
    made ??= make();
    const result = made(data);
    (run as { errors?: unknown }).errors = (made as { errors?: unknown }).errors;
    return result;
  }) as F;
  return run;
}

type Compilers = typeof import('./schema-compilers.ts');

/**
 * fastify's `schemaController` option. With `precompiled`, the compilers module is loaded only when the app has a
 * schema the bundle did not generate (checked at `onReady`, before any request; see `loadCompilersIfNeeded`).
 */
export async function schemaController(
  compilation: SchemaCompilation,
  precompiled?: PrecompiledSchemas,
): Promise<{
  controller: FastifyServerOptions['schemaController'];
  loadCompilersIfNeeded: () => Promise<void>;
}> {
  if (precompiled && compilation !== 'on-first-use') throw new Error('precompiled schemas are made on first use');
  let compilers: Compilers | undefined = precompiled ? undefined : await import('./schema-compilers.ts');
  let missing = false;
  // Checking each schema against the JSON Schema meta-schema first compiles the meta-schema itself (~100 ms of a cold
  // start's first request): a server does it at start for every route schema, so those same schemas compiled on
  // first use skip it.
  let ajvs: ReturnType<Compilers['validationAjvs']> | undefined;
  const ajvFor = (part: ValidatedPart) => {
    ajvs ??= compilers!.validationAjvs({ validateSchema: compilation === 'at-ready' });
    return ajvs[part];
  };
  const deferred = <F extends (data: never) => unknown>(generated: (() => F) | undefined, compile: () => F): F => {
    if (generated) return madeOnFirstUse(generated);
    missing = true;
    return compilation === 'on-first-use' ? madeOnFirstUse(compile) : compile();
  };
  // fastify hands each compiler the route's {schema, httpPart / httpStatus, method, url}; the factories' declared
  // types (from @fastify/ajv-compiler and @fastify/fast-json-stringify-compiler) do not say so, hence the casts.
  const buildValidator =
    () =>
    ({ schema, httpPart }: { schema: object; httpPart?: string }) => {
      const part = validatedPart(httpPart);
      return deferred(precompiled?.validator(part, schema), () => ajvFor(part).compile(schema) as Validator);
    };
  const buildSerializer = (externalSchemas: unknown, serializerOptions: unknown) => {
    let factory: ((route: { schema: object }) => Serializer) | undefined;
    return (route: { schema: object }) =>
      deferred(precompiled?.serializer(route.schema, externalSchemas as Record<string, unknown>), () => {
        factory ??= compilers!.SerializerSelector()(externalSchemas as never, serializerOptions as never) as never;
        return factory!(route);
      });
  };
  const controller = { compilersFactory: { buildValidator: buildValidator as never, buildSerializer: buildSerializer as never } };
  return {
    controller,
    loadCompilersIfNeeded: async () => {
      if (missing) compilers ??= await import('./schema-compilers.ts');
    },
  };
}
