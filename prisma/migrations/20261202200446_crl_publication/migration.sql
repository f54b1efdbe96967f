-- AlterTable
ALTER TABLE "certificate_authorities" ADD COLUMN     "crl_published_bucket" TEXT,
ADD COLUMN     "crl_published_number" BIGINT;
