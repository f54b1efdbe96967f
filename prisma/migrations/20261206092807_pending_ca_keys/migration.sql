-- CreateTable
CREATE TABLE "pending_ca_keys" (
    "key_ref" TEXT NOT NULL,
    "key_store" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "pending_ca_keys_pkey" PRIMARY KEY ("key_ref")
);

-- CreateIndex
CREATE INDEX "pending_ca_keys_created_at_idx" ON "pending_ca_keys"("created_at");
