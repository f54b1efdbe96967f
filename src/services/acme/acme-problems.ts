/**
 * RFC 8555 §6.7 problem documents. ACME routes throw AcmeProblem; their error handler (src/http/routes/acme/)
 * sends `application/problem+json` with a fresh Replay-Nonce. AppErrors thrown by shared services (issuance,
 * revocation) are mapped here too, so no refusal reaches an ACME client as a 5xx or in the REST error format.
 */
import type { AppError } from '../../errors.ts';

export type ProblemType =
  | 'accountDoesNotExist'
  | 'alreadyRevoked'
  | 'badCSR'
  | 'badNonce'
  | 'badPublicKey'
  | 'badRevocationReason'
  | 'badSignatureAlgorithm'
  | 'connection'
  | 'dns'
  | 'externalAccountRequired'
  | 'incorrectResponse'
  | 'invalidContact'
  | 'malformed'
  | 'orderNotReady'
  | 'rateLimited'
  | 'rejectedIdentifier'
  | 'serverInternal'
  | 'tls'
  | 'unauthorized'
  | 'unsupportedContact'
  | 'unsupportedIdentifier';

export interface ProblemDocument {
  type: string;
  detail: string;
  status: number;
  subproblems?: ProblemDocument[];
}

const DEFAULT_STATUS: Partial<Record<ProblemType, number>> = {
  accountDoesNotExist: 400,
  unauthorized: 403,
  orderNotReady: 403,
  serverInternal: 500,
};

export class AcmeProblem extends Error {
  readonly status: number;
  constructor(
    readonly type: ProblemType,
    detail: string,
    options: { status?: number; headers?: Record<string, string> } = {},
  ) {
    super(detail);
    this.name = 'AcmeProblem';
    this.status = options.status ?? DEFAULT_STATUS[type] ?? 400;
    this.headers = options.headers;
  }
  readonly headers?: Record<string, string>;

  document(): ProblemDocument {
    return { type: `urn:ietf:params:acme:error:${this.type}`, detail: this.message, status: this.status };
  }
}

export const problem = (type: ProblemType, detail: string, status?: number) => new AcmeProblem(type, detail, { status });

/** An AppError from a shared service, in ACME's terms: 404 stays 404, 429 is rateLimited, other refusals `malformed`. */
export function problemOfAppError(error: AppError): AcmeProblem {
  if (error.statusCode === 404) return new AcmeProblem('malformed', error.message, { status: 404 });
  if (error.statusCode === 429) return new AcmeProblem('rateLimited', error.message, { status: 429, headers: error.headers });
  if (error.statusCode >= 500)
    return new AcmeProblem('serverInternal', error.message, { status: error.statusCode, headers: error.headers });
  return new AcmeProblem(error.statusCode === 403 ? 'unauthorized' : 'malformed', error.message, {
    status: error.statusCode,
    headers: error.headers,
  });
}
