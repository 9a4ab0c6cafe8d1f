package errandpg

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// planNode is a node of EXPLAIN (FORMAT JSON) output.
type planNode struct {
	NodeType     string     `json:"Node Type"`
	RelationName string     `json:"Relation Name"`
	IndexName    string     `json:"Index Name"`
	Parent       string     `json:"Parent Relationship"`
	Plans        []planNode `json:"Plans"`
}

func (n planNode) walk(f func(planNode)) {
	f(n)
	for _, c := range n.Plans {
		c.walk(f)
	}
}

// explain returns the plan of sql with args, and its text form for the log.
func explain(t *testing.T, db DB, sql string, args ...any) (planNode, string) {
	t.Helper()
	ctx := testCtx(t)
	var raw []byte
	if err := db.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+sql, args...).Scan(&raw); err != nil {
		t.Fatalf("EXPLAIN: %v", err)
	}
	var plans []struct {
		Plan planNode `json:"Plan"`
	}
	if err := json.Unmarshal(raw, &plans); err != nil || len(plans) != 1 {
		t.Fatalf("EXPLAIN output %s: %v", raw, err)
	}
	rows, err := db.Query(ctx, "EXPLAIN "+sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var text strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		text.WriteString(line + "\n")
	}
	return plans[0].Plan, text.String()
}

// TestFetchUsesIndex fills errand_tasks with 100,000 rows in every state and
// checks that the fetch, the expired-lease recovery and the retention delete
// read their partial indexes in order (an Index Scan, no Sort of table rows)
// and never scan the table sequentially.
func TestFetchUsesIndex(t *testing.T) {
	pool := migratedPool(t)
	start := time.Now()
	// 60% finished, 25% due or not yet due waiting, 15% running.
	mustExec(t, pool, `INSERT INTO errand_tasks
		(id, kind, state, priority, run_at, attempts, lease_token, lease_until, finished_at, created_at)
	SELECT gen_random_uuid(), 'bulk', s.state, (i % 5), now() + ((i % 1000) - 700) * interval '1 second',
		CASE WHEN s.state = 'queued' THEN 0 ELSE 1 END,
		CASE WHEN s.state = 'running' THEN gen_random_uuid() END,
		CASE WHEN s.state = 'running' THEN now() + ((i % 60) - 5) * interval '1 second' END,
		CASE WHEN s.state IN ('succeeded', 'failed', 'canceled') THEN now() - (i % 86400) * interval '1 second' END,
		now() - interval '1 day'
	FROM generate_series(1, 100000) AS i,
	LATERAL (SELECT CASE
		WHEN i % 20 < 10 THEN 'succeeded' WHEN i % 20 < 11 THEN 'failed' WHEN i % 20 < 12 THEN 'canceled'
		WHEN i % 20 < 15 THEN 'queued' WHEN i % 20 < 16 THEN 'scheduled' WHEN i % 20 < 17 THEN 'retrying'
		ELSE 'running' END AS state) AS s`)
	mustExec(t, pool, `ANALYZE errand_tasks`)
	t.Logf("100,000 rows inserted and analyzed in %v", time.Since(start).Round(time.Millisecond))

	for _, tt := range []struct {
		name, sql string
		args      []any
		index     string
	}{
		{"fetch", sqlFetch, []any{10, int64(30000), "w", []string{"bulk"}}, "errand_tasks_fetch_idx"},
		{"fetchOtherKinds", sqlFetch, []any{10, int64(30000), "w", []string{"other", "bulk"}}, "errand_tasks_fetch_idx"},
		{"recoverExpired", sqlRecoverExpired, []any{100, lostLeaseAllowance}, "errand_tasks_lease_idx"},
		{"deleteFinished", sqlDeleteFinished, []any{int64(3600000), 1000}, "errand_tasks_finished_idx"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			plan, text := explain(t, pool, tt.sql, tt.args...)
			t.Logf("plan:\n%s", text)
			usesIndex := false
			plan.walk(func(n planNode) {
				switch {
				case n.RelationName == "errand_tasks" && (n.NodeType == "Index Scan" || n.NodeType == "Index Only Scan") && n.IndexName == tt.index:
					usesIndex = true
				case n.RelationName == "errand_tasks" && n.NodeType == "Seq Scan":
					t.Errorf("plan scans errand_tasks with %s:\n%s", n.NodeType, text)
				case n.NodeType == "Sort" || n.NodeType == "Incremental Sort":
					// Sorting the claimed rows (a CTE scan) is fine; sorting
					// rows read from errand_tasks is not.
					for _, in := range n.Plans {
						if in.Parent == "InitPlan" || in.Parent == "SubPlan" {
							continue // a CTE computed for the query, checked on its own
						}
						in.walk(func(c planNode) {
							if c.RelationName == "errand_tasks" {
								t.Errorf("plan sorts rows of errand_tasks (%s):\n%s", n.NodeType, text)
							}
						})
					}
				}
			})
			if !usesIndex {
				t.Fatalf("plan does not read %s with an index scan:\n%s", tt.index, text)
			}
		})
	}

	// And it claims the right rows: the ten highest-priority due tasks.
	got := mustFetch(t, pool, 10)
	if len(got) != 10 {
		t.Fatalf("claimed %d, want 10", len(got))
	}
	for _, c := range got {
		if c.priority != 4 {
			t.Fatalf("claimed a task of priority %d, want 4", c.priority)
		}
	}
}
