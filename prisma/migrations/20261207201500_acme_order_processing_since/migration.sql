-- When a finalize claimed the order (ready -> processing). A finalize that dies before its issuing commit (a Lambda
-- timeout, a killed worker) leaves the order processing with nothing issued: once the claim is this old, another
-- finalize may claim it again (acme-service.ts, ORDER_CLAIM_STALE_MS).
-- AlterTable
ALTER TABLE "acme_orders" ADD COLUMN "processing_since" TIMESTAMPTZ(3);
