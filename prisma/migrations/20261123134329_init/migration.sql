-- CreateTable
CREATE TABLE "domains" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "domains_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "certificate_authorities" (
    "id" UUID NOT NULL,
    "domain_id" TEXT NOT NULL,
    "type" TEXT,
    "status" TEXT NOT NULL,
    "gen_mode" TEXT,
    "path_length" INTEGER NOT NULL DEFAULT 0,
    "issuer_id" UUID,
    "key_algorithm" TEXT,
    "signature_algorithm" TEXT,
    "key_usages" TEXT[],
    "common_name" TEXT,
    "country" TEXT,
    "state" TEXT,
    "locality" TEXT,
    "organization" TEXT,
    "organizational_unit" TEXT,
    "serial_number" TEXT,
    "not_before" TIMESTAMPTZ(3),
    "not_after" TIMESTAMPTZ(3),
    "certificate_der" BYTEA,
    "imported_chain_pem" TEXT,
    "key_store" TEXT,
    "key_ref" TEXT,
    "public_key_spki" BYTEA,
    "crl_enabled" BOOLEAN NOT NULL DEFAULT false,
    "crl_name" TEXT,
    "crl_valid_days" INTEGER,
    "obs_bucket_name" TEXT,
    "crl_stale_since" TIMESTAMPTZ(3),
    "ocsp_enabled" BOOLEAN NOT NULL DEFAULT false,
    "enterprise_project_id" TEXT NOT NULL DEFAULT '0',
    "free_quota" INTEGER NOT NULL DEFAULT 0,
    "charging_mode" INTEGER NOT NULL DEFAULT 1,
    "order_id" UUID,
    "prepaid_until" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,
    "delete_time" TIMESTAMPTZ(3),
    "status_before_delete" TEXT,
    "removed_at" TIMESTAMPTZ(3),

    CONSTRAINT "certificate_authorities_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "certificates" (
    "id" UUID NOT NULL,
    "domain_id" TEXT NOT NULL,
    "issuer_id" UUID NOT NULL,
    "type" TEXT NOT NULL DEFAULT 'ENTITY_CERT',
    "status" TEXT NOT NULL,
    "gen_mode" TEXT NOT NULL,
    "path_length" INTEGER,
    "key_algorithm" TEXT NOT NULL,
    "signature_algorithm" TEXT NOT NULL,
    "common_name" TEXT,
    "country" TEXT,
    "state" TEXT,
    "locality" TEXT,
    "organization" TEXT,
    "organizational_unit" TEXT,
    "serial_number" TEXT NOT NULL,
    "not_before" TIMESTAMPTZ(3) NOT NULL,
    "not_after" TIMESTAMPTZ(3) NOT NULL,
    "certificate_der" BYTEA NOT NULL,
    "sealed_private_key" TEXT,
    "enterprise_project_id" TEXT NOT NULL DEFAULT '0',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "deleted_at" TIMESTAMPTZ(3),

    CONSTRAINT "certificates_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "revocations" (
    "issuer_id" UUID NOT NULL,
    "serial_number" TEXT NOT NULL,
    "revoked_at" TIMESTAMPTZ(3) NOT NULL,
    "reason_code" INTEGER NOT NULL,
    "not_after" TIMESTAMPTZ(3) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "revocations_pkey" PRIMARY KEY ("issuer_id","serial_number")
);

-- CreateTable
CREATE TABLE "crls" (
    "ca_id" UUID NOT NULL,
    "crl_number" BIGINT NOT NULL,
    "this_update" TIMESTAMPTZ(3) NOT NULL,
    "next_update" TIMESTAMPTZ(3) NOT NULL,
    "revoked_count" INTEGER NOT NULL,
    "der" BYTEA NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "crls_pkey" PRIMARY KEY ("ca_id","crl_number")
);

-- CreateTable
CREATE TABLE "tags" (
    "domain_id" TEXT NOT NULL,
    "resource_type" TEXT NOT NULL,
    "resource_id" UUID NOT NULL,
    "key" TEXT NOT NULL,
    "value" TEXT NOT NULL,

    CONSTRAINT "tags_pkey" PRIMARY KEY ("resource_type","resource_id","key")
);

-- CreateTable
CREATE TABLE "ca_orders" (
    "id" UUID NOT NULL,
    "domain_id" TEXT NOT NULL,
    "period_type" INTEGER NOT NULL,
    "period_num" INTEGER NOT NULL,
    "is_auto_renew" INTEGER NOT NULL,
    "is_auto_pay" INTEGER NOT NULL DEFAULT 0,
    "subscription_num" INTEGER NOT NULL,
    "promotion_info" TEXT,
    "enterprise_project_id" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ca_orders_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ca_usage_periods" (
    "id" UUID NOT NULL,
    "ca_id" UUID NOT NULL,
    "domain_id" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "start_at" TIMESTAMPTZ(3) NOT NULL,
    "end_at" TIMESTAMPTZ(3),
    "restored_at" TIMESTAMPTZ(3),

    CONSTRAINT "ca_usage_periods_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "billing_records" (
    "id" UUID NOT NULL,
    "unique_key" TEXT NOT NULL,
    "domain_id" TEXT NOT NULL,
    "resource_type" TEXT NOT NULL,
    "resource_id" UUID NOT NULL,
    "charging_mode" INTEGER NOT NULL,
    "usage_type" TEXT NOT NULL,
    "usage_start" TIMESTAMPTZ(3) NOT NULL,
    "usage_end" TIMESTAMPTZ(3) NOT NULL,
    "usage_amount" BIGINT NOT NULL,
    "unit_price" DECIMAL(20,8) NOT NULL,
    "amount" DECIMAL(28,8) NOT NULL,
    "currency" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "billing_records_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "access_keys" (
    "access" TEXT NOT NULL,
    "domain_id" TEXT NOT NULL,
    "sealed_secret" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'active',
    "description" TEXT NOT NULL DEFAULT '',
    "actions" TEXT[],
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "deleted_at" TIMESTAMPTZ(3),

    CONSTRAINT "access_keys_pkey" PRIMARY KEY ("access")
);

-- CreateTable
CREATE TABLE "audit_events" (
    "id" UUID NOT NULL,
    "domain_id" TEXT NOT NULL,
    "actor" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "resource_type" TEXT,
    "resource_id" TEXT,
    "outcome" TEXT NOT NULL,
    "request_id" TEXT NOT NULL,
    "detail" JSONB,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "audit_events_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "idempotency_keys" (
    "domain_id" TEXT NOT NULL,
    "endpoint" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "request_hash" TEXT NOT NULL,
    "certificate_id" UUID NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "idempotency_keys_pkey" PRIMARY KEY ("domain_id","endpoint","key")
);

-- CreateIndex
CREATE INDEX "certificate_authorities_domain_id_status_idx" ON "certificate_authorities"("domain_id", "status");

-- CreateIndex
CREATE INDEX "certificate_authorities_domain_id_created_at_idx" ON "certificate_authorities"("domain_id", "created_at");

-- CreateIndex
CREATE INDEX "certificate_authorities_status_delete_time_idx" ON "certificate_authorities"("status", "delete_time");

-- CreateIndex
CREATE INDEX "certificate_authorities_status_not_after_idx" ON "certificate_authorities"("status", "not_after");

-- CreateIndex
CREATE UNIQUE INDEX "certificate_authorities_issuer_id_serial_number_key" ON "certificate_authorities"("issuer_id", "serial_number");

-- CreateIndex
CREATE INDEX "certificates_domain_id_created_at_idx" ON "certificates"("domain_id", "created_at");

-- CreateIndex
CREATE INDEX "certificates_domain_id_deleted_at_idx" ON "certificates"("domain_id", "deleted_at");

-- CreateIndex
CREATE UNIQUE INDEX "certificates_issuer_id_serial_number_key" ON "certificates"("issuer_id", "serial_number");

-- CreateIndex
CREATE INDEX "revocations_issuer_id_not_after_idx" ON "revocations"("issuer_id", "not_after");

-- CreateIndex
CREATE INDEX "tags_domain_id_resource_type_idx" ON "tags"("domain_id", "resource_type");

-- CreateIndex
CREATE INDEX "ca_usage_periods_ca_id_start_at_idx" ON "ca_usage_periods"("ca_id", "start_at");

-- CreateIndex
CREATE INDEX "ca_usage_periods_end_at_idx" ON "ca_usage_periods"("end_at");

-- CreateIndex
CREATE UNIQUE INDEX "billing_records_unique_key_key" ON "billing_records"("unique_key");

-- CreateIndex
CREATE INDEX "billing_records_domain_id_usage_start_idx" ON "billing_records"("domain_id", "usage_start");

-- CreateIndex
CREATE INDEX "access_keys_domain_id_idx" ON "access_keys"("domain_id");

-- CreateIndex
CREATE INDEX "audit_events_domain_id_created_at_idx" ON "audit_events"("domain_id", "created_at");
