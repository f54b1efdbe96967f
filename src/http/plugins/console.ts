/**
 * The web console (console/, built into dist/console by `npm run build`): static files under /console/ with a strict
 * Content-Security-Policy. The console is a client of the public API like any other; these routes only serve files.
 */
import type { FastifyInstance } from 'fastify';
import { existsSync } from 'node:fs';
import path from 'node:path';

/** Scripts, styles and API calls from this origin only; no inline code, no framing, no plugins. */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export async function registerConsole(app: FastifyInstance, packageRoot: string): Promise<void> {
  const root = path.join(packageRoot, 'dist', 'console');
  if (!existsSync(path.join(root, 'index.html'))) {
    app.log.warn({ root }, 'the console is not built (npm run build): /console is not served');
    return;
  }
  // Imported here, not at the top: where the console is not built (the Lambda bundle), nothing loads it.
  const { default: fastifyStatic } = await import('@fastify/static');
  app.get('/console', { config: { public: true }, schema: { hide: true } }, (_request, reply) => reply.redirect('/console/', 301));
  await app.register(fastifyStatic, {
    root,
    prefix: '/console/',
    // File names carry no content hash, so every load revalidates (ETag) instead of trusting a stale copy.
    cacheControl: false,
    setHeaders(response) {
      response.header('content-security-policy', CONSOLE_CSP);
      response.header('cache-control', 'no-cache');
      response.header('x-content-type-options', 'nosniff');
      response.header('referrer-policy', 'no-referrer');
    },
  });
}
