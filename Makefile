# The two commands of the README: `make up` and `make test`.
GO_PACKAGES := ./db/... ./services/ingest/... ./services/api/... ./deploy/...

.PHONY: help up down test vet fuzz openapi bench-ingest

## help: list these targets
help:
	@awk -F': ' '/^## [a-z-]+: / { sub(/^## /, ""); split($$0, a, ": "); printf "  make %-13s %s\n", a[1], substr($$0, length(a[1]) + 3) }' $(MAKEFILE_LIST)

## up: local PostgreSQL (or $DATABASE_URL), migrate, load sample data, serve the API on :8080
up:
	./scripts/up.sh

## down: stop the local PostgreSQL that `make up` started
down:
	go run ./db/cmd/localpg stop -dir .data/postgres

## test: every test; starts a throwaway PostgreSQL unless TEST_DATABASE_URL is set
test:
	go test -count=1 $(GO_PACKAGES)

## vet: go vet, a syntax check of the shell scripts (bench/ has no test run), and that bench/'s pgbench scripts still copy the API's SQL
vet:
	go vet $(GO_PACKAGES)
	@for f in bench/*.sh scripts/*.sh .ci/run; do bash -n "$$f" || exit 1; done
	go run bench/api-sqlcheck.go bench/api-pgbench-*.sql

## fuzz: a short pass over every fuzz target (FUZZTIME each)
FUZZTIME ?= 5s
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

## openapi: regenerate openapi-3.0.yaml (read API) and openapi-write-3.0.yaml (write API) from the code
openapi:
	go run ./services/api openapi -o openapi-3.0.yaml
	go run ./services/ingest openapi -o openapi-write-3.0.yaml

## bench-ingest: the ingest benchmark (bench/ingest.sh; FLAVOR, POINTS, ... as docs/benchmarks.md says)
bench-ingest:
	./bench/ingest.sh
