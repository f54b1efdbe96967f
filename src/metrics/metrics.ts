/**
 * Prometheus metrics (prom-client), one registry per app so that several apps in one process (tests) keep apart.
 * Services receive this object as a dependency and count after their transaction committed, so a rolled-back
 * issuance is never counted. The names are listed in the README.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { PoolStats } from '../db/database.ts';

export function createMetrics(poolStats?: () => PoolStats) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const metrics = {
    registry,
    httpRequests: new Counter({
      name: 'pca_http_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status code',
      labelNames: ['method', 'route', 'status_code'] as const,
      registers,
    }),
    httpDuration: new Histogram({
      name: 'pca_http_request_duration_seconds',
      help: 'Time to answer an HTTP request, by method and route pattern',
      labelNames: ['method', 'route'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    certificatesIssued: new Counter({
      name: 'pca_certificates_issued_total',
      help: 'Certificates (and subordinate CAs signed from a CSR) issued, by the key algorithm of the issuing CA',
      labelNames: ['ca_key_algorithm'] as const,
      registers,
    }),
    issuanceBatchRedos: new Counter({
      name: 'pca_issuance_batch_redos_total',
      help: 'Group-committed issuance batches whose write failed (a serial collision, a deadlock, a fault) and was done again, storing nothing the first time: the one-statement write done again as a transaction (statement), the transaction done again one request at a time (transaction)',
      labelNames: ['write'] as const,
      registers,
    }),
    signatureWorkerFailures: new Counter({
      name: 'pca_signature_worker_failures_total',
      help: "Failures of the worker thread that checks CSRs' signatures while the server is busy (its checks were made on the main thread; another starts after a back-off of 1 s, doubled per failure in a row up to 60 s)",
      registers,
    }),
    certificatesRevoked: new Counter({
      name: 'pca_certificates_revoked_total',
      help: 'Certificates and subordinate CAs revoked, by the key algorithm of the issuing CA',
      labelNames: ['ca_key_algorithm'] as const,
      registers,
    }),
    crlGeneration: new Histogram({
      name: 'pca_crl_generation_seconds',
      help: 'Time to build and sign a CRL',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    crlSize: new Histogram({
      name: 'pca_crl_size_bytes',
      help: 'Size of signed CRLs (DER)',
      buckets: [512, 4096, 65536, 1 << 20, 16 << 20, 64 << 20],
      registers,
    }),
    crlPublications: new Counter({
      name: 'pca_crl_publications_total',
      help: 'CRL publications to object storage: published, or failed (the crl-refresh job retries them)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    ocspResponses: new Counter({
      name: 'pca_ocsp_responses_total',
      help: 'OCSP answers: good, revoked or unknown per certificate asked, or the error status of a refused request',
      labelNames: ['status'] as const,
      registers,
    }),
    keyStoreOperations: new Counter({
      name: 'pca_key_store_operations_total',
      help: 'Key store operations (generate, sign, destroy, check), by store',
      labelNames: ['store', 'operation'] as const,
      registers,
    }),
    keyStoreErrors: new Counter({
      name: 'pca_key_store_errors_total',
      help: 'Key store operations that failed, by store',
      labelNames: ['store', 'operation'] as const,
      registers,
    }),
    jobRuns: new Counter({ name: 'pca_job_runs_total', help: 'Scheduled job runs, by job', labelNames: ['job'] as const, registers }),
    jobFailures: new Counter({
      name: 'pca_job_failures_total',
      help: 'Scheduled job runs that failed, by job',
      labelNames: ['job'] as const,
      registers,
    }),
    billingSettlementLag: new Gauge({
      name: 'pca_billing_settlement_lag_seconds',
      help: 'At the last billing settlement run: how far the furthest-behind CA lay behind the hour being settled (over 86400: a missed day)',
      registers,
    }),
  };
  new Gauge({
    name: 'pca_db_pool_connections',
    help: 'Database pool connections by state (total open, idle, requests waiting for one); Postgres only',
    labelNames: ['state'] as const,
    registers,
    collect() {
      if (!poolStats) return;
      const stats = poolStats();
      this.set({ state: 'total' }, stats.total);
      this.set({ state: 'idle' }, stats.idle);
      this.set({ state: 'waiting' }, stats.waiting);
    },
  });
  return metrics;
}

export type Metrics = ReturnType<typeof createMetrics>;
