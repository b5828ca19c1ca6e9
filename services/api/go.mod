module github.com/sensorhub/sensorhub/services/api

go 1.26.8

require github.com/sensorhub/sensorhub/db v0.0.0

require (
	github.com/danielgtaylor/huma/v2 v2.37.2 // indirect
	github.com/getkin/kin-openapi v0.153.0 // indirect
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	github.com/jackc/pgx/v5 v5.12.0 // indirect
	github.com/prometheus/client_golang v1.25.0 // indirect
	go.uber.org/goleak v1.3.0 // indirect
	golang.org/x/text v0.44.0 // indirect
)

replace github.com/sensorhub/sensorhub/db => ../../db
