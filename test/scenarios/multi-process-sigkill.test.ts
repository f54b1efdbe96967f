/**
 * Issue #12's acceptance run: 4 server processes (src/server.ts) on one Postgres, several domains each with a root
 * and a subordinate CA made over the API, and a mixed load spread over the processes (create-by-CSR issuance, some
 * with Idempotency-Key and some replayed, a few INTERMEDIATE_CA; reads; revocations; OCSP by GET and POST) for
 * MULTI_PROCESS_SECONDS (default 30), with one process killed by SIGKILL halfway. One domain meets the certificate
 * quota on the way.
 * Whatever the interleaving and the machine's speed:
 * - no answer is a 5xx, and no request to a live process fails at the connection level (only requests to the
 *   killed one may); every answer is the one the contract gives for that request;
 * - a keyed issuance cut off by the kill, retried on another process, issues at most once;
 * - a revoked certificate is answered `revoked` by another process as soon as the revoke has returned, and no OCSP
 *   request sent after a revoke returned is answered `good`; openssl verifies a sample of the OCSP answers;
 * - afterwards, read from the database: no serial twice under one issuer (and each stored serial is the one in
 *   the certificate's DER), every answered certificate stored, certificates (and CSR-issued CAs) = CERT_ISSUE
 *   records one to one, each domain's quota counter = its certificates, and the quota domain holds exactly its quota.
 * Rates and timings are printed, never asserted: the load paces itself by the clock, the assertions do not.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type * as asn1js from 'asn1js';
import pg from 'pg';
import * as pkijs from 'pkijs';
import t, { type Test } from 'tap';
import { parseCertificate } from '../../src/x509/certificate.ts';
import { DER_NULL, hexToBytes, objectIdentifier, octetString, sequence, unsignedInteger } from '../../src/x509/der-writer.ts';
import { CERT_ID_HASH_OIDS, issuerHashes, type IssuerHashes } from '../../src/x509/ocsp.ts';
import { parseSinglePem } from '../../src/x509/pem.ts';
import { KEY_ARGS, opensslCsr, scratch } from '../certificates/support.ts';
import { createTestAppOnRealPostgres, type TestApp } from '../helpers/app.ts';
import { realPostgresOrSkipFile } from '../helpers/database.ts';
import { startSharedServer, type ServerProcess } from '../helpers/server-process.ts';
import { ocspRequestDer, opensslOcsp } from '../x509/support.ts';

const SECONDS = Number(process.env.MULTI_PROCESS_SECONDS || 30);
const DURATION_MS = SECONDS * 1000;
const PROCESSES = 4;
const CLIENTS = 16;
/** The certificate quota of every domain; the quota domain is paced to meet it about two thirds into the run. */
const QUOTA = Math.max(60, 10 * SECONDS);
/** Issuance requests each other domain may send in all: below the quota, so they never meet it. */
const BUDGET = QUOTA - 10;
const DOMAINS = Array.from({ length: 3 }, () => randomBytes(16).toString('hex'));
const QUOTA_DOMAIN = DOMAINS[0]!;
/** How many OCSP answers openssl judges at most (every OCSP_SAMPLE_EVERY-th, plus the post-revoke checks). */
const OPENSSL_SAMPLES = 120;
const OCSP_SAMPLE_EVERY = 25;

const harness = await createTestAppOnRealPostgres(await realPostgresOrSkipFile(t), { env: { CERTIFICATE_QUOTA: String(QUOTA) } });
t.setTimeout(Math.max(600_000, 12 * DURATION_MS + 300_000));
const dir = await scratch('multi-process');
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pca-multi-'));
t.teardown(async () => {
  await harness.close();
  await rm(path.dirname(dir.file('x')), { recursive: true, force: true });
  await rm(dataDir, { recursive: true, force: true });
});
t.test('4 processes on one Postgres, mixed load from several domains, one SIGKILL halfway', (t) => run(t, harness, dir, dataDir));

type Scratch = Awaited<ReturnType<typeof scratch>>;

interface Domain {
  id: string;
  headers: Record<string, string>;
  subId: string;
  hashes: IssuerHashes;
  subFile: string;
  chainFile: string;
  csrs: string[];
  /** Issuance requests sent (keyed retries and replays included, since each might issue). */
  issuanceSent: number;
}

interface Issued {
  domain: Domain;
  id: string;
  serialHex?: string;
  /** When the first revoke request went out, and when one was known to have taken effect. */
  revokeSentAt?: number;
  revokedAt?: number;
}

type Outcome = { status: number; bytes: Buffer; text: string } | { cut: string };

async function run(t: Test, harness: TestApp, dir: Scratch, dataDir: string): Promise<void> {
  const servers: ServerProcess[] = await Promise.all(
    Array.from({ length: PROCESSES }, async () => {
      const server = await startSharedServer(harness, dataDir, { RATE_LIMIT_MAX: '100000000', CERTIFICATE_QUOTA: String(QUOTA) });
      t.teardown(() => server.child.kill('SIGKILL'));
      return server;
    }),
  );
  const alive = new Set(servers.map((_, index) => index));
  const victim = PROCESSES - 1;

  // Every request, by kind and outcome; the answers the contract does not allow, with what was asked.
  const tally = new Map<string, number>();
  const count = (key: string) => tally.set(key, (tally.get(key) ?? 0) + 1);
  const wrong: string[] = [];
  const fiveHundreds: string[] = [];
  const cutOnLive: string[] = [];
  const busyMs = new Map<string, number>();
  const inFlight = servers.map(() => 0);

  /** One request to process `index`; a connection failure is an outcome, not an exception. */
  async function send(index: number, kind: string, url: string, init: RequestInit): Promise<Outcome> {
    const sentAt = performance.now();
    inFlight[index]! += 1;
    try {
      const response = await fetch(`${servers[index]!.base}${url}`, init);
      const bytes = Buffer.from(await response.arrayBuffer());
      busyMs.set(kind, (busyMs.get(kind) ?? 0) + performance.now() - sentAt);
      const text = bytes.toString('utf8');
      count(`${kind} ${response.status}`);
      if (response.status >= 500) fiveHundreds.push(`${kind} on process ${index}: ${response.status} ${text.slice(0, 300)}`);
      return { status: response.status, bytes, text };
    } catch (error) {
      // The victim is out of `alive` from the moment it is killed: only those cuts are expected.
      const live = alive.has(index);
      count(`${kind} cut${live ? ' (live process)' : ''}`);
      if (live) cutOnLive.push(`${kind} on process ${index}: ${(error as Error).message}`);
      return { cut: (error as Error).message };
    } finally {
      inFlight[index]! -= 1;
    }
  }
  const pick = (except?: number): number => {
    const choices = [...alive].filter((index) => index !== except);
    return choices[Math.floor(Math.random() * choices.length)]!;
  };
  const json = (domain: Domain, body: unknown, extra: Record<string, string> = {}): RequestInit => ({
    method: 'POST',
    headers: { ...domain.headers, ...extra },
    body: JSON.stringify(body),
  });
  /** Setup calls: must succeed. */
  async function call(headers: Record<string, string>, url: string, body?: unknown): Promise<Record<string, string>> {
    const outcome = await send(pick(), 'setup', url, { method: 'POST', headers, body: JSON.stringify(body ?? {}) });
    if ('cut' in outcome || outcome.status >= 300) throw new Error(`${url}: ${JSON.stringify(outcome)}`);
    return outcome.text ? JSON.parse(outcome.text) : {};
  }

  // Per domain: a root and a subordinate over the API, CRL and OCSP switched on, two CSRs of its own.
  const DN = { country: 'CN', state: 'zhejiang', locality: 'hangzhou', organization: 'multi', organizational_unit: 'load' };
  const domains: Domain[] = await Promise.all(
    DOMAINS.map(async (id, n) => {
      const headers = { ...harness.auth(id), 'content-type': 'application/json' };
      const common = { key_algorithm: 'EC256', signature_algorithm: 'SHA256' };
      const { ca_id: rootId } = await call(headers, '/v1/private-certificate-authorities', {
        ...common,
        type: 'ROOT',
        distinguished_name: { ...DN, common_name: `multi-root-${n}` },
        validity: { type: 'YEAR', value: 10 },
      });
      const { ca_id: subId } = await call(headers, '/v1/private-certificate-authorities', {
        ...common,
        type: 'SUBORDINATE',
        issuer_id: rootId,
        distinguished_name: { ...DN, common_name: `multi-sub-${n}` },
        validity: { type: 'YEAR', value: 5 },
        path_length: 1, // so that it can issue INTERMEDIATE_CA by CSR
      });
      await call(headers, `/v1/private-certificate-authorities/${subId}/ocsp/switch`, { ocsp_switch: true });
      await call(headers, `/v1/private-certificate-authorities/${subId}/crl/enable`, { valid_days: 7 });
      const exported = await call(headers, `/v1/private-certificate-authorities/${subId}/export`);
      const subPem = exported.certificate!;
      const csrs = await Promise.all(
        [0, 1].map(async (i) => (await opensslCsr(dir, `d${n}-${i}`, [...KEY_ARGS.p256], ['-subj', `/CN=leaf-${n}-${i}.example.com`])).csr),
      );
      return {
        id,
        headers,
        subId: subId!,
        hashes: issuerHashes(parseSinglePem(subPem, 'CERTIFICATE', 'sub'), CERT_ID_HASH_OIDS.SHA1)!,
        subFile: await dir.write(`sub-${n}.pem`, subPem),
        chainFile: await dir.write(`chain-${n}.pem`, `${subPem}\n${exported.certificate_chain}\n`),
        csrs,
        issuanceSent: 0,
      };
    }),
  );

  // What the clients learn as they go.
  const issued: Issued[] = [];
  const withSerial: Issued[] = [];
  const answeredIds = new Map<string, Set<string>>(DOMAINS.map((id) => [id, new Set()]));
  const answeredCaIds = new Map<string, Set<string>>(DOMAINS.map((id) => [id, new Set()]));
  const keyAnswers = new Map<string, { domain: Domain; body: unknown; ids: Set<string> }>();
  const quotaRefusals: string[] = [];
  const unkeyedCut = new Map<string, number>(DOMAINS.map((id) => [id, 0]));
  const caCut = new Map<string, number>(DOMAINS.map((id) => [id, 0]));
  let revokedChecked = 0;
  let ocspAnswers = 0;
  const samples: Array<{ domain: Domain; request: Uint8Array; response: Uint8Array; status: string }> = [];

  const started = performance.now();
  const elapsed = () => performance.now() - started;
  /** Issuance requests a domain may have sent by now: paced over the run, unbounded for the quota domain after it. */
  const allowance = (domain: Domain) => {
    const share = Math.min(1, elapsed() / DURATION_MS);
    if (domain.id !== QUOTA_DOMAIN) return BUDGET * share;
    return share < 1 ? 1.5 * QUOTA * share : Number.POSITIVE_INFINITY;
  };

  /**
   * One create-by-CSR; a keyed one cut off by the kill is retried with its key on another process until answered.
   * An INTERMEDIATE_CA uses no quota, so it is issued even once the quota domain's quota is used up.
   */
  async function issue(
    domain: Domain,
    { key, replayOf, intermediate }: { key?: string; replayOf?: { body: unknown }; intermediate?: boolean },
  ) {
    const body = replayOf?.body ?? {
      issuer_id: domain.subId,
      csr: domain.csrs[Math.floor(Math.random() * domain.csrs.length)],
      validity: { type: 'DAY', value: 30 },
      ...(intermediate ? { type: 'INTERMEDIATE_CA', path_length: 0 } : {}),
    };
    for (;;) {
      domain.issuanceSent += 1;
      const index = pick();
      const outcome = await send(
        index,
        intermediate ? 'issue-ca' : key ? 'issue-keyed' : 'issue',
        '/v1/private-certificates/csr',
        json(domain, body, key ? { 'idempotency-key': key } : {}),
      );
      if ('cut' in outcome) {
        if (key) continue;
        const cut = intermediate ? caCut : unkeyedCut;
        cut.set(domain.id, cut.get(domain.id)! + 1);
        return;
      }
      const answer = JSON.parse(outcome.text) as Record<string, string>;
      if (outcome.status === 200 && answer.certificate_id && intermediate) {
        answeredCaIds.get(domain.id)!.add(answer.certificate_id);
      } else if (outcome.status === 200 && answer.certificate_id) {
        answeredIds.get(domain.id)!.add(answer.certificate_id);
        if (key) {
          const entry = keyAnswers.get(key) ?? { domain, body, ids: new Set<string>() };
          entry.ids.add(answer.certificate_id);
          keyAnswers.set(key, entry);
        }
        if (!replayOf) await learn({ domain, id: answer.certificate_id }, index);
      } else if (
        domain.id === QUOTA_DOMAIN &&
        !replayOf &&
        !intermediate &&
        outcome.status === 400 &&
        answer.error_code === 'PCA.00020001' &&
        answer.error_msg?.includes(`quota of ${QUOTA} is used up`)
      ) {
        quotaRefusals.push(answer.error_msg);
      } else {
        wrong.push(
          `issue (domain ${domain.id.slice(0, 6)}, key ${key}, replay ${!!replayOf}): ${outcome.status} ${outcome.text.slice(0, 300)}`,
        );
      }
      return;
    }
  }

  /** The new certificate read back through another process (its serial, for OCSP). */
  async function learn(certificate: Issued, issuedBy: number): Promise<void> {
    issued.push(certificate);
    const outcome = await send(pick(issuedBy), 'show', `/v1/private-certificates/${certificate.id}`, {
      headers: certificate.domain.headers,
    });
    if ('cut' in outcome) return;
    if (outcome.status !== 200) return void wrong.push(`show ${certificate.id}: ${outcome.status} ${outcome.text.slice(0, 300)}`);
    certificate.serialHex = (JSON.parse(outcome.text) as { serial_number: string }).serial_number;
    withSerial.push(certificate);
  }

  /** The status in an OCSP answer about `certificate` from process `index` (POST or GET), checked against what is known. */
  async function ocsp(certificate: Issued, index: number, sample: boolean): Promise<string | undefined> {
    const { domain } = certificate;
    const certId = sequence(
      sequence(objectIdentifier(CERT_ID_HASH_OIDS.SHA1), DER_NULL),
      octetString(domain.hashes.nameHash),
      octetString(domain.hashes.keyHash),
      unsignedInteger(hexToBytes(certificate.serialHex!)),
    );
    // Half without a nonce: those may be answered from a process's cache of signed answers, which must not go stale.
    const request = ocspRequestDer([certId], Math.random() < 0.5 ? randomBytes(16) : undefined);
    const sentAt = performance.now();
    const revokedBefore = certificate.revokedAt !== undefined && certificate.revokedAt < sentAt;
    const outcome =
      Math.random() < 0.5
        ? await send(index, 'ocsp-post', `/ocsp/${domain.subId}`, {
            method: 'POST',
            headers: { 'content-type': 'application/ocsp-request' },
            body: new Uint8Array(request),
          })
        : await send(index, 'ocsp-get', `/ocsp/${domain.subId}/${encodeURIComponent(Buffer.from(request).toString('base64'))}`, {});
    if ('cut' in outcome) return undefined;
    const revokeUnsent = certificate.revokeSentAt === undefined;
    if (outcome.status !== 200) return void wrong.push(`ocsp: ${outcome.status} ${outcome.text.slice(0, 200)}`);
    const response = outcome.bytes;
    const status = ocspStatus(response);
    ocspAnswers += 1;
    const expected = revokedBefore ? ['revoked'] : revokeUnsent ? ['good'] : ['good', 'revoked'];
    if (!expected.includes(status)) {
      wrong.push(
        `ocsp of ${certificate.id} (${revokedBefore ? 'revoked before' : revokeUnsent ? 'never revoked' : 'revoking'}): ${status}`,
      );
    }
    if ((sample || ocspAnswers % OCSP_SAMPLE_EVERY === 0) && samples.length < OPENSSL_SAMPLES) {
      samples.push({ domain, request, response, status });
    }
    return status;
  }

  /** Revoke through one process; once it has taken effect, another process must answer `revoked` at once. */
  async function revoke(certificate: Issued): Promise<void> {
    certificate.revokeSentAt ??= performance.now();
    let index = pick();
    let outcome = await send(
      index,
      'revoke',
      `/v1/private-certificates/${certificate.id}/revoke`,
      json(certificate.domain, { reason: 'KEY_COMPROMISE' }),
    );
    let retried = false;
    while ('cut' in outcome) {
      // Cut off by the kill: it may or may not have committed. Once more elsewhere: 204, or 400 if it had.
      retried = true;
      index = pick();
      outcome = await send(index, 'revoke-retry', `/v1/private-certificates/${certificate.id}/revoke`, json(certificate.domain, {}));
    }
    const refusedAsRevoked = retried && outcome.status === 400 && JSON.parse(outcome.text).error_code === 'PCA.00020001';
    if (outcome.status !== 204 && !refusedAsRevoked) {
      return void wrong.push(`revoke ${certificate.id}: ${outcome.status} ${outcome.text.slice(0, 300)}`);
    }
    certificate.revokedAt = performance.now();
    for (;;) {
      const status = await ocsp(certificate, pick(index), true);
      if (status === undefined) continue; // the other process was the one killed: ask a live one
      revokedChecked += 1;
      return;
    }
  }

  /** A second revoke of a revoked certificate, through any process: the contract's 400. */
  async function revokeAgain(certificate: Issued): Promise<void> {
    const outcome = await send(pick(), 'revoke-again', `/v1/private-certificates/${certificate.id}/revoke`, json(certificate.domain, {}));
    if ('cut' in outcome) return;
    if (outcome.status !== 400 || JSON.parse(outcome.text).error_code !== 'PCA.00020001') {
      wrong.push(`revoke again ${certificate.id}: ${outcome.status} ${outcome.text.slice(0, 300)}`);
    }
  }

  const randomOf = <T>(items: T[]): T | undefined => items[Math.floor(Math.random() * items.length)];

  async function step(): Promise<void> {
    const behind = domains.filter((domain) => domain.issuanceSent < allowance(domain));
    const roll = Math.random();
    // Past the run's time only the quota domain is behind: it then gets most turns, to meet its quota soon.
    if (behind.length > 0 && roll < (elapsed() < DURATION_MS ? 0.45 : 0.9)) {
      const domain = randomOf(behind)!;
      const keys = [...keyAnswers.entries()].filter(([, entry]) => entry.domain === domain);
      const replay = Math.random() < 0.1 ? randomOf(keys) : undefined;
      if (replay) return issue(domain, { key: replay[0], replayOf: replay[1] });
      if (Math.random() < 0.05) return issue(domain, { intermediate: true });
      return issue(domain, { key: Math.random() < 0.3 ? randomUUID() : undefined });
    }
    const certificate = randomOf(withSerial);
    if (!certificate) return void (await sleep(5));
    if (roll < 0.6) {
      if (certificate.revokeSentAt === undefined) return revoke(certificate);
      if (certificate.revokedAt !== undefined) return revokeAgain(certificate);
    }
    await ocsp(certificate, pick(), false);
  }

  // The load, and the kill halfway once the victim has answered something; it ends when the time is up and every
  // event the assertions need has happened (the quota met, revocations checked), however slow the machine.
  let killedAt: number | undefined;
  let inFlightAtKill = 0;
  const killer = (async () => {
    while (elapsed() < DURATION_MS / 2 || ![...tally.keys()].length) await sleep(50);
    alive.delete(victim);
    inFlightAtKill = inFlight[victim]!;
    servers[victim]!.child.kill('SIGKILL');
    killedAt = elapsed();
  })();
  const done = () => elapsed() >= DURATION_MS && killedAt !== undefined && quotaRefusals.length >= 5 && revokedChecked >= 10;
  const giveUp = 10 * DURATION_MS + 120_000;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (!done() && elapsed() < giveUp) await step();
    }),
  );
  await killer;
  const loadMs = elapsed();
  t.ok(done(), `the run reached its end conditions (${(loadMs / 1000).toFixed(1)} s)`);

  // The live processes shut down cleanly; then everything is read from the database.
  const exits = await Promise.all(servers.filter((_, index) => index !== victim).map((server) => server.stop()));
  t.same(exits, [0, 0, 0], 'the three live processes shut down cleanly after the load');

  const kinds = [...tally.entries()].sort(([a], [b]) => a.localeCompare(b));
  t.comment(
    `load ${(loadMs / 1000).toFixed(1)} s, SIGKILL of process ${victim} at ${((killedAt ?? 0) / 1000).toFixed(1)} s, load average ${os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}`,
  );
  t.comment(`requests: ${kinds.map(([kind, n]) => `${kind}: ${n}`).join(', ')}; ${inFlightAtKill} in flight to the victim at the kill`);
  const mean = (kind: string) =>
    (busyMs.get(kind)! / kinds.filter(([k]) => k.startsWith(`${kind} `) && !k.includes('cut')).reduce((n, [, c]) => n + c, 0)).toFixed(0);
  t.comment(
    `mean answer time (ms): ${[...busyMs.keys()]
      .sort()
      .map((kind) => `${kind} ${mean(kind)}`)
      .join(', ')}`,
  );
  t.same(fiveHundreds, [], 'no answer is a 5xx');
  t.same(cutOnLive, [], 'only requests to the killed process failed at the connection level');
  t.same(wrong, [], 'every answer is the one the contract gives');

  const client = new pg.Client({ connectionString: harness.database.url });
  await client.connect();
  client.on('error', () => undefined); // the database is dropped under it at teardown
  t.teardown(() => client.end());
  const rows = async <T>(sql: string, values: unknown[] = []): Promise<T[]> => (await client.query(sql, values)).rows as T[];

  t.test('no serial twice under one issuer; the stored serial is the one in the DER', async (t) => {
    const duplicates = await rows(
      `SELECT issuer_id, serial_number, count(*)::int AS n FROM (
         SELECT issuer_id, serial_number FROM certificates
         UNION ALL SELECT issuer_id, serial_number FROM certificate_authorities WHERE issuer_id IS NOT NULL) s
       GROUP BY issuer_id, serial_number HAVING count(*) > 1`,
    );
    t.same(duplicates, [], 'no duplicate (issuer, serial)');
    const certificates = await rows<{ serial_number: string; certificate_der: Buffer }>(
      'SELECT serial_number, certificate_der FROM certificates',
    );
    const mismatched = certificates.filter((row) => parseCertificate(new Uint8Array(row.certificate_der)).serialHex !== row.serial_number);
    t.equal(mismatched.length, 0, `each of ${certificates.length} certificates carries its stored serial`);
  });

  t.test('per domain: answered certificates stored, CERT_ISSUE records one to one, quota counter exact', async (t) => {
    for (const domain of domains) {
      const name = domain.id === QUOTA_DOMAIN ? 'quota domain' : `domain ${domain.id.slice(0, 6)}`;
      const stored = new Set(
        (await rows<{ id: string }>('SELECT id FROM certificates WHERE domain_id = $1 AND deleted_at IS NULL', [domain.id])).map(
          (row) => row.id,
        ),
      );
      const csrCas = (
        await rows<{ id: string }>(`SELECT id FROM certificate_authorities WHERE domain_id = $1 AND gen_mode = 'CSR'`, [domain.id])
      ).map((row) => row.id);
      const records = (
        await rows<{ resource_id: string }>(`SELECT resource_id FROM billing_records WHERE domain_id = $1 AND usage_type = 'CERT_ISSUE'`, [
          domain.id,
        ])
      ).map((row) => row.resource_id);
      const [usage] = await rows<{ used: number }>('SELECT used FROM domain_certificate_usage WHERE domain_id = $1', [domain.id]);
      const answered = answeredIds.get(domain.id)!;
      const missing = [...answered].filter((id) => !stored.has(id));
      t.same(missing, [], `${name}: all ${answered.size} answered certificates are stored`);
      const unanswered = stored.size - (answered.size - missing.length);
      t.ok(
        unanswered <= unkeyedCut.get(domain.id)!,
        `${name}: stored but never answered (${unanswered}) only among the unkeyed requests cut by the kill (${unkeyedCut.get(domain.id)})`,
      );
      const answeredCas = answeredCaIds.get(domain.id)!;
      t.same(
        [...answeredCas].filter((id) => !csrCas.includes(id)),
        [],
        `${name}: all ${answeredCas.size} answered CSR-issued CAs are stored`,
      );
      t.ok(
        csrCas.length - answeredCas.size <= caCut.get(domain.id)!,
        `${name}: CSR-issued CAs stored but never answered (${csrCas.length - answeredCas.size}) only among those cut by the kill`,
      );
      t.equal(records.length, new Set(records).size, `${name}: no resource has two CERT_ISSUE records`);
      t.same(new Set(records), new Set([...stored, ...csrCas]), `${name}: ${records.length} CERT_ISSUE records, one per certificate`);
      t.equal(usage?.used ?? 0, stored.size, `${name}: the quota counter says ${usage?.used}, ${stored.size} stored`);
      if (domain.id === QUOTA_DOMAIN) {
        t.equal(stored.size, QUOTA, `${name}: exactly the quota of ${QUOTA} issued (${quotaRefusals.length} requests refused for it)`);
      } else {
        t.ok(stored.size <= BUDGET && stored.size > 0, `${name}: ${stored.size} issued, never refused (budget ${BUDGET})`);
      }
    }
  });

  t.test('Idempotency-Key: one certificate per key, across processes and retries after the kill', async (t) => {
    const claims = new Map(
      (await rows<{ key: string; certificate_id: string }>('SELECT key, certificate_id FROM idempotency_keys')).map((row) => [
        row.key,
        row.certificate_id,
      ]),
    );
    const split = [...keyAnswers.entries()].filter(([key, entry]) => entry.ids.size !== 1 || claims.get(key) !== [...entry.ids][0]);
    t.same(split, [], `each of ${keyAnswers.size} keys answered with one certificate, the one the key remembers`);
  });

  t.test('revocations: stored for every revoke that returned, none for certificates never revoked', async (t) => {
    const revoked = new Set((await rows<{ id: string }>(`SELECT id FROM certificates WHERE status = 'REVOKED'`)).map((row) => row.id));
    const listed = new Set(
      (await rows<{ serial_number: string; issuer_id: string }>('SELECT serial_number, issuer_id FROM revocations')).map(
        (row) => `${row.issuer_id}/${row.serial_number}`,
      ),
    );
    const lost = issued.filter((c) => c.revokedAt !== undefined && !(revoked.has(c.id) && listed.has(`${c.domain.subId}/${c.serialHex}`)));
    const stray = issued.filter((c) => c.revokeSentAt === undefined && revoked.has(c.id));
    t.same(
      lost.map((c) => c.id),
      [],
      `${issued.filter((c) => c.revokedAt !== undefined).length} revoked certificates stored REVOKED and listed`,
    );
    t.same(
      stray.map((c) => c.id),
      [],
      'no certificate revoked that was not asked to be',
    );
    t.ok(revokedChecked >= 10, `${revokedChecked} revocations each answered revoked by another process right after the revoke returned`);
  });

  t.test('openssl verifies a sample of the OCSP answers: signature, nonce and status', async (t) => {
    t.ok(samples.length > 0, `${samples.length} of ${ocspAnswers} answers judged`);
    const failures: string[] = [];
    for (const [n, sample] of samples.entries()) {
      const requestFile = await dir.write(`req-${n}.der`, sample.request);
      const responseFile = await dir.write(`resp-${n}.der`, sample.response);
      const check = await opensslOcsp(responseFile, {
        issuer: sample.domain.subFile,
        caFile: sample.domain.chainFile,
        request: requestFile,
        text: true,
      });
      const text = `${check.stdout}${check.stderr}`;
      const status = /Cert Status: (\w+)/.exec(text)?.[1];
      if (!/Response verify OK/.test(text) || status !== sample.status)
        failures.push(`sample ${n} (${sample.status}): ${text.slice(-400)}`);
    }
    t.same(failures, [], 'every sampled answer verified by openssl, with the status the test read');
  });
}

/** The single response's status (good, revoked, unknown), or what went wrong instead of a successful response. */
function ocspStatus(der: Uint8Array): string {
  try {
    const response = pkijs.OCSPResponse.fromBER(new Uint8Array(der));
    const responseStatus = response.responseStatus.valueBlock.valueDec;
    if (responseStatus !== 0) return `responseStatus ${responseStatus}`;
    const basic = pkijs.BasicOCSPResponse.fromBER(response.responseBytes!.response.valueBlock.valueHexView.slice());
    const tag = (basic.tbsResponseData.responses[0]!.certStatus as asn1js.BaseBlock).idBlock.tagNumber;
    return ['good', 'revoked', 'unknown'][tag] ?? `tag ${tag}`;
  } catch (error) {
    return `unparsable: ${(error as Error).message}`;
  }
}
