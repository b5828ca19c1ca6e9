// Package prometheus holds sensorhub's alerting rules (rules.yml), their
// promtool unit tests (rules_test.yml) and the Prometheus configuration of
// compose.yaml (prometheus.yml); its tests run promtool over them.
package prometheus
