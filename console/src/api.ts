/**
 * The console's only way to the service: the public API, exactly as any client calls it. The token lives in
 * sessionStorage (this tab only, never a cookie); an access key pair is exchanged for one at sign-in by signing
 * POST /v1/auth/tokens the way Huawei's SDK-HMAC-SHA256 signers do.
 */
const TOKEN_KEY = 'pca.token';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export const session = {
  get token(): string | null {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  signIn(token: string) {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

type Query = Record<string, string | number | boolean | undefined>;

export function withQuery(path: string, query: Query = {}): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) if (value !== undefined && value !== '') params.set(name, String(value));
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

async function failure(response: Response): Promise<ApiError> {
  try {
    const body = (await response.json()) as { error_code?: string; error_msg?: string };
    return new ApiError(response.status, body.error_code ?? String(response.status), `${body.error_code}: ${body.error_msg}`);
  } catch {
    return new ApiError(response.status, String(response.status), `HTTP ${response.status}`);
  }
}

/** A call with the session's token; a 401 ends the session (the token expired or was refused). */
export async function call(
  method: string,
  path: string,
  options: { query?: Query; body?: unknown; accept?: string } = {},
): Promise<Response> {
  const headers: Record<string, string> = { authorization: `Bearer ${session.token ?? ''}` };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (options.accept !== undefined) headers.accept = options.accept;
  const response = await fetch(withQuery(path, options.query), {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  if (response.status === 401) {
    session.signOut();
    window.dispatchEvent(new Event('pca-signed-out'));
  }
  if (!response.ok) throw await failure(response);
  return response;
}

export async function json<T = any>(method: string, path: string, options: { query?: Query; body?: unknown } = {}): Promise<T> {
  const response = await call(method, path, options);
  return (response.status === 204 ? {} : await response.json()) as T;
}

const hex = (buffer: ArrayBuffer) => [...new Uint8Array(buffer)].map((byte) => byte.toString(16).padStart(2, '0')).join('');
const encoder = new TextEncoder();
const sha256Hex = async (text: string) => hex(await crypto.subtle.digest('SHA-256', encoder.encode(text)));

/** `YYYYMMDDTHHMMSSZ`, the X-Sdk-Date format. */
const sdkDate = (date: Date) =>
  date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');

/** POST /v1/auth/tokens signed with the pair (only X-Sdk-Date is signed, which the contract allows). */
export async function exchangeAccessKey(access: string, secret: string): Promise<string> {
  const path = '/v1/auth/tokens';
  const body = '{}';
  const date = sdkDate(new Date());
  const canonical = ['POST', `${path}/`, '', `x-sdk-date:${date}\n`, 'x-sdk-date', await sha256Hex(body)].join('\n');
  const toSign = `SDK-HMAC-SHA256\n${date}\n${await sha256Hex(canonical)}`;
  const key = await crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const signature = hex(await crypto.subtle.sign('HMAC', key, encoder.encode(toSign)));
  const response = await fetch(path, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-sdk-date': date,
      authorization: `SDK-HMAC-SHA256 Access=${access}, SignedHeaders=x-sdk-date, Signature=${signature}`,
    },
    body,
  });
  if (!response.ok) throw await failure(response);
  return ((await response.json()) as { token: string }).token;
}

/** Checks a pasted token with a cheap authenticated read before keeping it. */
export async function checkToken(token: string): Promise<void> {
  const response = await fetch('/v1/pca/config/console', { headers: { authorization: `Bearer ${token}` } });
  if (!response.ok) throw await failure(response);
}

/** Saves text or a Blob as a file through a temporary object URL (no inline script, CSP-safe). */
export function download(name: string, content: Blob | string, type = 'application/x-pem-file'): void {
  const blob = typeof content === 'string' ? new Blob([content], { type }) : content;
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
