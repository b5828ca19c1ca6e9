-- Coarser rollups merged m2 as Σm2 + Σ(sum²/count) − (Σsum)²/Σcount. That form
-- cancels catastrophically when the spread is small against the mean (mean 1e6,
-- spread 0.5: stddev off by 2e-4 relative), and sum² underflows float8 for
-- finite tiny readings (1e-200: "value out of range: underflow"), which failed
-- the whole refresh of a range.
--
-- merge_moments folds rows of (count, sum, m2) with PostgreSQL's own
-- float8_combine, the pairwise update of Chan et al. that var_pop's parallel
-- plans use: m2 = m2a + m2b + na·nb·(meana − meanb)²/n. It never squares a sum,
-- and as a C function its arithmetic does not raise underflow. Its state, and
-- so its result, is {count, sum, m2}: take [3] for m2. stddev_merge finishes
-- the same state as stddev_samp does (NULL below two readings).
--
-- Both are plain aggregates over built-in functions, so continuous aggregates,
-- the refresh function and the API's re-aggregation can all use them.

-- +goose Up
CREATE AGGREGATE sensorhub.merge_moments(float8[]) (
    SFUNC = pg_catalog.float8_combine,
    STYPE = float8[],
    COMBINEFUNC = pg_catalog.float8_combine,
    INITCOND = '{0,0,0}',
    PARALLEL = SAFE
);
CREATE AGGREGATE sensorhub.stddev_merge(float8[]) (
    SFUNC = pg_catalog.float8_combine,
    STYPE = float8[],
    FINALFUNC = pg_catalog.float8_stddev_samp,
    COMBINEFUNC = pg_catalog.float8_combine,
    INITCOND = '{0,0,0}',
    PARALLEL = SAFE
);
-- 00004 revoked EXECUTE on the schema's functions from PUBLIC so that only the
-- writer may change data; these only compute, and the reader needs them.
GRANT EXECUTE ON FUNCTION sensorhub.merge_moments(float8[]), sensorhub.stddev_merge(float8[]) TO PUBLIC;

-- +goose Down
DROP AGGREGATE sensorhub.stddev_merge(float8[]);
DROP AGGREGATE sensorhub.merge_moments(float8[]);
