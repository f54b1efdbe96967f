-- DropIndex
DROP INDEX "tags_domain_id_resource_type_idx";

-- CreateIndex
CREATE INDEX "tags_domain_id_resource_type_key_value_idx" ON "tags"("domain_id", "resource_type", "key", "value");
