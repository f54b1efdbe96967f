-- When the request validating a challenge claimed it (pending -> processing). A validator that dies before writing
-- the outcome (a Lambda timeout, a killed worker) leaves the challenge processing: once the claim is this old, the
-- client's next POST or poll validates it again (acme-service.ts, CHALLENGE_CLAIM_STALE_MS).
-- AlterTable
ALTER TABLE "acme_challenges" ADD COLUMN "processing_since" TIMESTAMPTZ(3);

-- Challenges and orders already processing, claimed before their column existed, count as claimed now: they are
-- taken again once stale rather than never.
UPDATE "acme_challenges" SET "processing_since" = now() WHERE "status" = 'processing';
UPDATE "acme_orders" SET "processing_since" = now() WHERE "status" = 'processing' AND "processing_since" IS NULL;
