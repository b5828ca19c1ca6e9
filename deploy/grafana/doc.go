// Package grafana holds sensorhub's Grafana provisioning (datasources and the
// dashboard provider) and dashboards, and the kustomization that turns the
// dashboards into ConfigMaps for Grafana's sidecar. Its tests parse every
// PromQL expression with promtool and run every SQL query against a migrated,
// seeded test database as the read-only role.
package grafana
