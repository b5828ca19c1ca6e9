-- Materializes the rollup_1h and rollup_1d that 00011 created empty, finest
-- first, so the API reads them instead of aggregating rollup_1m at query time.
-- TimescaleDB refreshes only outside a transaction block, hence NO TRANSACTION;
-- on a large database this takes a while (it reads every row of rollup_1m
-- once; in one pass, see 00011). Interrupted, it is simply run again, and until it finishes answers
-- stay exact through real-time aggregation.

-- +goose NO TRANSACTION
-- +goose Up
CALL refresh_continuous_aggregate('sensorhub.rollup_1h', NULL, NULL, options => '{"buckets_per_batch": 0}');
CALL refresh_continuous_aggregate('sensorhub.rollup_1d', NULL, NULL, options => '{"buckets_per_batch": 0}');

-- +goose Down
SELECT 1;
