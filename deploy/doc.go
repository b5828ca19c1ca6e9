// Package deploy holds sensorhub's deployment kit and the tests that
// validate it without a container engine or a cluster:
//
//	../compose.yaml, ../.dockerignore,
//	../services/*/Dockerfile, ../db/Dockerfile   compose_test.go, dockerfiles_test.go
//	../.github/workflows/*.yml                   workflows_test.go
//	prometheus/   alerting rules, their promtool unit tests, compose's prometheus.yml
//	grafana/      provisioning and dashboards (SQL panels run against a test database)
//	k8s/          kustomize base and the dev and prod overlays
//
// docs/operations.md is the operator's guide to all of it.
package deploy
