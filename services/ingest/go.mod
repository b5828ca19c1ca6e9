module github.com/sensorhub/sensorhub/services/ingest

go 1.26.8

require github.com/sensorhub/sensorhub/db v0.0.0

require (
	github.com/go-json-experiment/json v1.27.2 // indirect
	github.com/mitchellh/colorstring v0.0.0-20190213212951-d06e56a500db // indirect
	github.com/prometheus/client_golang v1.25.0 // indirect
	github.com/rivo/uniseg v0.4.7 // indirect
	github.com/schollz/progressbar/v3 v3.19.1 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/term v0.44.0 // indirect
)

replace github.com/sensorhub/sensorhub/db => ../../db
