-- CreateTable
CREATE TABLE "crl_segments" (
    "ca_id" UUID NOT NULL,
    "crl_number" BIGINT NOT NULL,
    "seq" INTEGER NOT NULL,
    "bytes" BYTEA NOT NULL,

    CONSTRAINT "crl_segments_pkey" PRIMARY KEY ("ca_id","crl_number","seq")
);
