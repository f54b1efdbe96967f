/**
 * ACME test support: a started server (real HTTP, or HTTPS with a throwaway server certificate) whose
 * PUBLIC_BASE_URL is its own address, a CA with ACME enabled and EAB keys, and the client side of http-01 (a
 * server answering key authorizations). Nothing is mocked: clients talk to the server over loopback.
 */
import { createServer, type Server } from 'node:http';
import net from 'node:net';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { CA, DN, client, type Client } from '../ca/support.ts';
import { openssl, type Scratch } from '../certificates/support.ts';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface AcmeServer {
  harness: TestApp;
  api: Client;
  baseUrl: string;
  /** The http-01 port the server validates against (ACME_HTTP01_PORT). */
  http01Port: number;
  tlsAlpn01Port: number;
  close(): Promise<void>;
}

/** A server certificate for 127.0.0.1 made by openssl, for TLS_CERT_FILE/TLS_KEY_FILE. */
export async function serverCertificate(dir: Scratch): Promise<{ certFile: string; keyFile: string }> {
  const certFile = dir.file('server.pem');
  const keyFile = dir.file('server.key');
  const made = await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyFile, '-out', certFile]);
  if (!made.ok) throw new Error(`openssl req -x509 failed: ${made.stderr}`);
  return { certFile, keyFile };
}

export async function startAcmeServer(options: { env?: Record<string, string>; tls?: { certFile: string; keyFile: string } } = {}): Promise<AcmeServer> {
  const port = await freePort();
  const http01Port = await freePort();
  const tlsAlpn01Port = await freePort();
  const scheme = options.tls ? 'https' : 'http';
  const baseUrl = `${scheme}://127.0.0.1:${port}`;
  const harness = await createTestApp({
    env: {
      PUBLIC_BASE_URL: baseUrl,
      ACME_HTTP01_PORT: String(http01Port),
      ACME_TLSALPN01_PORT: String(tlsAlpn01Port),
      ...(options.tls ? { TLS_CERT_FILE: options.tls.certFile, TLS_KEY_FILE: options.tls.keyFile } : {}),
      ...options.env,
    },
  });
  await harness.app.listen({ host: '127.0.0.1', port });
  return { harness, api: client(harness), baseUrl, http01Port, tlsAlpn01Port, close: () => harness.close() };
}

/** A root CA with ACME enabled under `policy`; returns its id. */
export async function acmeCa(api: Client, policy: Record<string, unknown> = { enabled: true }, domainId?: string, commonName = 'acme-root'): Promise<string> {
  const caId = await api.root({ distinguished_name: { ...DN, common_name: commonName } }, domainId);
  const response = await api.call('PUT', `${CA}/${caId}/acme-policy`, policy, domainId);
  if (response.status !== 200) throw new Error(`acme-policy failed: ${response.status} ${JSON.stringify(response.body)}`);
  return caId;
}

export async function eabKey(api: Client, caId: string, domainId?: string): Promise<{ kid: string; hmac_key: string; directory_url: string }> {
  const response = await api.call('POST', `${CA}/${caId}/acme/eab`, undefined, domainId);
  if (response.status !== 200) throw new Error(`eab failed: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body as { kid: string; hmac_key: string; directory_url: string };
}

/** The client's http-01 responder: serves the key authorizations put into `tokens`. */
export async function http01Responder(port: number): Promise<{ tokens: Map<string, string>; requests: string[]; close(): Promise<void> }> {
  const tokens = new Map<string, string>();
  const requests: string[] = [];
  const server: Server = createServer((request, response) => {
    requests.push(`${request.headers.host ?? ''}${request.url ?? ''}`);
    const token = (request.url ?? '').split('/.well-known/acme-challenge/')[1] ?? '';
    const answer = tokens.get(token);
    response.writeHead(answer ? 200 : 404, { 'content-type': 'text/plain' }).end(answer ?? 'no such token');
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { tokens, requests, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
