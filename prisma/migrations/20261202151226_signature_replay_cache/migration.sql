-- CreateTable
CREATE TABLE "seen_signatures" (
    "fingerprint" BYTEA NOT NULL,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "seen_signatures_pkey" PRIMARY KEY ("fingerprint")
);

-- CreateIndex
CREATE INDEX "seen_signatures_expires_at_idx" ON "seen_signatures"("expires_at");
