/**
 * Certificate export (§4.4.5, ISTIO §10.9) as one function from DER inputs to the response: a JSON body, or a
 * zip with its download name. State checks (only ISSUED certificates) belong to the caller.
 */
import { randomInt } from 'node:crypto';
import { errors } from '../errors.ts';
import { joinPem, toPem } from '../x509/pem.ts';
import { encryptPkcs8Pem, pkcs8ToTraditionalPem, validateExportPassword } from './private-key-formats.ts';
import { zipFiles } from './zip.ts';

export const EXPORT_TYPES = ['APACHE', 'NGINX', 'IIS', 'TOMCAT', 'OTHER', 'ISTIO'] as const;
export type ExportType = (typeof EXPORT_TYPES)[number];

export interface CertificateExportInput {
  /** Any case. */
  type: string;
  compressed: boolean;
  /** An empty string counts as no password (clients send `""` for an unset optional field). */
  password?: string;
  commonName: string;
  certificate: Uint8Array;
  /** Issuer first, root last. */
  chain: Uint8Array[];
  /** The server-generated key; undefined for a certificate issued from a CSR. */
  pkcs8?: Uint8Array;
  isIntermediateCa: boolean;
}

export type CertificateExport =
  | { kind: 'json'; body: Record<string, string | null> }
  | { kind: 'zip'; filename: string; bytes: Uint8Array };

type Files = Record<string, Uint8Array | string>;

/**
 * The export's form, checked before the certificate is looked up (§2). Its password is judged only where the service
 * holds a key for it to encrypt: for any other certificate it is ignored (§4.4.5).
 */
export function parseExportType(type: string): ExportType {
  const upper = type.toUpperCase();
  const known = EXPORT_TYPES.find((t) => t === upper);
  if (known === undefined) throw errors.invalidParameter(`type must be one of ${EXPORT_TYPES.join(', ')}`);
  return known;
}

export async function buildCertificateExport(input: CertificateExportInput): Promise<CertificateExport> {
  const type = parseExportType(input.type);
  const password = (input.pkcs8 && input.password) || undefined;
  if (password) validateExportPassword(password);
  if (type === 'ISTIO') {
    const files = istioFiles(input, password);
    return input.compressed ? zipExport(input.commonName, type, files) : { kind: 'json', body: files };
  }
  if (!input.compressed) return { kind: 'json', body: await jsonBody(input, password) };
  return zipExport(input.commonName, type, await zipContents(type, input, password));
}

/**
 * `<cn>_<type>.zip`, with each character of the common name outside A–Z a–z 0–9 . _ - replaced by one `_` (by code
 * point: one outside the BMP, two UTF-16 units, is one character too).
 */
export function exportFilename(commonName: string, type: ExportType): string {
  return `${commonName.replace(/[^A-Za-z0-9._-]/gu, '_')}_${type.toLowerCase()}.zip`;
}

function zipExport(commonName: string, type: ExportType, files: Files): CertificateExport {
  return { kind: 'zip', filename: exportFilename(commonName, type), bytes: zipFiles(files) };
}

function certificatePem(der: Uint8Array): string {
  return toPem('CERTIFICATE', der);
}

function chainPem(chain: Uint8Array[]): string {
  return joinPem(chain.map(certificatePem));
}

async function privateKeyPem(pkcs8: Uint8Array, password: string | undefined): Promise<string> {
  return password === undefined ? pkcs8ToTraditionalPem(pkcs8) : encryptPkcs8Pem(pkcs8, password);
}

async function jsonBody(input: CertificateExportInput, password: string | undefined): Promise<Record<string, string | null>> {
  return {
    certificate: certificatePem(input.certificate),
    certificate_chain: input.chain.length === 0 ? null : chainPem(input.chain),
    private_key: input.pkcs8 === undefined ? null : await privateKeyPem(input.pkcs8, password),
  };
}

/** The zip table of §4.4.5. */
async function zipContents(
  type: Exclude<ExportType, 'ISTIO'>,
  input: CertificateExportInput,
  password: string | undefined,
): Promise<Files> {
  const leaf = certificatePem(input.certificate);
  const chain = chainPem(input.chain);
  const fullChain = chainPem([input.certificate, ...input.chain]);
  const { pkcs8 } = input;
  if (pkcs8 === undefined) {
    if (type === 'NGINX') return { 'server.crt': fullChain };
    if (type === 'OTHER') return { 'chain.pem': chain, 'cert.pem': leaf };
    return { 'chain.crt': chain, 'server.crt': leaf };
  }
  switch (type) {
    case 'APACHE':
      return { 'server.key': await privateKeyPem(pkcs8, password), 'chain.crt': chain, 'server.crt': leaf };
    case 'NGINX':
      return { 'server.key': await privateKeyPem(pkcs8, password), 'server.crt': fullChain };
    case 'OTHER':
      return { 'server.key': await privateKeyPem(pkcs8, password), 'chain.pem': chain, 'server.pem': leaf };
    // The keystore encoders (and asn1js under them) load with their first export: not at every cold start.
    case 'IIS': {
      const { buildPkcs12 } = await import('./pkcs12.ts');
      return keystoreFiles('server.pfx', password, (storePassword) =>
        buildPkcs12({
          pkcs8,
          certificate: input.certificate,
          chain: input.chain,
          password: storePassword,
          friendlyName: input.commonName,
        }),
      );
    }
    case 'TOMCAT': {
      const { buildJks } = await import('./jks.ts');
      return keystoreFiles('server.jks', password, (storePassword) =>
        buildJks({ alias: 'server', pkcs8, chain: [input.certificate, ...input.chain], password: storePassword }),
      );
    }
  }
}

/** A keystore under the caller's password, or under a random one handed over in keystorePass.txt. */
async function keystoreFiles(
  name: string,
  password: string | undefined,
  build: (password: string) => Uint8Array | Promise<Uint8Array>,
): Promise<Files> {
  if (password !== undefined) return { [name]: await build(password) };
  const generated = randomPassword();
  return { [name]: await build(generated), 'keystorePass.txt': generated };
}

const PASSWORD_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const GENERATED_PASSWORD_LENGTH = 24;

/** 24 alphanumerics, about 143 bits (randomInt draws without modulo bias). */
function randomPassword(): string {
  return Array.from({ length: GENERATED_PASSWORD_LENGTH }, () => PASSWORD_ALPHABET[randomInt(PASSWORD_ALPHABET.length)]).join('');
}

/** The four files of Istio's `cacerts` Secret (§10.9). */
function istioFiles(input: CertificateExportInput, password: string | undefined): Record<string, string> {
  if (password !== undefined) throw errors.invalidParameter('password is not allowed for type ISTIO');
  if (!input.isIntermediateCa || input.pkcs8 === undefined) {
    throw errors.conflictingState('type ISTIO needs an intermediate CA certificate with a server-generated key');
  }
  const root = input.chain.at(-1);
  if (root === undefined) throw new Error('an intermediate CA certificate must have a chain up to its root');
  return {
    'ca-cert.pem': certificatePem(input.certificate),
    'ca-key.pem': pkcs8ToTraditionalPem(input.pkcs8),
    'root-cert.pem': certificatePem(root),
    'cert-chain.pem': chainPem([input.certificate, ...input.chain]),
  };
}
