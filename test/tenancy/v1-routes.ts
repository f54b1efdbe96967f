/**
 * Every authenticated /v1 route of the app, from its OpenAPI document (generated from the registered routes), so
 * tests that sweep all routes cover routes added later without being edited.
 */
import type { FastifyInstance } from 'fastify';

export interface V1Route {
  method: string;
  /** OpenAPI form: `/v1/private-certificate-authorities/{ca_id}`. */
  path: string;
  /** Path parameter names, in order. */
  params: string[];
}

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

export async function v1Routes(app: FastifyInstance): Promise<V1Route[]> {
  const response = await app.inject({ method: 'GET', url: '/openapi.json' });
  const document = response.json() as { paths: Record<string, Record<string, unknown>> };
  return Object.entries(document.paths)
    .filter(([path]) => path.startsWith('/v1/'))
    .flatMap(([path, operations]) =>
      Object.keys(operations)
        .filter((method) => METHODS.includes(method))
        .map((method) => ({ method: method.toUpperCase(), path, params: [...path.matchAll(/\{([^}]+)\}/g)].map((match) => match[1]) })),
    );
}

/** The concrete URL of a route with its path parameters filled in (each value is escaped). */
export function fillPath(route: V1Route, values: Record<string, string>): string {
  return route.path.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`no value for path parameter {${name}} of ${route.method} ${route.path}`);
    return encodeURIComponent(value);
  });
}
