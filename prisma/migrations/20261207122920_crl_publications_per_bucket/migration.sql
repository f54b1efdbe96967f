-- CreateTable
CREATE TABLE "crl_publications" (
    "ca_id" UUID NOT NULL,
    "bucket" TEXT NOT NULL,
    "crl_number" BIGINT NOT NULL,

    CONSTRAINT "crl_publications_pkey" PRIMARY KEY ("ca_id","bucket")
);

-- No rows carried over: crl_published_number also stood for a bucket that refused the CRL (it was added to
-- crl_publication_buckets all the same), so no bucket can be known to hold it. Each CA's buckets get its newest CRL
-- once more, then only what they lack.
