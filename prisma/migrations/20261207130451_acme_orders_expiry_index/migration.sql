-- CreateIndex
CREATE INDEX "acme_orders_expires_at_idx" ON "acme_orders"("expires_at");
