-- CreateTable
CREATE TABLE "crl_publications" (
    "ca_id" UUID NOT NULL,
    "bucket" TEXT NOT NULL,
    "crl_number" BIGINT,

    CONSTRAINT "crl_publications_pkey" PRIMARY KEY ("ca_id","bucket")
);

-- Every bucket a CA published to holds the newest CRL recorded for all of them, or none when none was recorded.
INSERT INTO "crl_publications" ("ca_id", "bucket", "crl_number")
SELECT DISTINCT "id", unnest("crl_publication_buckets"), "crl_published_number" FROM "certificate_authorities";
