package errand_test

import (
	"context"
	"fmt"

	"github.com/errandgo/errand"
)

type EmailArgs struct {
	To string `json:"to"`
}

type Receipt struct {
	Accepted bool `json:"accepted"`
}

// SendEmail is a named kind of task: its arguments and result pass through
// a codec (JSON by default), so the same code can later run durable.
var SendEmail = errand.Define("email.send", func(ctx context.Context, a EmailArgs) (Receipt, error) {
	return Receipt{Accepted: a.To != ""}, nil
}, errand.WithRetry(errand.RetryPolicy{MaxAttempts: 3}))

func ExampleDefine() {
	q, _ := errand.New(errand.Config{})
	defer q.Close()

	f, err := SendEmail.Enqueue(context.Background(), q, EmailArgs{To: "ann@example.com"})
	if err != nil {
		fmt.Println(err)
		return
	}
	r, err := f.Await(context.Background())
	fmt.Println(r.Accepted, err)
	// Output: true <nil>
}
