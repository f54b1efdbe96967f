/**
 * Challenge validation (RFC 8555 §8.3 http-01, §8.4 dns-01, RFC 8737 tls-alpn-01), against the client's own
 * servers. Names resolve through ACME_STATIC_HOSTS first, then ACME_DNS_SERVER (or the system resolver); ports
 * come from ACME_HTTP01_PORT and ACME_TLSALPN01_PORT, as in Pebble. A failed check is an AcmeProblem
 * (`connection`, `dns`, `tls`, `unauthorized`, `incorrectResponse`), stored on the challenge. An attempt has a
 * deadline, and never connects to an address that is no host's (see isValidationTarget), whatever a name resolves to.
 */
import { createHash, type X509Certificate } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import tls from 'node:tls';
import type { Config } from '../../config.ts';
import { Oid } from '../../x509/oids.ts';
import { embeddedIpv4, parseIp } from '../../x509/extensions.ts';
import { AcmeProblem, problem } from './acme-problems.ts';

export interface ChallengeToCheck {
  type: string;
  token: string;
  identifier: { type: string; value: string };
  keyAuthorization: string;
}

/** A DNS query's timeout (c-ares waits about 4 s for each of two tries): a lookup fits in a validation's deadline. */
const TIMEOUT_MS = 3_000;
/**
 * The whole of one validation attempt, resolution included. An idle timeout alone would let a responder that
 * trickles a byte every few seconds hold the attempt (and the request, or the Lambda, answering it) for hours.
 */
export const VALIDATION_DEADLINE_MS = 10_000;
const MAX_BODY_BYTES = 8192;

const sha256 = (text: string): Buffer => createHash('sha256').update(text).digest();

/** The look-ups a validation makes through ACME_DNS_SERVER. */
export type DnsResolver = Pick<Resolver, 'resolve4' | 'resolve6' | 'resolveTxt'>;

function configuredResolver(dnsServer: string | undefined): DnsResolver | null {
  if (!dnsServer) return null;
  const resolver = new Resolver({ timeout: TIMEOUT_MS, tries: 2 });
  resolver.setServers([dnsServer]);
  return resolver;
}

export function createChallengeValidator(settings: Config['acme'], resolver = configuredResolver(settings.dnsServer)) {
  /** The address a validation connects to, judged after resolution: a name may resolve anywhere. */
  async function addressOf(identifier: ChallengeToCheck['identifier'], attempt: Attempt): Promise<string> {
    const address = await whileResolving(attempt, resolvedAddressOf(identifier));
    if (!isValidationTarget(address))
      throw problem(
        'connection',
        `the address of ${identifier.value}, ${address}, is unspecified, link-local or multicast: never validated`,
      );
    return address;
  }

  async function resolvedAddressOf(identifier: ChallengeToCheck['identifier']): Promise<string> {
    if (identifier.type === 'ip') return identifier.value;
    const fixed = settings.staticHosts[identifier.value];
    if (fixed) return fixed;
    try {
      if (resolver) {
        // Both asked at once (one after the other, two silent tries of a fresh resolver each outlast the validation's
        // deadline), and an A answer taken without waiting for AAAA, which some servers drop.
        const v6 = resolver.resolve6(identifier.value);
        v6.catch(() => undefined);
        const v4 = await resolver.resolve4(identifier.value).catch(() => [] as string[]);
        const address = (v4.length > 0 ? v4 : await v6)[0];
        if (address === undefined) throw new Error('no A or AAAA record');
        return address;
      }
      return (await lookup(identifier.value)).address;
    } catch (error) {
      throw problem('dns', `could not resolve ${identifier.value}: ${(error as Error).message}`);
    }
  }

  async function http01(challenge: ChallengeToCheck, attempt: Attempt): Promise<void> {
    const address = await addressOf(challenge.identifier, attempt);
    const host = challenge.identifier.type === 'ip' && net.isIPv6(address) ? `[${address}]` : challenge.identifier.value;
    const url = `http://${host}:${settings.http01Port}/.well-known/acme-challenge/${challenge.token}`;
    const body = await new Promise<string>((resolve, reject) => {
      // Not imported at the top: an ES import of node:http builds its module facade, reading every export, whose lazy
      // WebSocket getters load undici (~20 ms of a Lambda cold start that validates no challenge).
      const request = process.getBuiltinModule('node:http').get(
        {
          host: address,
          port: settings.http01Port,
          path: `/.well-known/acme-challenge/${challenge.token}`,
          headers: { host: `${host}:${settings.http01Port}` },
          signal: attempt.deadline,
        },
        (response) => {
          if (response.statusCode !== 200) {
            response.resume();
            reject(problem('unauthorized', `${url} answered HTTP ${response.statusCode}`, 403));
            return;
          }
          const chunks: Buffer[] = [];
          let size = 0;
          response.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_BODY_BYTES) response.destroy(new Error('response too large'));
            else chunks.push(chunk);
          });
          response.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
          response.on('error', (error) => reject(problem('connection', `${url}: ${error.message}`)));
        },
      );
      request.on('error', (error) => reject(problem('connection', `could not fetch ${url}: ${error.message}`)));
    });
    if (body.trim() !== challenge.keyAuthorization)
      throw problem('unauthorized', `${url} did not answer the key authorization of this challenge`, 403);
  }

  async function dns01(challenge: ChallengeToCheck, attempt: Attempt): Promise<void> {
    const name = `_acme-challenge.${challenge.identifier.value.replace(/^\*\./, '')}`;
    let records: string[][];
    try {
      records = await whileResolving(attempt, (resolver ?? new Resolver({ timeout: TIMEOUT_MS, tries: 2 })).resolveTxt(name));
    } catch (error) {
      throw problem('dns', `no TXT record at ${name}: ${(error as Error).message}`);
    }
    const expected = sha256(challenge.keyAuthorization).toString('base64url');
    if (!records.some((parts) => parts.join('') === expected))
      throw problem('unauthorized', `the TXT records at ${name} do not hold this challenge's digest`, 403);
  }

  async function tlsAlpn01(challenge: ChallengeToCheck, attempt: Attempt): Promise<void> {
    const { deadline } = attempt;
    const address = await addressOf(challenge.identifier, attempt);
    // A resolution that outlasted the deadline connects to nothing: a listener added to an aborted signal never runs.
    deadline.throwIfAborted();
    const where = `${challenge.identifier.value} (${address}:${settings.tlsAlpn01Port})`;
    const peer = await new Promise<{ alpn: string | false | null; certificate: X509Certificate | undefined }>((resolve, reject) => {
      const socket = tls.connect({
        host: address,
        port: settings.tlsAlpn01Port,
        ALPNProtocols: ['acme-tls/1'],
        // The certificate is self-signed by design: it is judged by its content below.
        rejectUnauthorized: false,
        servername: challenge.identifier.type === 'dns' ? challenge.identifier.value : reverseDnsName(challenge.identifier.value),
      });
      deadline.addEventListener('abort', () => socket.destroy(), { once: true });
      socket.once('secureConnect', () => {
        resolve({ alpn: socket.alpnProtocol, certificate: socket.getPeerX509Certificate() });
        socket.end();
      });
      socket.once('error', (error) =>
        reject(
          problem(error.message.includes('alert') || error.message.includes('SSL') ? 'tls' : 'connection', `${where}: ${error.message}`),
        ),
      );
    });
    if (peer.alpn !== 'acme-tls/1') throw problem('tls', `${where} did not negotiate acme-tls/1`);
    if (!peer.certificate) throw problem('tls', `${where} presented no certificate`);
    if (!namesOnly(peer.certificate.subjectAltName, challenge.identifier)) {
      throw problem(
        'unauthorized',
        `${where} presented a certificate for ${peer.certificate.subjectAltName ?? 'no name'}, not only ${challenge.identifier.value}`,
        403,
      );
    }
    // pkijs loads here, the one place the service parses a certificate with it: not at every cold start.
    const { Certificate } = await import('pkijs');
    const certificate = Certificate.fromBER(new Uint8Array(peer.certificate.raw));
    const extension = certificate.extensions?.find((candidate) => candidate.extnID === Oid.acmeIdentifier);
    // extnValue holds the DER OCTET STRING of the SHA-256 of the key authorization.
    const expected = Buffer.concat([Buffer.from([0x04, 0x20]), sha256(challenge.keyAuthorization)]);
    if (!extension?.critical || !Buffer.from(extension.extnValue.valueBlock.valueHexView).equals(expected)) {
      throw problem('unauthorized', `${where} presented no critical acmeIdentifier extension with this challenge's digest`, 403);
    }
  }

  /** Those that connect destroy their connection when the attempt's deadline aborts. */
  const validators: Record<string, (challenge: ChallengeToCheck, attempt: Attempt) => Promise<void>> = {
    'http-01': http01,
    'dns-01': dns01,
    'tls-alpn-01': tlsAlpn01,
  };

  return {
    /** Resolves when the challenge is met; rejects with the AcmeProblem to store otherwise. */
    async validate(challenge: ChallengeToCheck): Promise<void> {
      const attempt: Attempt = { deadline: AbortSignal.timeout(VALIDATION_DEADLINE_MS), resolving: false };
      const { value } = challenge.identifier;
      const overrun = new Promise<never>((_resolve, reject) =>
        attempt.deadline.addEventListener(
          'abort',
          () =>
            reject(
              attempt.resolving
                ? problem('dns', `could not resolve ${value} within ${VALIDATION_DEADLINE_MS} ms`)
                : problem('connection', `validation of ${value} timed out after ${VALIDATION_DEADLINE_MS} ms`),
            ),
          { once: true },
        ),
      );
      try {
        await Promise.race([overrun, validators[challenge.type]!(challenge, attempt)]);
      } catch (error) {
        if (error instanceof AcmeProblem) throw error;
        throw problem('connection', `validation of ${challenge.identifier.value} failed: ${(error as Error).message}`);
      }
    },
  };
}

export type ChallengeValidator = ReturnType<typeof createChallengeValidator>;

/** One validation attempt: its deadline, and whether it is resolving a name (an overrun then is a DNS problem). */
interface Attempt {
  deadline: AbortSignal;
  resolving: boolean;
}

async function whileResolving<T>(attempt: Attempt, query: Promise<T>): Promise<T> {
  attempt.resolving = true;
  try {
    return await query;
  } finally {
    attempt.resolving = false;
  }
}

/** AWS's instance metadata service over IPv6 (fd00:ec2::254), in a range otherwise private. */
const METADATA_IPV6 = parseIp('fd00:ec2::254')!;

/**
 * Whether an address may be connected to for a validation. Never: unspecified (0.0.0.0/8, ::), link-local
 * (169.254.0.0/16, the cloud metadata service's included; fe80::/10), multicast (224.0.0.0/4, ff00::/8) and the
 * metadata service's IPv6 address, an IPv6 address carrying an IPv4 one judged as that. Private ranges are allowed:
 * this CA validates internal hosts. So is loopback, which the test servers listen on, with no setting to refuse it
 * elsewhere.
 */
export function isValidationTarget(address: string): boolean {
  const ip = parseIp(address);
  if (ip === null) return false;
  const bytes = embeddedIpv4(ip) ?? ip;
  if (bytes.length === 4) return bytes[0] !== 0 && !(bytes[0] === 169 && bytes[1] === 254) && (bytes[0]! < 224 || bytes[0]! > 239);
  return (
    !bytes.every((byte) => byte === 0) &&
    !(bytes[0] === 0xfe && (bytes[1]! & 0xc0) === 0x80) &&
    bytes[0] !== 0xff &&
    !Buffer.from(bytes).equals(METADATA_IPV6)
  );
}

/**
 * Whether a certificate's subjectAltName, as node:crypto prints it, is exactly the identifier. An IP address is
 * compared by its bytes: Node prints an IPv6 address uncompressed, in upper case (2001:DB8:0:0:0:0:0:1).
 */
export function namesOnly(subjectAltName: string | undefined, identifier: ChallengeToCheck['identifier']): boolean {
  const names = (subjectAltName ?? '').split(', ');
  if (names.length !== 1) return false;
  if (identifier.type === 'dns') return names[0] === `DNS:${identifier.value}`;
  const given = names[0]!.startsWith('IP Address:') ? parseIp(names[0]!.slice('IP Address:'.length)) : null;
  const expected = parseIp(identifier.value);
  return given !== null && expected !== null && Buffer.from(given).equals(expected);
}

/** RFC 8738 §6: an IP identifier's SNI in tls-alpn-01 is its reverse DNS name (in-addr.arpa or ip6.arpa). */
export function reverseDnsName(ip: string): string {
  const bytes = parseIp(ip);
  if (!bytes) throw new Error(`not an IP address: ${ip}`);
  if (bytes.length === 4) return `${[...bytes].reverse().join('.')}.in-addr.arpa`;
  const nibbles = [...bytes].flatMap((byte) => [byte >> 4, byte & 0x0f]).map((nibble) => nibble.toString(16));
  return `${nibbles.reverse().join('.')}.ip6.arpa`;
}
