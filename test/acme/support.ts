/**
 * ACME test support: a started server (real HTTP, or HTTPS with a throwaway server certificate) whose
 * PUBLIC_BASE_URL is its own address, a CA with ACME enabled and EAB keys, and the client side of http-01 (a
 * server answering key authorizations). Nothing is mocked: clients talk to the server over loopback.
 */
import dgram from 'node:dgram';
import { createServer, type Server } from 'node:http';
import type { Test } from 'tap';
import type { Clock } from '../../src/clock.ts';
import { createTestApp, type TestApp, type TestAppOptions } from '../helpers/app.ts';
import { CA, DN, client, type Client } from '../ca/support.ts';
import { openssl, type Scratch } from '../certificates/support.ts';

import { freePort } from '../helpers/database.ts';

export { freePort };

export interface AcmeServer {
  harness: TestApp;
  api: Client;
  baseUrl: string;
  /** The http-01 port the server validates against (ACME_HTTP01_PORT). */
  http01Port: number;
  tlsAlpn01Port: number;
  close(): Promise<void>;
}

/** A server certificate for an IP address (127.0.0.1) made by openssl, for TLS_CERT_FILE/TLS_KEY_FILE. */
export async function serverCertificate(dir: Scratch, address = '127.0.0.1'): Promise<{ certFile: string; keyFile: string }> {
  const certFile = dir.file('server.pem');
  const keyFile = dir.file('server.key');
  const made = await openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '2',
    '-subj',
    `/CN=${address}`,
    '-addext',
    `subjectAltName=IP:${address}`,
    '-keyout',
    keyFile,
    '-out',
    certFile,
  ]);
  if (!made.ok) throw new Error(`openssl req -x509 failed: ${made.stderr}`);
  return { certFile, keyFile };
}

export async function startAcmeServer(
  options: {
    env?: Record<string, string>;
    tls?: { certFile: string; keyFile: string };
    clock?: Clock;
    wrapKeyStores?: TestAppOptions['wrapKeyStores'];
  } = {},
): Promise<AcmeServer> {
  const port = await freePort();
  const http01Port = await freePort();
  const tlsAlpn01Port = await freePort();
  const scheme = options.tls ? 'https' : 'http';
  const baseUrl = `${scheme}://127.0.0.1:${port}`;
  const harness = await createTestApp({
    clock: options.clock,
    wrapKeyStores: options.wrapKeyStores,
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

/**
 * What a file's tests share on `server`: its http-01 responder and a root CA with ACME enabled, at the directory URL
 * given; the server and the responder are closed at `t`'s teardown.
 */
export async function acmeFixture(t: Test, server: AcmeServer) {
  t.teardown(() => server.close());
  const responder = await http01Responder(server.http01Port);
  t.teardown(() => responder.close());
  const { api } = server;
  const caId = await acmeCa(api, { enabled: true });
  return { responder, api, prisma: server.harness.database.prisma, caId, directoryUrl: `${server.baseUrl}/acme/${caId}/directory` };
}

/** A root CA with ACME enabled under `policy`; returns its id. */
export async function acmeCa(
  api: Client,
  policy: Record<string, unknown> = { enabled: true },
  domainId?: string,
  commonName = 'acme-root',
  validity?: { type: string; value: number },
): Promise<string> {
  const caId = await api.root({ distinguished_name: { ...DN, common_name: commonName }, ...(validity ? { validity } : {}) }, domainId);
  const response = await api.call('PUT', `${CA}/${caId}/acme-policy`, policy, domainId);
  if (response.status !== 200) throw new Error(`acme-policy failed: ${response.status} ${JSON.stringify(response.body)}`);
  return caId;
}

export async function eabKey(
  api: Client,
  caId: string,
  domainId?: string,
): Promise<{ kid: string; hmac_key: string; directory_url: string }> {
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

/**
 * A small authoritative DNS server over UDP (node:dgram) for dns-01: answers A queries from `addresses` and TXT
 * queries from `txt`, NXDOMAIN otherwise; queries of a type in `unanswered` (1 A, 28 AAAA, 16 TXT) are recorded and
 * dropped. Enough of RFC 1035 for the server's resolver, nothing more.
 */
export async function dnsServer(): Promise<{
  port: number;
  txt: Map<string, string[]>;
  addresses: Map<string, string>;
  unanswered: Set<number>;
  queries: string[];
  close(): Promise<void>;
}> {
  const txt = new Map<string, string[]>();
  const addresses = new Map<string, string>();
  const unanswered = new Set<number>();
  const queries: string[] = [];
  const socket = dgram.createSocket('udp4');
  socket.on('message', (query, peer) => {
    if (query.length < 12) return;
    const labels: string[] = [];
    let offset = 12;
    while (offset < query.length && query[offset] !== 0) {
      const length = query[offset]!;
      labels.push(query.subarray(offset + 1, offset + 1 + length).toString('ascii'));
      offset += length + 1;
    }
    const questionEnd = offset + 5;
    const type = query.readUInt16BE(offset + 1);
    const name = labels.join('.').toLowerCase();
    queries.push(`${type === 16 ? 'TXT' : type === 1 ? 'A' : type === 28 ? 'AAAA' : type} ${name}`);
    if (unanswered.has(type)) return;
    const answers: Buffer[] = [];
    const record = (rtype: number, rdata: Buffer) => {
      const head = Buffer.alloc(12);
      head.writeUInt16BE(0xc00c, 0);
      head.writeUInt16BE(rtype, 2);
      head.writeUInt16BE(1, 4);
      head.writeUInt32BE(0, 6);
      head.writeUInt16BE(rdata.length, 10);
      answers.push(head, rdata);
    };
    if (type === 16) for (const value of txt.get(name) ?? []) record(16, Buffer.concat([Buffer.from([value.length]), Buffer.from(value)]));
    if (type === 1 && addresses.has(name)) record(1, Buffer.from(addresses.get(name)!.split('.').map(Number)));
    const known = txt.has(name) || addresses.has(name);
    const header = Buffer.alloc(12);
    query.copy(header, 0, 0, 2);
    header.writeUInt16BE(0x8400 | (query.readUInt16BE(2) & 0x0100) | (known ? 0 : 3), 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers.length / 2, 6);
    socket.send(Buffer.concat([header, query.subarray(12, questionEnd), ...answers]), peer.port, peer.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return {
    port: socket.address().port,
    txt,
    addresses,
    unanswered,
    queries,
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
}
