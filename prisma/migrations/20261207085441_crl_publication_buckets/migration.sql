-- AlterTable
ALTER TABLE "certificate_authorities" ADD COLUMN     "crl_publication_buckets" TEXT[] DEFAULT ARRAY[]::TEXT[];

-- The bucket each CA last published to is one its certificates name: it keeps receiving the CA's CRLs.
UPDATE "certificate_authorities" SET "crl_publication_buckets" = ARRAY["crl_published_bucket"] WHERE "crl_published_bucket" IS NOT NULL;
