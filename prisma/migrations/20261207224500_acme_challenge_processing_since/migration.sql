-- When the request validating a challenge claimed it (pending -> processing). A validator that dies before writing
-- the outcome (a Lambda timeout, a killed worker) leaves the challenge processing: once the claim is this old, the
-- client's next POST or poll validates it again (acme-service.ts, CHALLENGE_CLAIM_STALE_MS).
-- AlterTable
ALTER TABLE "acme_challenges" ADD COLUMN "processing_since" TIMESTAMPTZ(3);
