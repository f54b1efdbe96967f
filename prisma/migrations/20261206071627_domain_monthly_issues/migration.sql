-- CreateTable
CREATE TABLE "domain_monthly_issues" (
    "domain_id" TEXT NOT NULL,
    "month" TIMESTAMPTZ(3) NOT NULL,
    "issued" INTEGER NOT NULL,

    CONSTRAINT "domain_monthly_issues_pkey" PRIMARY KEY ("domain_id","month")
);

-- Backfill: every domain's CERT_ISSUE records per UTC month, the count tiered prices were taken from until now.
INSERT INTO "domain_monthly_issues" ("domain_id", "month", "issued")
SELECT "domain_id", date_trunc('month', "usage_start" AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', count(*)::int
FROM "billing_records" WHERE "usage_type" = 'CERT_ISSUE' GROUP BY 1, 2;
