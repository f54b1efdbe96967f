/**
 * The contract's error catalogue (§7). Services throw AppError; one handler (src/http/error-handler.ts)
 * turns anything thrown into the `{error_code, error_msg}` body with the right status. The X.509 core throws its
 * own X509Error, which `clientErrorOf` below maps to the contract, once.
 */
import { X509Error, type X509ErrorKind } from './x509/x509-errors.ts';

export const ErrorCode = {
  InvalidParameter: 'PCA.00020001',
  InvalidDistinguishedName: 'PCA.00020101',
  InvalidKeyAlgorithm: 'PCA.00020102',
  InvalidSignatureAlgorithm: 'PCA.00020103',
  InvalidValidity: 'PCA.00020109',
  InvalidDomainName: 'PCA.00020110',
  InvalidIp: 'PCA.00020111',
  InvalidAltNameType: 'PCA.00020112',
  InvalidCaId: 'PCA.00020201',
  InvalidCaType: 'PCA.00020202',
  InvalidPathLength: 'PCA.00020203',
  InvalidParameterFormat: 'PCA.10010105',
  AuthenticationFailed: 'APIG.0303',
  ActionNotPermitted: 'PCA.00010003',
  /** Huawei: "CA or certificate frozen. Contact administrator." (403): nothing but viewing is allowed. */
  Frozen: 'PCA.00030202',
  NotFound: 'PCA.10010002',
  /** Huawei's API gateway code for throttled requests. */
  Throttled: 'APIG.0308',
  Internal: 'PCA.00050001',
  Unavailable: 'PCA.00050002',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class AppError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown; headers?: Record<string, string>; namesInfrastructure?: boolean },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.headers = options?.headers;
    this.namesInfrastructure = options?.namesInfrastructure === true;
  }
  readonly headers?: Record<string, string>;
  /** The message names parts of the deployment (a token label, a library path): not for anonymous callers. */
  readonly namesInfrastructure: boolean;
}

const badRequest = (code: ErrorCode) => (message: string) => new AppError(400, code, message);

/** Factories, one per situation, so call sites read as the rule they enforce. */
export const errors = {
  invalidParameter: badRequest(ErrorCode.InvalidParameter),
  /** A state precondition of §6, a used-up quota or a policy refusal: 400 PCA.00020001. */
  conflictingState: badRequest(ErrorCode.InvalidParameter),
  invalidDistinguishedName: badRequest(ErrorCode.InvalidDistinguishedName),
  invalidKeyAlgorithm: badRequest(ErrorCode.InvalidKeyAlgorithm),
  invalidSignatureAlgorithm: badRequest(ErrorCode.InvalidSignatureAlgorithm),
  invalidValidity: badRequest(ErrorCode.InvalidValidity),
  invalidDomainName: badRequest(ErrorCode.InvalidDomainName),
  invalidIp: badRequest(ErrorCode.InvalidIp),
  invalidAltNameType: badRequest(ErrorCode.InvalidAltNameType),
  invalidCaId: badRequest(ErrorCode.InvalidCaId),
  invalidCaType: badRequest(ErrorCode.InvalidCaType),
  invalidPathLength: badRequest(ErrorCode.InvalidPathLength),
  invalidParameterFormat: badRequest(ErrorCode.InvalidParameterFormat),
  idempotencyConflict: (message: string) => new AppError(409, ErrorCode.InvalidParameter, message),
  authenticationFailed: (message: string) => new AppError(401, ErrorCode.AuthenticationFailed, message),
  actionNotPermitted: (action: string) =>
    new AppError(403, ErrorCode.ActionNotPermitted, `the credential does not permit action '${action}'`),
  temporaryKeyRefused: (message: string) => new AppError(403, ErrorCode.ActionNotPermitted, message),
  frozen: (message: string) => new AppError(403, ErrorCode.Frozen, message),
  notFound: (what: string) => new AppError(404, ErrorCode.NotFound, `${what} not found`),
  unavailable: (message: string, cause?: unknown) =>
    new AppError(503, ErrorCode.Unavailable, message, { cause, headers: { 'retry-after': '5' } }),
  /** A key store that cannot be used now, its message naming the token or library (see AppError.namesInfrastructure). */
  keyStoreUnavailable: (message: string, cause?: unknown) =>
    new AppError(503, ErrorCode.Unavailable, message, { cause, headers: { 'retry-after': '5' }, namesInfrastructure: true }),
  tooManyRequests: (retryAfterSeconds: number) =>
    new AppError(429, ErrorCode.Throttled, 'rate limit exceeded', {
      headers: { 'retry-after': String(retryAfterSeconds) },
    }),
};

/** The contract's code for each refusal of the X.509 core; all are 400s. */
const X509_ERROR_CODES: Record<X509ErrorKind, ErrorCode> = {
  malformed: ErrorCode.InvalidParameter,
  'bad-signature': ErrorCode.InvalidParameter,
  'unsupported-key': ErrorCode.InvalidKeyAlgorithm,
  'unsupported-signature-algorithm': ErrorCode.InvalidSignatureAlgorithm,
  'invalid-name': ErrorCode.InvalidDistinguishedName,
  'invalid-validity': ErrorCode.InvalidValidity,
  'invalid-ip': ErrorCode.InvalidIp,
  'unsupported-general-name': ErrorCode.InvalidAltNameType,
  'unsupported-name-constraint': ErrorCode.InvalidParameter,
  'invalid-profile': ErrorCode.InvalidParameter,
};

/** The client error `error` stands for: an AppError as it is, an X.509 refusal as its 400; undefined otherwise. */
export function clientErrorOf(error: unknown): AppError | undefined {
  if (error instanceof AppError) return error;
  if (error instanceof X509Error) return new AppError(400, X509_ERROR_CODES[error.kind], error.message, { cause: error });
  return undefined;
}
