-- Before this release, deleting, revoking or releasing a CA disabled only its direct subordinates: CAs further down
-- were left ACTIVED, issuing under a deleted, removed or revoked CA. They are disabled now, as the service now
-- disables a whole subtree. CSR-issued intermediates (whose keys the service does not hold) are certificates, not
-- issuers here, and are left as they are.
WITH RECURSIVE unusable(id) AS (
  SELECT ca.id FROM certificate_authorities ca
   WHERE ca.status = 'DELETED'
      OR ca.removed_at IS NOT NULL
      OR EXISTS (
        SELECT 1 FROM revocations r
         WHERE r.issuer_id = ca.issuer_id
           AND r.serial_number = (
             -- The revocations table holds serials canonical: lower case, even length, no leading zero octets.
             SELECT CASE WHEN stripped = '' THEN '00' ELSE stripped END
               FROM (SELECT regexp_replace(CASE WHEN length(lowered) % 2 = 1 THEN '0' || lowered ELSE lowered END, '^(00)+', '') AS stripped
                       FROM (SELECT lower(ca.serial_number) AS lowered) AS l) AS s))
  UNION
  SELECT child.id FROM certificate_authorities child JOIN unusable parent ON child.issuer_id = parent.id
)
UPDATE certificate_authorities
   SET status = 'DISABLED'
 WHERE id IN (SELECT id FROM unusable)
   AND status = 'ACTIVED'
   AND gen_mode IS DISTINCT FROM 'CSR';
