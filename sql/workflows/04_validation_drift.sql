-- Workflow: Validation and drift (user guide, "Validação" § 1 and § 2).
--
-- Quality checks on the features of a feature set, then drift of March 2024 against a
-- January baseline. On the demo data, after 01_feature_engineering.sql and
-- 02_training_set.sql (customer_behavior, product_features, transactions_df):
--
--   fstore --warehouse DIR demo --rows 20000
--   fstore --warehouse DIR sql -f sql/workflows/01_feature_engineering.sql
--   fstore --warehouse DIR sql -f sql/workflows/02_training_set.sql
--   fstore --warehouse DIR sql -f sql/workflows/04_validation_drift.sql

-- 1. The feature set the checks are about (guide: fraud_detection_v1). It pins the group
--    definitions, so its validation and drift read exactly the features it serves.
CREATE FEATURE SET fraud_detection_v1
  FEATURES (customer_behavior.*, product_features.price, product_features.category)
  WITH (author = 'team_ml', purpose = 'fraud_detection', model_version = '1.0')
  TAGS ('fraud', 'prod')
  DESCRIPTION 'Customer spending and product price, for fraud detection';

-- 2. Expectations (guide: validator.add_expectation("purchase_amount", {min_value: 0,
--    max_value: 10000, null_percentage: 0.01})). The demo's purchase amount is `amount`
--    (a bare name is fine while only one group has it).
CREATE EXPECTATION ON FEATURE amount
  (min_value = 0, max_value = 10000, null_percentage = 0.01);
CREATE EXPECTATION ON FEATURE customer_behavior.customer_category
  (allowed_values = ('bronze', 'silver', 'gold', 'platinum'), null_percentage = 0);
CREATE EXPECTATION ON FEATURE customer_behavior.tx_count_30d (min_value = 1);
CREATE EXPECTATION ON FEATURE product_features.price (min_value = 0, null_percentage = 0);
CREATE EXPECTATION ON FEATURE product_features.category
  (allowed_values = ('books', 'electronics', 'fashion', 'grocery', 'home', 'sports'));

SELECT * FROM fstore.expectations ORDER BY feature_group, feature, expectation;

-- 3. Validate (guide: validator.validate_features(feature_set.id)): every expectation of
--    every feature, computed in one pass per feature group.
SELECT * FROM validate('fraud_detection_v1');

-- The same for one month only (start inclusive, end exclusive), and only the failures.
SELECT feature, expectation, expected, observed, rows_checked
FROM validate('fraud_detection_v1', '2024-03-01', '2024-04-01')
WHERE NOT passed;

-- 4. Drift baseline (guide: monitor.set_baseline(feature_set.id, start_date="2024-01-01",
--    end_date="2024-01-31")): January, stored as an exact summary of each feature's values.
SET DRIFT BASELINE FOR FEATURE SET fraud_detection_v1 FROM '2024-01-01' TO '2024-01-31';

SELECT * FROM fstore.drift_baselines ORDER BY feature;

-- 5. The data to check (guide: current_data=test_df): the set's features for every March
--    transaction, point-in-time correct.
CREATE OR REPLACE VIEW test_df AS
SELECT * FROM training_set('fraud_detection_v1', 'transactions_df', 'transaction_date',
                           '2024-03-01', '2024-04-01');

-- 6. Drift (guide: monitor.check_drift(current_data=test_df, method="ks_test",
--    threshold=0.05)), then the other methods. On the demo data the amounts are stable
--    (KS p ≈ 0.5, PSI ≈ 0.003), while the 30-day window features drift: the data starts on
--    2024-01-01, so January's windows are still filling up (tx_count_30d is smaller) — a
--    baseline should start a full window after the data does.
SELECT * FROM check_drift('fraud_detection_v1', 'test_df', 'ks_test', 0.05);
SELECT * FROM check_drift('fraud_detection_v1', 'test_df', 'psi', 0.2);
SELECT * FROM check_drift('fraud_detection_v1', 'test_df', 'chi2', 0.05)
WHERE feature IN ('customer_behavior.customer_category', 'product_features.category');
SELECT * FROM check_drift('fraud_detection_v1', 'test_df', 'wasserstein', 5.0)
WHERE feature = 'customer_behavior.amount';
