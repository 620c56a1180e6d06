package monitoring

import (
	"reflect"
	"testing"
)

// TestLabelUses checks which labels a query is found to rely on: its matchers and
// the grouping of the nearest aggregation above each selector.
func TestLabelUses(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want map[string][]string
	}{
		{`histogram_quantile(0.99, sum by (exporter, le) (rate(x_bucket{job=~"$job"}[$__rate_interval])))`, map[string][]string{"x_bucket": {"exporter", "job", "le"}}},
		{`max by (queue) (a) / max by (queue) (b{q="1"})`, map[string][]string{"a": {"queue"}, "b": {"q", "queue"}}},
		{`sum without (pod) (c{result="x"})`, map[string][]string{"c": {"result"}}},
		{`count(sum by (a) (d))`, map[string][]string{"d": {"a"}}},
	} {
		got, err := LabelUses(tc.expr)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("LabelUses(%q) = %v, %v; want %v", tc.expr, got, err, tc.want)
		}
	}
}
