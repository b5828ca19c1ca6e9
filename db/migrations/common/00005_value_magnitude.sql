-- Rollups keep sums of squares so stddev re-aggregates exactly; values near
-- float64's limit would overflow them and leave a range that never refreshes.
-- Ingest rejects such values with a reason; this keeps other writers honest.

-- +goose Up
ALTER TABLE sensorhub.readings
    ADD CONSTRAINT readings_value_magnitude CHECK (abs(value_num) <= 1e100);

-- +goose Down
ALTER TABLE sensorhub.readings DROP CONSTRAINT readings_value_magnitude;
