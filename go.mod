module github.com/errandgo/errand

go 1.25

require (
	github.com/google/uuid v1.6.0
	go.uber.org/goleak v1.3.0
)

require github.com/stretchr/testify v1.12.1 // indirect
