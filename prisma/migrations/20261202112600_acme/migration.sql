-- AlterTable
ALTER TABLE "certificate_authorities" ADD COLUMN     "acme_policy" JSONB;

-- CreateTable
CREATE TABLE "acme_eab_keys" (
    "kid" TEXT NOT NULL,
    "domain_id" TEXT NOT NULL,
    "ca_id" UUID NOT NULL,
    "sealed_hmac_key" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL,
    "revoked_at" TIMESTAMPTZ(3),

    CONSTRAINT "acme_eab_keys_pkey" PRIMARY KEY ("kid")
);

-- CreateTable
CREATE TABLE "acme_accounts" (
    "id" UUID NOT NULL,
    "domain_id" TEXT NOT NULL,
    "ca_id" UUID NOT NULL,
    "eab_kid" TEXT NOT NULL,
    "thumbprint" TEXT NOT NULL,
    "jwk" JSONB NOT NULL,
    "status" TEXT NOT NULL,
    "contact" TEXT[],
    "created_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "acme_accounts_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "acme_nonces" (
    "value" TEXT NOT NULL,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "acme_nonces_pkey" PRIMARY KEY ("value")
);

-- CreateTable
CREATE TABLE "acme_orders" (
    "id" UUID NOT NULL,
    "account_id" UUID NOT NULL,
    "domain_id" TEXT NOT NULL,
    "ca_id" UUID NOT NULL,
    "status" TEXT NOT NULL,
    "identifiers" JSONB NOT NULL,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "error" JSONB,
    "certificate_id" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "acme_orders_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "acme_authorizations" (
    "id" UUID NOT NULL,
    "order_id" UUID NOT NULL,
    "account_id" UUID NOT NULL,
    "identifier_type" TEXT NOT NULL,
    "identifier_value" TEXT NOT NULL,
    "wildcard" BOOLEAN NOT NULL DEFAULT false,
    "status" TEXT NOT NULL,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "acme_authorizations_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "acme_challenges" (
    "id" UUID NOT NULL,
    "authorization_id" UUID NOT NULL,
    "type" TEXT NOT NULL,
    "token" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "validated_at" TIMESTAMPTZ(3),
    "error" JSONB,

    CONSTRAINT "acme_challenges_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "acme_eab_keys_domain_id_ca_id_idx" ON "acme_eab_keys"("domain_id", "ca_id");

-- CreateIndex
CREATE UNIQUE INDEX "acme_accounts_ca_id_thumbprint_key" ON "acme_accounts"("ca_id", "thumbprint");

-- CreateIndex
CREATE INDEX "acme_nonces_expires_at_idx" ON "acme_nonces"("expires_at");

-- CreateIndex
CREATE INDEX "acme_orders_account_id_created_at_idx" ON "acme_orders"("account_id", "created_at");

-- CreateIndex
CREATE INDEX "acme_orders_status_expires_at_idx" ON "acme_orders"("status", "expires_at");

-- CreateIndex
CREATE INDEX "acme_authorizations_order_id_idx" ON "acme_authorizations"("order_id");

-- CreateIndex
CREATE INDEX "acme_authorizations_status_expires_at_idx" ON "acme_authorizations"("status", "expires_at");

-- CreateIndex
CREATE INDEX "acme_challenges_authorization_id_idx" ON "acme_challenges"("authorization_id");
