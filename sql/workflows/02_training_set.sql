-- Workflow: Training Dataset (user guide, "Treinamento" § 1).
--
-- Point-in-time correct features for every transaction of January 2024, from two feature
-- groups (the guide's feature_list), then a temporal train/test split. On the demo data,
-- after 01_feature_engineering.sql:
--
--   fstore --warehouse DIR demo --rows 20000
--   fstore --warehouse DIR sql -f sql/workflows/01_feature_engineering.sql
--   fstore --warehouse DIR sql -f sql/workflows/02_training_set.sql

-- 1. Product features: the price history of the demo products (a price is valid from its
--    update time until the next update).
CREATE OR REPLACE FEATURE GROUP product_features
  ENTITY (product_id)
  TIMESTAMP updated_at
  FROM products
  FEATURES (price, category)
  DESCRIPTION 'Product price and category, as of each update';

-- 2. The entity table (transactions_df in the guide): the examples to train on, each with its
--    customer, product, time and label.
CREATE OR REPLACE VIEW transactions_df AS
SELECT transaction_id, customer_id, product_id, transaction_date, conversion
FROM transactions;

-- 3. The training set (guide: store.get_training_features(feature_list=[
--    "customer_behavior:*", "product_features:price", "product_features:category"],
--    start_date="2024-01-01", end_date="2024-02-01", entity_df=transactions_df,
--    timestamp_column="transaction_date")). Window features are computed at each
--    transaction's own time; price and category are the product's as of that time.
CREATE OR REPLACE VIEW training_data AS
SELECT * FROM training_set(
  'customer_behavior:*, product_features:price, product_features:category',
  'transactions_df',
  'transaction_date',
  '2024-01-01', '2024-02-01');

SELECT * FROM training_data ORDER BY transaction_date LIMIT 10;

-- Coverage: how many examples have each feature.
SELECT count(*) AS examples,
       count(amount_mean_30d) AS with_mean_30d,
       count(price) AS with_price,
       min(transaction_date) AS first_example,
       max(transaction_date) AS last_example
FROM training_data;

-- 4. Temporal split (guide: temporal_split(training_data, test_size=0.2,
--    timestamp_column="transaction_date")): the latest 20% by time is the test set, and no
--    training example is later than any test example.
SELECT split, count(*) AS examples, min(transaction_date) AS first, max(transaction_date) AS last
FROM temporal_split('training_data', 0.2, 'transaction_date')
GROUP BY split ORDER BY split;
