package jinja

import (
	"errors"
	"testing"
)

// FuzzRender: any template either renders or fails with an *Error; it
// never panics or hangs, whatever the input.
func FuzzRender(f *testing.F) {
	for _, s := range []string{
		"{{ name }}:{{ port }}",
		"{% for x in list %}{{ x | upper }}\n{% endfor %}",
		"{{ map | to_nice_yaml }}{{ map | to_json }}",
		"{{ name | regex_replace('(\\\\w+)', '\\\\1') }}",
		"{{ nope }}",
		"{% if on %}a{% else %}b{% endif %}",
		"{{ unclosed",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		_, err := Render("f.j2", []byte(src), testVars)
		var je *Error
		if err != nil && !errors.As(err, &je) {
			t.Fatalf("error %v is not an *Error", err)
		}
	})
}
