-- Workflow: Feature Engineering (user guide, "Preparação de Dados" § 1).
--
-- The customer_behavior feature group over the demo transactions: 30-day mean, sum and count
-- of the amount per customer (WindowAggregator(window_size="30d", aggregations=["mean",
-- "sum", "count"])), and the customer category target-encoded against conversion
-- (Encoder(method="target_encoding")). On the demo data:
--
--   fstore --warehouse DIR demo --rows 20000
--   fstore --warehouse DIR sql -f sql/workflows/01_feature_engineering.sql

-- 1. The group: one row per transaction, with the customer's aggregates over the 30 days up
--    to and including that transaction's time (the window (t - 30 days, t]).
CREATE OR REPLACE FEATURE GROUP customer_behavior
  ENTITY (customer_id)
  TIMESTAMP transaction_date
  FROM transactions
  FEATURES (
    amount_mean_30d  = mean(amount) WINDOW '30 days',
    amount_sum_30d   = sum(amount)  WINDOW '30 days',
    tx_count_30d     = count(*)     WINDOW '30 days',
    amount,
    customer_category
  )
  TTL '90 days'
  DESCRIPTION 'Customer spending over the last 30 days'
  TAGS ('team:ml', 'pii:no')
  OWNER 'team_ml';

-- 2. Target encoding of the category: each row sees only the conversions of earlier rows, so
--    the label of its own transaction (or a later one) cannot leak into it.
ALTER FEATURE GROUP customer_behavior
  ADD TRANSFORMATION customer_category USING target_encoding(target => conversion);

COMMENT ON FEATURE customer_behavior.amount_mean_30d IS 'Mean transaction amount over 30 days';

-- 3. What was defined.
DESCRIBE FEATURE GROUP customer_behavior;

-- 4. The features of a few customers, in time order.
SELECT customer_id, transaction_date, amount, amount_mean_30d, amount_sum_30d, tx_count_30d,
       customer_category, customer_category_te
FROM customer_behavior
WHERE customer_id IN (SELECT customer_id FROM transactions ORDER BY customer_id LIMIT 3)
ORDER BY customer_id, transaction_date
LIMIT 20;

-- 5. A time range prunes the source (the window's lower edge is moved back 30 days for it).
SELECT date_trunc('month', transaction_date) AS month,
       count(*) AS transactions,
       round(avg(amount_mean_30d), 2) AS avg_mean_30d,
       round(avg(tx_count_30d), 2) AS avg_count_30d
FROM customer_behavior
WHERE transaction_date >= TIMESTAMP '2024-03-01'
GROUP BY 1 ORDER BY 1;
