-- CreateTable
CREATE TABLE "domain_certificate_usage" (
    "domain_id" TEXT NOT NULL,
    "used" INTEGER NOT NULL,

    CONSTRAINT "domain_certificate_usage_pkey" PRIMARY KEY ("domain_id")
);

-- Backfill: the domains' certificates not deleted.
INSERT INTO "domain_certificate_usage" ("domain_id", "used")
SELECT "domain_id", count(*)::int FROM "certificates" WHERE "deleted_at" IS NULL GROUP BY "domain_id";
