-- The bench's data (bench/lists/run.ts replaces :big, :other and :retired): one domain holding :big certificates, the
-- oldest :retired under a retired CA (CA 2) and the rest under two CAs (two thirds under CA 0, one third under CA 1);
-- 4 other domains with :other each under one CA. The big domain lists 100 CAs and holds 2,000 CSR-issued
-- intermediates (CA rows that are never listed).
INSERT INTO certificate_authorities (id, domain_id, type, status, gen_mode, common_name, not_after, key_usages, created_at, updated_at)
SELECT md5('ca-' || d || '-' || n)::uuid, d, CASE WHEN n = 0 THEN 'ROOT' ELSE 'SUBORDINATE' END, 'ACTIVED', 'GENERATE',
       d || ' CA ' || n, timestamptz '2036-01-01' - n * interval '1 day', '{}', timestamptz '2025-01-01' + n * interval '1 hour', now()
  FROM unnest(ARRAY['bench-big', 'bench-other-1', 'bench-other-2', 'bench-other-3', 'bench-other-4']) AS d,
       generate_series(0, 99) AS n
 WHERE d = 'bench-big' OR n < 2;

INSERT INTO certificate_authorities (id, domain_id, type, status, gen_mode, common_name, not_after, key_usages, created_at, updated_at)
SELECT md5('csr-ca-' || n)::uuid, 'bench-big', 'SUBORDINATE', 'ACTIVED', 'CSR', 'csr intermediate ' || n,
       timestamptz '2030-01-01', '{}', timestamptz '2026-01-01' + n * interval '1 minute', now()
  FROM generate_series(1, 2000) AS n;

-- Ten certificates a second (a group-committed batch shares its created_at: the id breaks the tie), one in 50
-- revoked, one in 100 deleted; common names in no particular order; validities of 30 days to 13 months.
INSERT INTO certificates (id, domain_id, issuer_id, status, gen_mode, key_algorithm, signature_algorithm, common_name,
                          organization, serial_number, not_before, not_after, certificate_der, sealed_private_key,
                          created_at, deleted_at)
SELECT md5('cert-' || d || '-' || i)::uuid, d, md5('ca-' || d || '-' || CASE WHEN d <> 'bench-big' THEN 0 WHEN i <= :retired THEN 2 WHEN i % 3 = 0 THEN 1 ELSE 0 END)::uuid,
       CASE WHEN i % 50 = 0 THEN 'REVOKED' ELSE 'ISSUED' END, 'GENERATE', 'EC256', 'SHA256',
       'host-' || substr(md5(d || i), 1, 10) || '.example.com', 'Bench', md5('serial-' || d || '-' || i),
       created, created + (30 + i % 365) * interval '1 day', decode(repeat(md5(i::text), 20), 'hex'), repeat('k', 240),
       created, CASE WHEN i % 100 = 0 THEN created + interval '1 day' END
  FROM (SELECT d, i, timestamptz '2026-01-01' + (i / 10) * interval '1 second' AS created
          FROM unnest(ARRAY['bench-big', 'bench-other-1', 'bench-other-2', 'bench-other-3', 'bench-other-4']) AS d,
               LATERAL generate_series(1, CASE WHEN d = 'bench-big' THEN :big ELSE :other END) AS i) AS s;
