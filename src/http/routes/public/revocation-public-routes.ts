/**
 * The public revocation endpoints relying parties call (§10.4): the CRL at its distribution point and the OCSP
 * responder, POST and GET forms. No credential. An unknown, PENDING or removed CA gets the JSON 404; an OCSP
 * request that cannot be parsed gets `malformedRequest` with HTTP 200, and a failure an OCSP error response,
 * never a 500.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { AppError, errors } from '../../../errors.ts';
import { decodeOcspGetPath, ocspErrorResponse } from '../../../x509/ocsp.ts';
import { binary } from '../../../schemas/common.ts';
import { routeOptions, type TypedApp } from '../../route-options.ts';

const OCSP_REQUEST_LIMIT = 64 * 1024;
const CrlFileParams = Type.Object({ crl_file: Type.String({ description: '{ca_id}.crl, where a CA URN may stand for the id' }) });
const OcspParams = Type.Object({ ca_id: Type.String({ description: 'CA id or URN' }) });
const OcspGetParams = Type.Object({
  ca_id: Type.String({ description: 'CA id or URN' }),
  request: Type.String({ description: 'The DER OCSPRequest, base64 then URL-encoded (RFC 6960 A.1)' }),
});
/** The GET form's request when a gateway has percent-decoded it over several segments (see the last route). */
const OcspSplitParams = Type.Object({ ca_id: Type.String(), '*': Type.String() });
/** What both OCSP forms share: open to anyone, the DER answer, the JSON 404 for a CA not served. */
const ocspRoute = {
  public: true,
  tag: 'public-pki',
  errors: [404],
  notFound: 'No CA with this id or URN serves OCSP (unknown, PENDING or removed)',
  responses: {
    200: binary(
      'application/ocsp-response',
      'OCSPResponse (DER, RFC 6960); also for a malformed request (malformedRequest) or a failure (tryLater, internalError)',
    ),
  },
} as const;
/**
 * The POST body is raw DER that this plugin's parser takes as is, so it has no validation schema; the document
 * still declares it, or generated clients cannot send one.
 */
const ocspRequestBody = {
  ...binary('application/ocsp-request', 'OCSPRequest (DER, RFC 6960 4.1.1), at most 64 KiB'),
  required: true,
};

/** RFC 9110 §13.1.2: If-None-Match holds `*` or a list of entity tags, weak ones (W/) matching too. */
function etagMatches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch.split(',').some((tag) => {
    const candidate = tag.trim();
    return candidate === '*' || candidate.replace(/^W\//, '') === etag;
  });
}

export async function revocationPublicRoutes(app: TypedApp): Promise<void> {
  const { crls, ocsp } = app.services.revocation;

  // In this plugin only: every body is the raw DER an OCSP client sends (application/ocsp-request or unlabelled).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: OCSP_REQUEST_LIMIT }, (_request, body, done) => done(null, body));

  app.get(
    '/crl/:crl_file',
    routeOptions({
      public: true,
      tag: 'public-pki',
      summary: "The CA's current CRL (DER), cached until nextUpdate",
      operationId: 'getPublicCrl',
      params: CrlFileParams,
      errors: [404],
      notFound: 'No CRL for this CA (unknown, PENDING, removed, or CRL disabled)',
      headers: Type.Object({
        'if-none-match': Type.Optional(Type.String({ description: 'An ETag from an earlier answer: 304 while that CRL is current' })),
      }),
      responses: {
        200: {
          ...binary('application/pkix-crl', 'X.509 v2 CRL (DER, RFC 5280), with Cache-Control until its nextUpdate'),
          headers: {
            'Cache-Control': Type.String(),
            ETag: Type.String({ description: 'Names this CRL (CA and CRL number); send it back as If-None-Match' }),
          },
        },
        304: {
          description: 'The CRL named by If-None-Match is still current',
          headers: { 'Cache-Control': Type.String(), ETag: Type.String() },
        },
      },
    }),
    async function publicCrl(request, reply) {
      const { crl_file } = request.params;
      const crl = crl_file.endsWith('.crl') ? await crls.publicCrl(crl_file.slice(0, -'.crl'.length)) : null;
      if (!crl) throw errors.notFound(`CRL ${crl_file}`);
      reply.header('cache-control', crl.cacheControl).header('etag', crl.etag);
      if (etagMatches(request.headers['if-none-match'], crl.etag)) return reply.code(304).send();
      // A view of the bytes: a CRL can be tens of MiB.
      return reply.type('application/pkix-crl').send(Buffer.from(crl.der.buffer, crl.der.byteOffset, crl.der.length));
    },
  );

  /** The CA's OCSP response (404 JSON when the CA is not served), an OCSP error response whatever goes wrong. */
  async function answerOcsp(request: FastifyRequest, reply: FastifyReply, reference: string, requestDer: () => Uint8Array) {
    let response: Uint8Array | null;
    try {
      response = await ocsp.answer(reference, requestDer);
    } catch (error) {
      request.log.error({ err: error, ca: reference }, 'OCSP response failed');
      const unavailable = error instanceof AppError && error.statusCode === 503;
      response = ocspErrorResponse(unavailable ? 'tryLater' : 'internalError');
    }
    if (!response) throw errors.notFound(`CA ${reference}`);
    return reply.type('application/ocsp-response').send(Buffer.from(response.buffer, response.byteOffset, response.length));
  }

  app.post(
    '/ocsp/:ca_id',
    routeOptions({
      ...ocspRoute,
      summary: 'OCSP responder (RFC 6960), request as application/ocsp-request',
      description: 'The GET form, GET /ocsp/{ca_id}/{request}, takes the same request base64-encoded in the path.',
      operationId: 'postOcspRequest',
      params: OcspParams,
      documentedBody: ocspRequestBody,
      bodyLimit: OCSP_REQUEST_LIMIT,
    }),
    async function postOcsp(request, reply) {
      const body = request.body;
      return answerOcsp(request, reply, request.params.ca_id, () => (Buffer.isBuffer(body) ? new Uint8Array(body) : new Uint8Array(0)));
    },
  );

  app.get(
    '/ocsp/:ca_id/:request',
    routeOptions({
      ...ocspRoute,
      summary: 'OCSP responder, GET form with the base64 request in the path',
      operationId: 'getOcspRequest',
      params: OcspGetParams,
    }),
    async function getOcsp(request, reply) {
      return answerOcsp(request, reply, request.params.ca_id, () => decodeOcspGetPath(request.params.request));
    },
  );
  // The same request as an HTTP API hands it to Lambda, percent-decoded: a base64 `/` then splits the request
  // over several path segments (RFC 6960 A.1 asks for it encoded, but gateways decode it).
  app.get(
    '/ocsp/:ca_id/*',
    routeOptions({ public: true, hide: true, params: OcspSplitParams }),
    async function getOcspSplit(request, reply) {
      return answerOcsp(request, reply, request.params.ca_id, () => decodeOcspGetPath(request.params['*']));
    },
  );
}
