package testenv

import (
	"regexp"
	"strings"
)

// Metrics are the series the services expose with their label names: the
// contract that the dashboards and alerting rules are written against.
// Histograms are listed by their base name. The API serves its metrics on
// /metrics; ingest serves its live counters (the _total ones, and no
// others) on -metrics-addr while it runs, and pushes the last run's values
// (last_run_*, and the last success) to the Pushgateway at its end. The
// write service (ingest serve) serves sensorhub_write_* on its one port.
var Metrics = map[string][]string{
	"sensorhub_http_requests_total":                 {"route", "method", "code"},
	"sensorhub_http_request_duration_seconds":       {"route", "method"},
	"sensorhub_http_requests_in_flight":             nil,
	"sensorhub_http_response_size_bytes":            {"route", "method"},
	"sensorhub_db_pool_acquired_conns":              nil,
	"sensorhub_db_pool_idle_conns":                  nil,
	"sensorhub_db_pool_max_conns":                   nil,
	"sensorhub_db_pool_acquire_wait_seconds_total":  nil,
	"sensorhub_db_query_duration_seconds":           {"operation"},
	"sensorhub_build_info":                          {"version", "goversion"},
	"sensorhub_api_ready":                           nil,
	"sensorhub_dataset_last_load_timestamp_seconds": nil,
	"sensorhub_rollup_pending_ranges":               nil,

	// ingest, live on -metrics-addr.
	"sensorhub_ingest_readings_total": {"result"},
	"sensorhub_ingest_bytes_total":    nil,
	"sensorhub_ingest_batches_total":  nil,
	// ingest, pushed.
	"sensorhub_ingest_last_run_readings":              {"result"},
	"sensorhub_ingest_last_run_bytes":                 nil,
	"sensorhub_ingest_last_run_batches":               nil,
	"sensorhub_ingest_last_run_duration_seconds":      nil,
	"sensorhub_ingest_last_run_failed":                nil,
	"sensorhub_ingest_last_success_timestamp_seconds": nil,

	// The write service (ingest serve), on its /metrics. The request
	// counter has no route: every answer counts, the probes' too.
	"sensorhub_write_requests_total":           {"code"},
	"sensorhub_write_request_duration_seconds": nil,
	"sensorhub_write_readings_total":           {"result"},
	"sensorhub_write_group_readings":           nil,
	"sensorhub_write_commit_seconds":           nil,
	"sensorhub_write_queue_readings":           nil,
	"sensorhub_write_rate_limited_total":       nil,
}

var (
	metricName    = regexp.MustCompile(`\bsensorhub_[a-z0-9_]+`)
	stringLiteral = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
)

// UnknownMetrics returns the sensorhub_* names in a PromQL expression that
// are not in Metrics (histogram series may carry _bucket, _sum or _count).
// Label values such as job="sensorhub_api" are not names and are ignored.
func UnknownMetrics(expr string) []string {
	var unknown []string
	for _, name := range metricName.FindAllString(stringLiteral.ReplaceAllString(expr, `""`), -1) {
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, suffix); ok {
				if _, known := Metrics[b]; known {
					base = b
				}
			}
		}
		if _, ok := Metrics[base]; !ok {
			unknown = append(unknown, name)
		}
	}
	return unknown
}

var (
	selector = regexp.MustCompile(`\b(sensorhub_[a-z0-9_]+)\{([^}]*)\}`)
	matcher  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
)

// UnknownLabels returns the label names matched in the selectors of known
// sensorhub_* metrics in expr that those metrics do not have; job and
// instance (target labels) and le (on _bucket series) are always allowed.
func UnknownLabels(expr string) []string {
	var unknown []string
	for _, m := range selector.FindAllStringSubmatch(expr, -1) {
		name, base := m[1], m[1]
		allowed := map[string]bool{"job": true, "instance": true}
		if b, ok := strings.CutSuffix(name, "_bucket"); ok {
			if _, known := Metrics[b]; known {
				base = b
				allowed["le"] = true
			}
		}
		labels, ok := Metrics[base]
		if !ok {
			continue // UnknownMetrics reports it
		}
		for _, l := range labels {
			allowed[l] = true
		}
		for _, lm := range matcher.FindAllStringSubmatch(stringLiteral.ReplaceAllString(m[2], `""`), -1) {
			if !allowed[lm[1]] {
				unknown = append(unknown, name+": "+lm[1])
			}
		}
	}
	return unknown
}
