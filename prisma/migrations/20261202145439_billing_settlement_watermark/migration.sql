-- CreateTable
CREATE TABLE "ca_settlements" (
    "ca_id" UUID NOT NULL,
    "settled_until" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "ca_settlements_pkey" PRIMARY KEY ("ca_id")
);

-- Backfill from the records of the earlier settlement (a 7-day look-back on every run). Its last run reached the
-- end of the newest settled hour of any CA ("newest"), and every CA resumes there, except one that was billable
-- after its own newest record (a run failed on it): that one resumes after its own newest record, or from its first
-- stretch when it has none (no row). Hours are UTC clock hours, taken from epochs so the session time zone cannot
-- shift them. (No semicolon may appear in this file but between statements: the pg adapter splits on each.)
WITH hour_ends AS (
    SELECT "resource_id" AS ca_id,
           to_timestamp((floor(extract(epoch FROM "usage_end" - interval '1 millisecond') / 3600) + 1) * 3600) AS settled_until
    FROM "billing_records" WHERE "usage_type" = 'CA_DURATION'
), own AS (
    SELECT ca_id, max(settled_until) AS settled_until FROM hour_ends GROUP BY ca_id
), newest AS (
    SELECT max(settled_until) AS settled_until FROM hour_ends
), resume AS (
    SELECT p."ca_id",
           CASE WHEN bool_or(
                    (p."kind" = 'BILLABLE' AND p."start_at" < n.settled_until
                        AND (p."end_at" IS NULL OR p."end_at" > coalesce(o.settled_until, '-infinity')))
                    OR (p."kind" = 'PENDING_DELETION' AND p."restored_at" < n.settled_until
                        AND p."restored_at" >= coalesce(o.settled_until, '-infinity')))
                THEN o.settled_until ELSE n.settled_until END AS settled_until
    FROM "ca_usage_periods" p CROSS JOIN newest n LEFT JOIN own o ON o.ca_id = p."ca_id"
    WHERE n.settled_until IS NOT NULL
    GROUP BY p."ca_id", o.settled_until, n.settled_until
)
INSERT INTO "ca_settlements" ("ca_id", "settled_until")
SELECT "ca_id", settled_until FROM resume WHERE settled_until IS NOT NULL;
