/**
 * Shared helpers of the CA tests: request shortcuts over a test app, openssl checks in a temp folder, and a CA service
 * over a client whose transactions a test steps into.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { systemClock } from '../../src/clock.ts';
import type { Db } from '../../src/db/database.ts';
import type { KeyStores } from '../../src/keystore/index.ts';
import { createBillingHooks } from '../../src/services/billing/usage-hooks.ts';
import { signCaCertificate } from '../../src/services/ca/ca-certificate.ts';
import { createCaService } from '../../src/services/ca/ca-service.ts';
import { toPem } from '../../src/x509/pem.ts';
import type { TestApp } from '../helpers/app.ts';
import { runOpenssl } from '../x509/fixtures/openssl-pki.ts';

export const CA = '/v1/private-certificate-authorities';

export const DN = {
  common_name: 'asm',
  country: 'CN',
  state: 'zhejiang',
  locality: 'hangzhou',
  organization: 'huawei-cloud',
  organizational_unit: 'container',
};

export type Json = Record<string, any>;

export interface Client {
  call(method: string, url: string, payload?: unknown, domainId?: string): Promise<{ status: number; body: Json }>;
  root(overrides?: Json, domainId?: string): Promise<string>;
  subordinate(issuerId: string, overrides?: Json, domainId?: string): Promise<string>;
  show(caId: string, domainId?: string): Promise<Json>;
  /** A PENDING subordinate (EC256, SHA256, no issuer) named `name`; its id and the CSR it exports. */
  pendingSubordinate(name: string): Promise<{ id: string; csr: string }>;
  /** Orders one yearly/monthly CA, left unconfigured; its id. */
  order(order: PrepaidOrder): Promise<string>;
  /** Orders one yearly/monthly CA and configures it as a root; its id and the end of its paid period (ms). */
  prepaidRoot(order: PrepaidOrder, overrides?: Json): Promise<{ id: string; expiry: number }>;
}

type PrepaidOrder = { period_type: 2 | 3; period_num: number; is_auto_renew: 0 | 1 };

export const PREPAID_PRODUCT = {
  cloud_service_type: 'hws.service.type.ccm',
  resource_type: 'hws.resource.type.pca.duration',
  resource_spec_code: 'ca.duration',
};

/** The body of an order (§4.2.2) of one CA, monthly for one month, not renewed automatically. */
export const MONTHLY_ORDER = {
  cloud_service_type: 'hws.service.type.ccm',
  charging_mode: 0,
  period_type: 2,
  period_num: 1,
  is_auto_renew: 0,
  subscription_num: 1,
  product_infos: [PREPAID_PRODUCT],
};

export function client(harness: TestApp): Client {
  async function call(method: string, url: string, payload?: unknown, domainId?: string) {
    const response = await harness.app.inject({
      method: method as 'GET',
      url,
      headers: harness.auth(domainId),
      ...(payload === undefined ? {} : { payload: payload as object }),
    });
    const body = response.body && response.headers['content-type']?.toString().startsWith('application/json') ? response.json() : {};
    return { status: response.statusCode, body };
  }
  async function created(payload: Json, domainId?: string): Promise<string> {
    const response = await call('POST', CA, payload, domainId);
    if (response.status !== 200) throw new Error(`create failed: ${response.status} ${JSON.stringify(response.body)}`);
    return response.body.ca_id as string;
  }
  async function orderCa(order: PrepaidOrder): Promise<string> {
    const ordered = await call('POST', `${CA}/order`, {
      cloud_service_type: 'hws.service.type.ccm',
      charging_mode: 0,
      subscription_num: 1,
      product_infos: [PREPAID_PRODUCT],
      ...order,
    });
    if (ordered.status !== 200) throw new Error(`order failed: ${ordered.status} ${JSON.stringify(ordered.body)}`);
    return ordered.body.ca_ids[0] as string;
  }
  async function show(caId: string, domainId?: string): Promise<Json> {
    const response = await call('GET', `${CA}/${caId}`, undefined, domainId);
    if (response.status !== 200) throw new Error(`show failed: ${response.status} ${JSON.stringify(response.body)}`);
    return response.body;
  }
  return {
    call,
    root: (overrides = {}, domainId) =>
      created(
        {
          type: 'ROOT',
          distinguished_name: DN,
          key_algorithm: 'EC256',
          signature_algorithm: 'SHA256',
          validity: { type: 'YEAR', value: 5 },
          ...overrides,
        },
        domainId,
      ),
    subordinate: (issuerId, overrides = {}, domainId) =>
      created(
        {
          type: 'SUBORDINATE',
          issuer_id: issuerId,
          distinguished_name: { ...DN, common_name: 'asm-subordinate-ca' },
          key_algorithm: 'EC256',
          signature_algorithm: 'SHA256',
          validity: { type: 'YEAR', value: 1 },
          ...overrides,
        },
        domainId,
      ),
    show,
    async pendingSubordinate(name) {
      const id = (
        await call('POST', CA, {
          type: 'SUBORDINATE',
          distinguished_name: { ...DN, common_name: name },
          key_algorithm: 'EC256',
          signature_algorithm: 'SHA256',
        })
      ).body.ca_id;
      return { id, csr: (await call('GET', `${CA}/${id}/csr`)).body.csr };
    },
    order: orderCa,
    async prepaidRoot(order, overrides = {}) {
      const id = await orderCa(order);
      await created({
        type: 'ROOT',
        ca_id: id,
        distinguished_name: DN,
        key_algorithm: 'EC256',
        signature_algorithm: 'SHA256',
        validity: { type: 'YEAR', value: 5 },
        ...overrides,
      });
      return { id, expiry: (await show(id)).prepaid_expire_time as number };
    },
  };
}

/** A leaf (leaf.example.com, EC256, 30 days) issued under `issuerId`, its issuance asserted (200, `label`); its PEM. */
export async function issueLeaf(t: Test, api: Client, issuerId: string, label = 'a leaf is issued'): Promise<string> {
  const issued = await api.call('POST', '/v1/private-certificates', {
    issuer_id: issuerId,
    distinguished_name: { common_name: 'leaf.example.com' },
    key_algorithm: 'EC256',
    signature_algorithm: 'SHA256',
    validity: { type: 'DAY', value: 30 },
  });
  t.equal(issued.status, 200, `${label}: ${JSON.stringify(issued.body)}`);
  return (
    await api.call('POST', `/v1/private-certificates/${issued.body.certificate_id}/export`, { is_compressed: 'false', type: 'OTHER' })
  ).body.certificate;
}

/** A PENDING subordinate (EC256, no issuer) named `name`, its creation asserted (200); its id. */
export async function pendingCa(t: Test, api: Client, name: string): Promise<string> {
  const created = await api.call('POST', CA, {
    type: 'SUBORDINATE',
    distinguished_name: { ...DN, common_name: name },
    key_algorithm: 'EC256',
  });
  t.equal(created.status, 200);
  return created.body.ca_id as string;
}

/**
 * A PENDING subordinate of `app` named `name` and its certificate signed by the key of `parent`, a CA of the same
 * service (as a CSR export signed there would be), with the path length given and no chain; its id and certificate.
 */
export async function signedByServiceCa(
  app: TestApp,
  keyStores: KeyStores,
  parent: string,
  name: string,
  pathLength: number,
): Promise<{ id: string; certificate: string }> {
  const { id } = await client(app).pendingSubordinate(name);
  const prisma = app.database.prisma;
  const row = await prisma.certificateAuthority.findUniqueOrThrow({ where: { id } });
  const signed = await prisma.$transaction((tx) =>
    signCaCertificate(
      tx,
      { domainId: app.config.defaultDomainId, actor: 'test', requestId: 'sign' },
      {
        type: 'SUBORDINATE',
        dn: { ...DN, common_name: name },
        spki: new Uint8Array(row.publicKeySpki!),
        // Only its key algorithm is read for a subordinate: the parent's key signs.
        ownSigner: { keyAlgorithm: 'EC256' } as never,
        hash: 'SHA256',
        validity: { type: 'MONTH', value: 6 },
        issuerRef: parent,
        pathLength,
      },
      new Date(),
      { config: app.config, keyStores },
    ),
  );
  return { id, certificate: toPem('CERTIFICATE', signed.certificateDer) };
}

/** The body of an interactive `$transaction`, and the real `$transaction` of a client (bound to it). */
export type TransactionBody = (tx: object) => Promise<unknown>;
export type OpenTransaction = (body: TransactionBody, ...rest: unknown[]) => Promise<unknown>;

/** `db` whose `$transaction` calls go through `around`, given the real one and the call's arguments; the rest as is. */
export function proxiedTransactions(
  db: Db,
  around: (open: OpenTransaction, body: TransactionBody, ...rest: unknown[]) => Promise<unknown>,
): Db {
  return new Proxy(db, {
    get: (target, property, receiver) => {
      if (property !== '$transaction') return Reflect.get(target, property, receiver);
      const open = (target.$transaction as OpenTransaction).bind(target);
      return (body: TransactionBody, ...rest: unknown[]) => around(open, body, ...rest);
    },
  });
}

/** The CA service as the app builds it (system clock, `app`'s config, billing and log; no CRL signing), over `db`. */
export function caServiceOver(app: TestApp, db: Db, keyStores: KeyStores) {
  return createCaService({
    db,
    clock: systemClock,
    config: app.config,
    keyStores,
    billing: createBillingHooks(app.config.billing),
    crls: { signStale: async () => undefined },
    log: app.app.log,
  });
}

export function assertError(t: Test, response: { status: number; body: Json }, status: number, code: string, message?: RegExp): void {
  t.equal(response.status, status, `status ${status} (${JSON.stringify(response.body)})`);
  t.equal(response.body.error_code, code);
  if (message) t.match(response.body.error_msg, message);
}

/** A temp folder for openssl files, removed at teardown. */
export async function opensslDir(t: Test): Promise<{ dir: string; write(name: string, text: string | Uint8Array): Promise<string> }> {
  const dir = await mkdtemp(join(tmpdir(), 'pca-ca-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return {
    dir,
    async write(name, text) {
      const file = join(dir, name);
      await writeFile(file, text);
      return file;
    },
  };
}

/**
 * `openssl verify -x509_strict` of a certificate against the exported chain: the chain's last block is the
 * trust anchor, the rest are untrusted intermediates.
 */
export async function verifyWithChain(t: Test, certificatePem: string, chainPem: string, label: string): Promise<string> {
  const files = await opensslDir(t);
  const blocks = chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  const root = await files.write('root.pem', `${blocks[blocks.length - 1]}\n`);
  const leaf = await files.write('cert.pem', `${certificatePem}\n`);
  const args = ['verify', '-x509_strict', '-CAfile', root];
  if (blocks.length > 1) args.push('-untrusted', await files.write('untrusted.pem', `${blocks.slice(0, -1).join('\n')}\n`));
  const result = await runOpenssl([...args, leaf]);
  t.equal(result.code, 0, `${label}: openssl verify -x509_strict (${result.output.trim()})`);
  return result.output;
}

export async function opensslText(t: Test, certificatePem: string): Promise<string> {
  const files = await opensslDir(t);
  const result = await runOpenssl(['x509', '-noout', '-text', '-in', await files.write('c.pem', `${certificatePem}\n`)]);
  return result.output;
}
