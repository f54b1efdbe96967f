/** `GET /ca/{ca_id}.crt` (§10.4): the CA certificate in DER, unauthenticated; the AIA caIssuers target. */
import { Type } from 'typebox';
import { errors } from '../../../errors.ts';
import { binary } from '../../../schemas/common.ts';
import { routeOptions, type TypedApp } from '../../route-options.ts';

export async function publicCaCertificateRoutes(app: TypedApp): Promise<void> {
  app.get(
    '/ca/:file',
    routeOptions({
      public: true,
      tag: 'public-pki',
      summary: 'CA certificate (DER) for AIA caIssuers',
      operationId: 'getPublicCaCertificate',
      params: Type.Object({ file: Type.String({ description: '{ca_id}.crt; the CA URN may stand in for the id' }) }),
      errors: [400, 404],
      responses: {
        200: binary('application/pkix-cert', 'The CA certificate, DER-encoded (RFC 2585); a URL not ending in .crt is a 404'),
      },
    }),
    async function publicCaCertificate(request, reply) {
      const { file } = request.params;
      if (!file.endsWith('.crt')) throw errors.notFound(`route GET ${request.url}`);
      const der = await app.services.ca.publicCertificate(file.slice(0, -'.crt'.length));
      return reply.type('application/pkix-cert').send(Buffer.from(der));
    },
  );
}
