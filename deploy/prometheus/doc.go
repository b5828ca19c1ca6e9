// Package prometheus holds sensorhub's alerting rules (rules.yml), their
// promtool unit tests (rules_test.yml) and the Prometheus configuration of
// compose.yaml (prometheus.yml); its tests run promtool over them and check
// that every alert's runbook_url links to a section of docs/operations.md.
package prometheus
