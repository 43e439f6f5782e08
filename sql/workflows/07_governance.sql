-- Workflow: Governance (user guide, "Melhores práticas" § governance: document every
-- feature, keep data lineage, enforce access control).
--
-- On the demo data, after the earlier workflows (customer_behavior, fraud_detection_v1,
-- customer_online):
--
--   fstore --warehouse DIR sql -f sql/workflows/07_governance.sql
--   fstore --warehouse DIR catalog --out catalog/     # the browsable feature catalog
--
-- Statements run here as the local administrator; over Flight SQL each user runs them
-- with their own privileges (docs/sql-reference.md, "Access control").

-- 1. Document: what is not documented yet, then document it.
SELECT feature_group, feature FROM fstore.features
WHERE description IS NULL ORDER BY feature_group, feature;

COMMENT ON FEATURE customer_behavior.amount_sum_30d IS 'Total amount spent in the last 30 days';
COMMENT ON FEATURE customer_behavior.tx_count_30d IS 'Transactions in the last 30 days';

-- 2. Access control: a role for data scientists (read the training features), a login
--    for the fraud scoring service (online lookups only), and who holds what.
CREATE ROLE IF NOT EXISTS data_scientists;
CREATE USER ana WITH PASSWORD 'change-me-on-first-login';
GRANT data_scientists TO ana;
GRANT SELECT ON FEATURE SET fraud_detection_v1 TO data_scientists;
GRANT SELECT ON TABLE transactions TO data_scientists;
CREATE USER fraud_service WITH PASSWORD 'a-long-service-secret';
GRANT READ ONLINE ON FEATURE SET customer_online TO fraud_service;

SHOW GRANTS FOR ana;
SHOW GRANTS FOR fraud_service;
SELECT * FROM fstore.grants WHERE privilege <> 'OWNER' ORDER BY grantee, privilege;

-- 3. Lineage: where the training features come from, and where they went.
SELECT depth, from_kind, from_name, relation, to_kind, to_name
FROM lineage('fraud_detection_v1', 'upstream') ORDER BY depth, from_name;

SELECT depth, from_kind, from_name, relation, to_kind, to_name, at
FROM lineage('transactions', 'downstream') ORDER BY depth, to_name;

-- 4. Audit: who did what (administrators only; records are flushed within a second).
SELECT principal, kind, outcome, statement FROM fstore.audit
ORDER BY time DESC LIMIT 10;
