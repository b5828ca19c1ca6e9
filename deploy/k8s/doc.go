// Package k8s holds sensorhub's Kubernetes manifests: a kustomize base and
// the overlays dev (a TimescaleDB StatefulSet, a generated sample dataset)
// and prod (a CloudNativePG cluster, the API on its read replicas). Its
// tests render every overlay, decode every object strictly into its Go type
// and check the cluster policies the manifests promise.
package k8s
