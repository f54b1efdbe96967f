-- AlterTable
ALTER TABLE "certificate_authorities" ADD COLUMN     "issuance_policy" JSONB,
ADD COLUMN     "name_constraints" JSONB;
