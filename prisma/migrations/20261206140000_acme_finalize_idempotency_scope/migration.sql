-- ACME finalize keys its issuance by the order id in a scope of its own (endpoint ACME finalize), out of reach of
-- REST callers. An order the release before left processing (a crash, or an answer lost after its certificate
-- was stored) keeps its certificate: its key moves to the new scope, so a finalize retried now replays it instead
-- of issuing a second certificate. Only keys of the domain's own orders still processing move (a REST caller may
-- have sent such a key to hold an order: it stays where it was, out of the way), and a row already in the new scope wins.
UPDATE "idempotency_keys" AS old
SET "endpoint" = 'ACME finalize', "key" = substr(old."key", 12)
WHERE old."endpoint" = 'POST /v1/private-certificates/csr'
  AND old."key" LIKE 'acme-order:%'
  AND EXISTS (
    SELECT 1 FROM "acme_orders" o
    WHERE o."id"::TEXT = substr(old."key", 12) AND o."domain_id" = old."domain_id" AND o."status" = 'processing'
  )
  AND NOT EXISTS (
    SELECT 1 FROM "idempotency_keys" moved
    WHERE moved."domain_id" = old."domain_id" AND moved."endpoint" = 'ACME finalize' AND moved."key" = substr(old."key", 12)
  )
