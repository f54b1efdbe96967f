-- The certificate list (src/services/certificates/certificate-sql.ts) filters by domain (and, from the console CA
-- page, by issuer) and orders by the sort key, then id. Without an index in that order, a page sorted by not_after
-- sorted every certificate of the domain (0.3 to 0.35 s at 200,000, bench/lists/RESULTS.md). With one, a page is an
-- index scan stopped by its LIMIT (under 0.1 ms). A backward scan serves DESC.
-- Every issuance writes every index of this table, so only keys that arrive nearly in order are indexed: created_at,
-- and not_after (now plus a validity). common_name arrives in random order: its index cost a batched insert most of
-- 0.09 ms a row, a third more database time per certificate, so a page sorted by common_name stays a sort.
-- issuer_name, the joined CA name, cannot be served by an index on certificates. The CA list gets none: the CAs listed
-- in a domain are bounded by its quota (100 by default), and sorting them costs under a millisecond.
-- (No semicolon in these comments: the Postgres driver adapter splits the script at every one, comments included.)

-- DropIndex
-- Replaced by the next one, which also orders ties by id: no Incremental Sort above the scan, and no more writes.
DROP INDEX "certificates_domain_id_created_at_idx";

-- CreateIndex
-- The default sort (create_time), with or without a status or name filter.
CREATE INDEX "certificates_domain_id_created_at_id_idx" ON "certificates"("domain_id", "created_at", "id");

-- CreateIndex
-- sort_key=not_after, which also bounds status=ISSUED/EXPIRED (not_after against now) in the index condition.
CREATE INDEX "certificates_domain_id_not_after_id_idx" ON "certificates"("domain_id", "not_after", "id");

-- CreateIndex
-- issuer_id with the default sort (the console CA page). Without it the list of a CA whose certificates are few or
-- old (a retired CA) read the index of the domain back to them (0.6 s in the bench, 0.05 ms with it). The other sort
-- keys with issuer_id use the domain indexes above and filter, which reads at most the share of the CA.
CREATE INDEX "certificates_issuer_id_created_at_id_idx" ON "certificates"("issuer_id", "created_at", "id");
