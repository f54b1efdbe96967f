-- CreateIndex
CREATE INDEX "certificate_authorities_public_key_spki_idx" ON "certificate_authorities" USING HASH ("public_key_spki");
