-- Workflow: Feature Versioning and export (user guide, "Treinamento" § 2).
--
-- A versioned feature set with metadata, its versions and lineage, and its export to Parquet
-- (a local directory here; an s3://bucket/prefix/ location works the same, with the [s3]
-- settings or the AWS_* environment variables). On the demo data, after workflows 01 and 02:
--
--   fstore --warehouse DIR sql -f sql/workflows/03_versioning_export.sql

-- 1. The feature set (guide: store.create_feature_set(name="fraud_detection_v1",
--    features=important_features, metadata={...})).
CREATE FEATURE SET fraud_detection_v1
  FEATURES (customer_behavior.amount_mean_30d, customer_behavior.tx_count_30d,
            customer_behavior.customer_category_te, product_features.price)
  WITH (author = 'team_ml', purpose = 'fraud_detection', model_version = '1.0')
  TAGS ('fraud', 'prod')
  DESCRIPTION 'Spending and price features for the fraud model';

SHOW FEATURE SETS;
DESCRIBE FEATURE SET fraud_detection_v1;
SELECT name, version, author, features FROM feature_set_versions('fraud_detection_v1');
SELECT * FROM fstore.lineage WHERE feature_set = 'fraud_detection_v1';

-- 2. Export (guide: store.export_feature_set(feature_set.id, format="parquet",
--    path="s3://my-bucket/features/")): the point-in-time training set of this version over
--    January's transactions, one Parquet file carrying the set's name, version and definition.
EXPORT FEATURE SET fraud_detection_v1 VERSION 1 TO './fstore-exports/' FORMAT parquet
  FOR ENTITIES 'SELECT * FROM transactions_df WHERE transaction_date < TIMESTAMP ''2024-02-01'''
  TIMESTAMP 'transaction_date';

-- Without FOR ENTITIES: each feature group's rows (one per event), one file per group.
EXPORT FEATURE SET fraud_detection_v1 TO './fstore-exports/';
