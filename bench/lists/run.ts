/**
 * The certificate and CA lists of a large domain, before and after migration 20261207184944 (the certificate list's
 * sort indexes), in one run on one database: EXPLAIN ANALYZE of the list's own statement (certificate-sql.ts) for
 * each sort key, with and without the issuer filter, first page and deep offsets; then what the indexes cost the
 * issuing path: certificate rows written with the hot path's statement (bulk-insert.ts) in batches of 100, as group
 * commit writes them, and one at a time.
 *
 * Run: DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres node scripts/bench.mjs bench/lists/run.ts [certificates]
 * (the server's admin database: the bench creates and drops its own). Default: 200,000 certificates in the big
 * domain, 25,000 in each of 4 others. Data: bench/lists/seed.sql. Figures: bench/lists/RESULTS.md.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { insertRows } from '../../src/db/bulk-insert.ts';
import { applyMigrations, readMigrationList } from '../../src/db/migrate.ts';
import type { CertificateSortKey, ListCertificatesQuery } from '../../src/services/certificates/certificate-input.ts';
import { listCertificatesSql } from '../../src/services/certificates/certificate-sql.ts';

const MIGRATION = '20261207184944_certificate_list_sort_indexes';
const big = Number(process.argv[2] ?? 200_000);
const other = Math.max(1, Math.round(big / 8));
const retired = Math.max(1, Math.round(big / 133));
const REPEATS = 5;
const adminUrl = process.env.DATABASE_URL;
if (!adminUrl) {
  console.error('set DATABASE_URL to a Postgres server (its admin database); see the header of this file');
  process.exit(2);
}

const DOMAIN = 'bench-big';
const client = async (url: string) => {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return c;
};
const admin = await client(adminUrl);
const name = `lists_bench_${randomBytes(6).toString('hex')}`;
await admin.query(`CREATE DATABASE "${name}"`);
const url = new URL(adminUrl);
url.pathname = `/${name}`;
const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-lists-'));

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Relation Name'?: string;
  Plans?: PlanNode[];
}

/** The plan's sorts and its reads of the listed table (not the issuers' lookups by id), e.g. `Index Scan Backward idx`. */
function planSummary(root: PlanNode): string {
  const parts: string[] = [];
  const walk = (node: PlanNode) => {
    const type = node['Node Type'];
    if (type.includes('Sort')) parts.push(type);
    if (node['Relation Name'] && !node['Index Name']?.endsWith('_pkey'))
      parts.push(`${type} ${node['Index Name'] ?? node['Relation Name']}`);
    for (const child of node.Plans ?? []) walk(child);
  };
  walk(root);
  return parts.join(' > ');
}

interface Case {
  label: string;
  sql: { text: string; values: unknown[] };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function explain(db: pg.Client, sql: Case['sql']): Promise<{ ms: number; plan: string }> {
  const times: number[] = [];
  let plan = '';
  for (let run = 0; run <= REPEATS; run++) {
    const { rows } = await db.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${sql.text}`, sql.values);
    const [result] = rows[0]['QUERY PLAN'] as [{ Plan: PlanNode; 'Execution Time': number }];
    plan = planSummary(result.Plan);
    if (run > 0) times.push(result['Execution Time']); // run 0 warms the cache
  }
  return { ms: median(times), plan };
}

const caId = (n: number) => `md5('ca-${DOMAIN}-${n}')::uuid`;

async function cases(db: pg.Client): Promise<Case[]> {
  const ids = async (n: number) => (await db.query(`SELECT ${caId(n)} AS id`)).rows[0].id as string;
  const issuers: [string, string | undefined][] = [
    ['all', undefined],
    ['CA 0 (2/3)', await ids(0)],
    ['retired CA', await ids(2)],
  ];
  const now = new Date('2026-12-07T00:00:00Z');
  const list: Case[] = [];
  const add = (label: string, query: Partial<ListCertificatesQuery>) => {
    const { page } = listCertificatesSql(DOMAIN, { limit: 20, offset: 0, sort_dir: 'DESC', ...query } as ListCertificatesQuery, now);
    list.push({ label: `cert ${label}`, sql: { text: page.text, values: page.values } });
  };
  for (const [issuerLabel, issuer_id] of issuers) {
    for (const sort_key of ['create_time', 'common_name', 'not_after', 'issuer_name'] as CertificateSortKey[]) {
      add(`${sort_key} DESC, ${issuerLabel}`, { sort_key, issuer_id });
    }
  }
  add('create_time ASC, all', { sort_key: 'create_time', sort_dir: 'ASC' });
  add('common_name ASC, all', { sort_key: 'common_name', sort_dir: 'ASC' });
  add('create_time DESC, status=ISSUED', { status: 'ISSUED' });
  add('not_after DESC, status=ISSUED', { sort_key: 'not_after', status: 'ISSUED' });
  add('create_time DESC, name=host-a', { name: 'host-a' });
  for (const offset of [1_000, 10_000, Math.floor(big / 2)]) {
    for (const sort_key of ['create_time', 'common_name', 'not_after'] as CertificateSortKey[]) {
      add(`${sort_key} DESC, all, offset ${offset}`, { sort_key, offset });
    }
  }
  const { count } = listCertificatesSql(DOMAIN, { limit: 20, offset: 0 } as ListCertificatesQuery, now);
  list.push({ label: 'cert count (total), all', sql: { text: count.text, values: count.values } });
  // The CA list as Prisma writes it (ca-queries.ts: existingCa, NOT_CSR_ISSUED, NULLS LAST but for created_at).
  for (const order of ['created_at DESC', 'common_name DESC NULLS LAST', 'type ASC NULLS LAST', 'not_after DESC NULLS LAST']) {
    list.push({
      label: `CA list ${order.split(' ')[0]}`,
      sql: {
        text: `SELECT * FROM certificate_authorities WHERE domain_id = $1 AND removed_at IS NULL
                 AND (delete_time IS NULL OR delete_time > $2) AND (prepaid_until IS NULL OR prepaid_until > $2)
                 AND (gen_mode IS NULL OR gen_mode <> 'CSR')
               ORDER BY ${order}, id ${order.includes('ASC') ? 'ASC' : 'DESC'} LIMIT 10 OFFSET 0`,
        values: [DOMAIN, now],
      },
    });
  }
  return list;
}

/** `rows` certificate rows of the big domain written as issuance writes them, `batch` to a statement; ms. */
async function timeInserts(db: pg.Client, rows: number, batch: number, issuerId: string): Promise<number> {
  const runner = async <Row>(statement: { name: string; text: string }, values: unknown[]) =>
    (await db.query({ name: statement.name, text: statement.text, values })).rows as Row[];
  const now = new Date();
  const made = () => ({
    id: randomUUID(),
    domainId: DOMAIN,
    issuerId,
    type: 'ENTITY_CERT',
    status: 'ISSUED',
    genMode: 'GENERATE',
    keyAlgorithm: 'EC256',
    signatureAlgorithm: 'SHA256',
    commonName: `svc-${randomBytes(5).toString('hex')}.example.com`,
    organization: 'Bench',
    serialNumber: randomBytes(16).toString('hex'),
    notBefore: now,
    notAfter: new Date(now.getTime() + 90 * 86_400_000),
    certificateDer: new Uint8Array(randomBytes(520)),
    sealedPrivateKey: randomBytes(180).toString('base64'),
    enterpriseProjectId: '0',
    createdAt: now,
  });
  const began = performance.now();
  for (let done = 0; done < rows; done += batch) {
    await insertRows(runner, ['certificates', Array.from({ length: Math.min(batch, rows - done) }, made)]);
  }
  const ms = performance.now() - began;
  await db.query(`DELETE FROM certificates WHERE domain_id = $1 AND created_at = $2`, [DOMAIN, now]);
  await db.query('VACUUM certificates');
  return ms;
}

async function plansOf(db: pg.Client, list: Case[]) {
  const plans = new Map<string, { ms: number; plan: string }>();
  for (const c of list) plans.set(c.label, await explain(db, c.sql));
  return plans;
}

/** The index set before the migration, from the set after it. */
const UNDO = [
  'DROP INDEX "certificates_domain_id_created_at_id_idx"',
  'DROP INDEX "certificates_domain_id_not_after_id_idx"',
  'DROP INDEX "certificates_issuer_id_created_at_id_idx"',
  'CREATE INDEX "certificates_domain_id_created_at_idx" ON "certificates"("domain_id", "created_at")',
];

/** The migration's statements (its comments hold no semicolon, as the driver adapter requires). */
async function redoStatements(): Promise<string[]> {
  const script = await readFile(path.join('prisma/migrations', MIGRATION, 'migration.sql'), 'utf8');
  return script
    .split(';')
    .map((statement) => statement.replace(/^--.*$/gm, '').trim())
    .filter(Boolean);
}

/**
 * Issuance inserts with and without the migration's indexes, alternated round by round on the same table (the
 * migration undone, then redone), so that a load that comes and goes on a shared machine falls on both.
 */
async function insertRounds(db: pg.Client, rounds: number) {
  const issuerId = (await db.query(`SELECT ${caId(0)} AS id`)).rows[0].id as string;
  const redo = await redoStatements();
  const result = {
    before: { batched: [] as number[], single: [] as number[] },
    after: { batched: [] as number[], single: [] as number[] },
  };
  for (let round = 0; round < rounds; round++) {
    for (const [side, statements] of [
      ['before', UNDO],
      ['after', redo],
    ] as const) {
      for (const statement of statements) await db.query(statement);
      result[side].batched.push(await timeInserts(db, 50_000, 100, issuerId));
      result[side].single.push(await timeInserts(db, 5_000, 1, issuerId));
    }
  }
  return result;
}

let db: pg.Client | undefined;
try {
  const before = path.join(dir, 'migrations');
  await cp('prisma/migrations/migration_lock.toml', path.join(before, 'migration_lock.toml'));
  const names = (await readMigrationList('prisma/migrations')).migrationDirectories.map((d) => d.path);
  for (const n of names.filter((n) => n < MIGRATION))
    await cp(path.join('prisma/migrations', n), path.join(before, n), { recursive: true });
  await applyMigrations({ url: url.toString() }, before);
  db = await client(url.toString());
  const seedSql = (await readFile('bench/lists/seed.sql', 'utf8')).replace(/:(big|other|retired)\b/g, (_, key: string) =>
    String({ big, other, retired }[key]),
  );
  const seeded = performance.now();
  await db.query(seedSql);
  await db.query('VACUUM ANALYZE');
  console.error(`seeded ${big} + 4 x ${other} certificates in ${((performance.now() - seeded) / 1000).toFixed(1)} s`);
  const list = await cases(db);
  const was = await plansOf(db, list);
  const migrated = performance.now();
  await applyMigrations({ url: url.toString() });
  const migrateMs = performance.now() - migrated;
  await db.query('ANALYZE certificates');
  const now = await plansOf(db, list);
  const inserts = await insertRounds(db, 3);
  await db.end();

  const ms = (value: number) => (value < 10 ? value.toFixed(2) : value.toFixed(0));
  console.log(
    `\n${big} certificates in ${DOMAIN} (retired CA: ${retired}), 4 x ${other} elsewhere; median of ${REPEATS} EXPLAIN ANALYZE, ms`,
  );
  console.log(`migration ${MIGRATION} applied in ${(migrateMs / 1000).toFixed(2)} s (index builds over ${big + 4 * other} rows)\n`);
  const width = Math.max(...list.map((c) => c.label.length));
  console.log(
    `${'case'.padEnd(width)}  ${'before'.padStart(8)}  ${'after'.padStart(8)}  ${'ratio'.padStart(7)}  plan before => plan after`,
  );
  for (const c of list) {
    const a = was.get(c.label)!;
    const b = now.get(c.label)!;
    console.log(
      `${c.label.padEnd(width)}  ${ms(a.ms).padStart(8)}  ${ms(b.ms).padStart(8)}  ${`${(a.ms / b.ms).toFixed(1)}x`.padStart(7)}  ${a.plan} => ${b.plan}`,
    );
  }
  const rate = (rows: number, values: number[]) => values.map((v) => Math.round((rows / v) * 1000));
  const line = (label: string, rows: number, key: 'batched' | 'single') => {
    const b = rate(rows, inserts.before[key]);
    const a = rate(rows, inserts.after[key]);
    const change = median(a) / median(b) - 1;
    console.log(`${label.padEnd(34)} ${b.join(', ').padEnd(22)} ${a.join(', ').padEnd(22)} ${(change * 100).toFixed(0).padStart(4)} %`);
  };
  console.log('\nissuance inserts, rows/s by round    before (4 indexes)     after (6 indexes)      medians');
  line('50,000 rows, statements of 100', 50_000, 'batched');
  line('5,000 rows, one a statement', 5_000, 'single');
} finally {
  await db?.end().catch(() => {});
  await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await admin.end();
  await rm(dir, { recursive: true, force: true });
}
// The WASM schema engine keeps the event loop busy for a while after its work: leave explicitly.
process.exit(0);
