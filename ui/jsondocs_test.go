package ui

import (
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/rollout/event"
)

// TestJSONSchemaMatchesDocs checks docs/json-events.md against the code:
// every key an event kind carries (the keys TestJSONSchema pins in its
// golden file) is listed for that kind in the docs' field index, every key
// the docs list exists on event.Event, every key is snake_case, and the
// schema version the docs state is event.Schema.
func TestJSONSchemaMatchesDocs(t *testing.T) {
	doc, err := os.ReadFile("../docs/json-events.md")
	if err != nil {
		t.Fatal(err)
	}
	golden, err := os.ReadFile("testdata/TestJSONSchema.golden")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]map[string]bool{}
	row := regexp.MustCompile("(?m)^\\| `([a-z_]+)`\\s+\\|(.*)\\|\\s*$")
	inIndex := false
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(line, "## ") {
			inIndex = strings.Contains(line, "Field index")
		}
		if !inIndex {
			continue
		}
		if m := row.FindStringSubmatch(line); m != nil {
			keys := map[string]bool{"time": true, "run": true, "event": true}
			for _, k := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(m[2], -1) {
				keys[k[1]] = true
			}
			documented[m[1]] = keys
		}
	}
	if len(documented) < 10 {
		t.Fatalf("found %d rows in the docs' field index; is the table still there?", len(documented))
	}
	fields := map[string]bool{}
	et := reflect.TypeOf(event.Event{})
	for i := 0; i < et.NumField(); i++ {
		name := strings.Split(et.Field(i).Tag.Get("json"), ",")[0]
		fields[name] = true
	}
	snake := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	for name := range fields {
		if !snake.MatchString(name) {
			t.Errorf("event.Event key %q is not snake_case", name)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(string(golden)), "\n") {
		kind, keys, _ := strings.Cut(line, ": ")
		doc := documented[kind]
		if doc == nil {
			t.Errorf("docs/json-events.md's field index has no row for %s", kind)
			continue
		}
		for _, k := range strings.Fields(keys) {
			if !doc[k] {
				t.Errorf("%s carries %q, but the docs' field index does not list it", kind, k)
			}
		}
	}
	for kind, keys := range documented {
		for k := range keys {
			if !fields[k] {
				t.Errorf("the docs list %q on %s, but event.Event has no such key", k, kind)
			}
		}
	}
	if m := regexp.MustCompile("schema version is `(\\d+)`").FindSubmatch(doc); m == nil || string(m[1]) != strconv.Itoa(event.Schema) {
		t.Errorf("docs/json-events.md does not say \"schema version is `%d`\"", event.Schema)
	}
}
