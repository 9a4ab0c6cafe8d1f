module github.com/errandgo/errand/crondiff

go 1.25

replace github.com/errandgo/errand => ../

require (
	github.com/errandgo/errand v0.0.0-00010101000000-000000000000
	github.com/robfig/cron/v3 v3.0.1
	go.uber.org/goleak v1.3.0
)

require (
	github.com/google/uuid v1.6.0 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
)
