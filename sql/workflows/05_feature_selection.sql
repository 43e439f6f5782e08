-- Workflow: Feature Selection (user guide, "Preparação de Dados" § 2).
--
-- Which features of customer behaviour carry information about conversion, and which ones
-- say the same thing twice? On the demo data:
--
--   fstore --warehouse DIR demo --rows 20000
--   fstore --warehouse DIR sql -f sql/workflows/05_feature_selection.sql

-- 1. The features: the 30-day aggregates of workflow 01, plain columns of the transactions and
--    per-row expressions. The label (conversion) is not a feature: it stays a column of the
--    transactions, and selection reads it along with the group's rows (its source's events).
CREATE OR REPLACE FEATURE GROUP customer_behavior
  ENTITY (customer_id)
  TIMESTAMP transaction_date
  FROM transactions
  FEATURES (
    amount_mean_30d = mean(amount) WINDOW '30 days',
    amount_sum_30d  = sum(amount)  WINDOW '30 days',
    tx_count_30d    = count(*)     WINDOW '30 days',
    amount,
    customer_category,
    amount_log   = ln(amount + 1),
    amount_gt_100 = amount > 100,
    is_weekend   = date_part('dow', transaction_date) IN (0, 6),
    hour_of_day  = date_part('hour', transaction_date)
  )
  DESCRIPTION 'Per-transaction customer behaviour, for feature selection';

-- 2. Correlation analysis (guide: selector.correlation_analysis(feature_group=…)): every pair
--    of numeric features — entity key and timestamp excluded — with Pearson's r, then the
--    pairs ordered by the strength of their rank correlation.
SELECT * FROM feature_correlation('customer_behavior');

SELECT feature_a, feature_b, round(correlation, 4) AS spearman
FROM feature_correlation('customer_behavior', 'spearman')
ORDER BY abs(correlation) DESC NULLS LAST;

-- 3. Feature importance (guide: selector.select_features(method="mutual_info",
--    target="conversion", top_k=10)): mutual information with conversion, best first.
SELECT * FROM select_features('customer_behavior', 'conversion', 'mutual_info', 10);

-- 4. The same question by other criteria, and on a slice of the data given as a query. A
--    query's columns are all candidates (it has no entity key or timestamp to leave out), so
--    it selects the features it means.
SELECT * FROM select_features('customer_behavior', 'conversion', 'chi2', 10);
SELECT * FROM select_features('customer_behavior', 'conversion', 'correlation', 10);
SELECT * FROM select_features(
  'SELECT amount, ln(amount + 1) AS amount_log, customer_category, conversion
   FROM transactions WHERE customer_category IN (''bronze'', ''silver'')',
  'conversion', 'mutual_info', 5);

-- 5. The selection defines a feature set: the five most informative features.
CREATE FEATURE SET conversion_top5 FEATURES FROM (
  SELECT 'customer_behavior' AS feature_group, feature
  FROM select_features('customer_behavior', 'conversion', 'mutual_info', 5));
DESCRIBE FEATURE SET conversion_top5;
