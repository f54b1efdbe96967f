/** Schemas shared by many routes; they also become components of the OpenAPI document. */
import { Type, type TStringOptions } from 'typebox';

export const ErrorBody = Type.Object(
  {
    error_code: Type.String({ minLength: 3, maxLength: 36, examples: ['PCA.00020001'] }),
    error_msg: Type.String({ maxLength: 1024 }),
  },
  { $id: 'ErrorBody', title: 'Error', description: 'Every non-2xx response has this body and an X-Request-Id header' },
);

export const UUID_PATTERN = '^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$';

/**
 * `enterprise_project_id` of a CA's create and activate (§4.2.1: "`0` (default), a UUID, or `all`"; §4.2.4 "as in
 * §4.2.1"). Huawei's enterprise project ids are UUIDs, in either case.
 */
export const EnterpriseProjectId = () =>
  Type.String({
    pattern: '^(0|all|[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12})$',
    description: '"0" (the default project), an enterprise project UUID, or "all". Stored and echoed, with no effect',
  });

/**
 * `enterprise_project_id` of a CA order and of certificate issuance (§4.2.2, §4.4.1, §4.4.2: "Stored", no form given):
 * any string a client sends there (a Go SDK's empty string included) is kept as it was.
 */
export const StoredProjectId = () => Type.String({ maxLength: 64, description: 'Stored and echoed, with no effect' });

/** Responses every authenticated route may give, referenced from each route schema. */
export const errorResponses = {
  400: Type.Ref('ErrorBody', { description: 'Invalid request' }),
  401: Type.Ref('ErrorBody', { description: 'Authentication failed' }),
  403: Type.Ref('ErrorBody', { description: 'Action not permitted' }),
  404: Type.Ref('ErrorBody', { description: 'Not found' }),
  500: Type.Ref('ErrorBody', { description: 'Internal error' }),
  503: Type.Ref('ErrorBody', { description: 'Temporarily unavailable' }),
};

export const NoContent = Type.Null({ description: 'No content' });

/** The operation extension a route with an optional body carries (route-options.ts), turned into `requestBody.required: false`. */
export const OPTIONAL_BODY_MARK = 'x-optional-body';

/** Raw bytes, which generated clients read (or send) as a Blob; a fresh object each time (no YAML alias). */
export const bytes = () => ({ type: 'string', format: 'binary' });

/** A response (or request body) of raw bytes in one media type. */
export const binary = (mediaType: string, description: string) => ({ description, content: { [mediaType]: { schema: bytes() } } });

export const securityRequirements: Record<string, string[]>[] = [{ sdkHmac: [] }, { bearer: [] }, { authToken: [] }];

const DEFAULT_LIMIT = 10;

/** Items to skip; bounded so the database is never handed a number it cannot hold (a 500, not a 400). */
export const MAX_OFFSET = 2_147_483_647;
export const Offset = Type.Integer({ minimum: 0, maximum: MAX_OFFSET, default: 0 });

/** An instant as milliseconds since the epoch, up to the last millisecond of year 9999 (a valid Date). */
export const epochMillis = (description: string) => Type.Integer({ minimum: 0, maximum: 253_402_300_799_999, description });

/** List paging (§2 Lists): optional for callers, filled in by the validator's defaults. */
export const PagingQuery = {
  limit: Type.Optional(
    Type.Integer({ minimum: 0, maximum: 1000, default: DEFAULT_LIMIT, description: 'Items per page; 0 returns only the total' }),
  ),
  offset: Type.Optional(Offset),
};

/** The page a validated query asks for. */
export function pageOf(query: { limit?: number; offset?: number }): { limit: number; offset: number } {
  return { limit: query.limit ?? DEFAULT_LIMIT, offset: query.offset ?? 0 };
}

/**
 * A string enum whose Static<> is the union of its values (what the services' input types want), with the JSON Schema
 * of `Type.String({ enum })`: the OpenAPI document keeps its plain `enum`, where a union of literals would be `anyOf`.
 */
export const StringEnum = <const Values extends readonly string[]>(values: Values, options: TStringOptions = {}) =>
  Type.Unsafe<Values[number]>(Type.String({ enum: [...values], ...options }));

export const SortDirection = Type.Optional(StringEnum(['ASC', 'DESC'], { default: 'DESC', description: 'Ties break by id' }));

export const NullableString = Type.Union([Type.String(), Type.Null()]);

/** A distinguished name in responses (§5.1): every attribute present, null when the certificate lacks it. */
export const DistinguishedNameOut = Type.Object({
  common_name: NullableString,
  country: NullableString,
  state: NullableString,
  locality: NullableString,
  organization: NullableString,
  organizational_unit: NullableString,
});
