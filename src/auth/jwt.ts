/** JWT settings shared by the API (verification) and the token minting paths (exchange, dev tokens). */
import type { FastifyJWTOptions } from '@fastify/jwt';
import type { Config } from '../config.ts';

export const JWT_ALGORITHM = 'ES256';

export interface TokenClaims {
  sub: string;
  domain_id: string;
  actions: string[];
  /** The access key the token was exchanged for (POST /v1/auth/tokens); absent from development tokens. */
  ak?: string;
}

export function jwtPluginOptions(config: Config): FastifyJWTOptions {
  return {
    secret: { private: config.jwt.privateKeyPem, public: config.jwt.publicKeyPem },
    // @fastify/jwt reads a numeric expiresIn as seconds.
    sign: { algorithm: JWT_ALGORITHM, iss: config.jwt.issuer, aud: config.jwt.audience, expiresIn: config.jwt.ttlSeconds },
    // The algorithm is pinned: `none`, HS256 keyed with the public key and every other algorithm fail. fast-jwt
    // checks iss and aud only when present, so both are required too. Verified
    // tokens are kept by the auth plugin (token-principals.ts), so fast-jwt's cache is left off.
    verify: {
      algorithms: [JWT_ALGORITHM],
      allowedIss: config.jwt.issuer,
      allowedAud: config.jwt.audience,
      requiredClaims: ['exp', 'iss', 'aud', 'sub', 'domain_id'],
    },
  };
}
