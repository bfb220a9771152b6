package plan

import (
	"fmt"
	"math/big"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// decoder evaluates attributes into Go values and collects every problem
// as a diagnostic instead of stopping at the first. A value that is
// unknown (a per-host attribute checked before any host is known) is
// reported as not ok without a diagnostic.
type decoder struct {
	diags hcl.Diagnostics
}

func (d *decoder) add(diags hcl.Diagnostics) { d.diags = append(d.diags, diags...) }

func (d *decoder) errorf(rng hcl.Range, summary, detail string, args ...any) {
	d.report(hcl.DiagError, rng, summary, fmt.Sprintf(detail, args...))
}

func (d *decoder) warnf(rng hcl.Range, summary, detail string, args ...any) {
	d.report(hcl.DiagWarning, rng, summary, fmt.Sprintf(detail, args...))
}

// report records one diagnostic of severity sev about rng.
func (d *decoder) report(sev hcl.DiagnosticSeverity, rng hcl.Range, summary, detail string) {
	d.diags = append(d.diags, &hcl.Diagnostic{Severity: sev, Summary: summary, Detail: detail, Subject: &rng})
}

// eval evaluates attr. ok is false when attr is nil, null, not wholly
// known, or failed to evaluate (then a diagnostic was recorded).
func (d *decoder) eval(attr *hcl.Attribute, ctx *hcl.EvalContext) (cty.Value, bool) {
	if attr == nil {
		return cty.NilVal, false
	}
	v, diags := attr.Expr.Value(ctx)
	d.add(diags)
	if diags.HasErrors() || v.IsNull() || !v.IsWhollyKnown() {
		return v, false
	}
	return v, true
}

func (d *decoder) typeError(attr *hcl.Attribute, rng hcl.Range, want string, got cty.Value) {
	d.errorf(rng, "Incorrect attribute value type",
		"%s must be %s; got %s.", attr.Name, want, got.Type().FriendlyName())
}

// str evaluates a string attribute. Numbers and bools are accepted and
// written out in their usual form.
func (d *decoder) str(attr *hcl.Attribute, ctx *hcl.EvalContext) (string, bool) {
	v, ok := d.eval(attr, ctx)
	if !ok {
		return "", false
	}
	s, err := convert.Convert(v, cty.String)
	if err != nil {
		d.typeError(attr, attr.Expr.Range(), "a string", v)
		return "", false
	}
	return s.AsString(), true
}

// nonEmpty is str for attributes that must not be the empty string.
func (d *decoder) nonEmpty(attr *hcl.Attribute, ctx *hcl.EvalContext, what string) (string, bool) {
	s, ok := d.str(attr, ctx)
	if ok && s == "" {
		d.errorf(attr.Expr.Range(), "Empty "+attr.Name, "%s must not be empty: expected %s.", attr.Name, what)
		return "", false
	}
	return s, ok
}

func (d *decoder) boolean(attr *hcl.Attribute, ctx *hcl.EvalContext) (bool, bool) {
	v, ok := d.eval(attr, ctx)
	if !ok {
		return false, false
	}
	b, err := convert.Convert(v, cty.Bool)
	if err != nil {
		d.typeError(attr, attr.Expr.Range(), "true or false", v)
		return false, false
	}
	return b.True(), true
}

// wholeNumber converts v to an int in [lo, hi]; it records a diagnostic and
// returns false otherwise.
func (d *decoder) wholeNumber(attr *hcl.Attribute, rng hcl.Range, v cty.Value, lo, hi int, what string) (int, bool) {
	if v.Type() != cty.Number {
		d.typeError(attr, rng, what, v)
		return 0, false
	}
	f := v.AsBigFloat()
	if !f.IsInt() || f.Cmp(big.NewFloat(float64(lo))) < 0 || f.Cmp(big.NewFloat(float64(hi))) > 0 {
		d.errorf(rng, "Invalid "+attr.Name, "%s must be %s; got %s.", attr.Name, what, f.Text('g', 10))
		return 0, false
	}
	n, _ := f.Int64()
	return int(n), true
}

func (d *decoder) integer(attr *hcl.Attribute, ctx *hcl.EvalContext, lo, hi int, what string) (int, bool) {
	v, ok := d.eval(attr, ctx)
	if !ok {
		return 0, false
	}
	if v.Type() == cty.String {
		if n, err := convert.Convert(v, cty.Number); err == nil {
			v = n
		}
	}
	return d.wholeNumber(attr, attr.Expr.Range(), v, lo, hi, what)
}

// elements returns the elements of a list or tuple value with the source
// range of each element where the expression is a literal list.
func (d *decoder) elements(attr *hcl.Attribute, v cty.Value) ([]cty.Value, []hcl.Range, bool) {
	if !v.Type().IsListType() && !v.Type().IsTupleType() && !v.Type().IsSetType() {
		return nil, nil, false
	}
	var vals []cty.Value
	var rngs []hcl.Range
	cons, _ := attr.Expr.(*hclsyntax.TupleConsExpr)
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		rng := attr.Expr.Range()
		if cons != nil && len(vals) < len(cons.Exprs) {
			rng = cons.Exprs[len(vals)].Range()
		}
		vals = append(vals, e)
		rngs = append(rngs, rng)
	}
	return vals, rngs, true
}

func (d *decoder) strList(attr *hcl.Attribute, ctx *hcl.EvalContext) ([]string, bool) {
	v, ok := d.eval(attr, ctx)
	if !ok {
		return nil, false
	}
	vals, rngs, isList := d.elements(attr, v)
	if !isList {
		d.typeError(attr, attr.Expr.Range(), `a list of strings, such as ["a", "b"]`, v)
		return nil, false
	}
	out := make([]string, 0, len(vals))
	good := true
	for i, e := range vals {
		s, err := convert.Convert(e, cty.String)
		if err != nil || s.IsNull() {
			d.typeError(attr, rngs[i], "a list of strings", v)
			good = false
			continue
		}
		out = append(out, s.AsString())
	}
	return out, good
}

// duration parses a Go duration string ("1s", "2m", "500ms"): never
// negative, and more than zero when positive is set.
func (d *decoder) duration(attr *hcl.Attribute, ctx *hcl.EvalContext, positive bool) (time.Duration, bool) {
	v, ok := d.eval(attr, ctx)
	if !ok {
		return 0, false
	}
	if v.Type() == cty.Number {
		d.errorf(attr.Expr.Range(), "Invalid duration",
			`%s must be a duration string such as "30s", "2m" or "500ms"; a bare number has no unit.`, attr.Name)
		return 0, false
	}
	s, err := convert.Convert(v, cty.String)
	if err != nil {
		d.typeError(attr, attr.Expr.Range(), `a duration string such as "30s"`, v)
		return 0, false
	}
	dur, err := time.ParseDuration(s.AsString())
	if err != nil {
		d.errorf(attr.Expr.Range(), "Invalid duration",
			`%s must be a duration such as "30s", "2m" or "500ms"; %q is not one.`, attr.Name, s.AsString())
		return 0, false
	}
	if dur < 0 || (positive && dur == 0) {
		bound := "zero or more"
		if positive {
			bound = "more than zero"
		}
		d.errorf(attr.Expr.Range(), "Invalid duration", "%s must be %s; got %s.", attr.Name, bound, s.AsString())
		return 0, false
	}
	return dur, true
}

// quantityValue converts one number or string element into a Quantity.
// minimum is the smallest count (and percentage) accepted.
func (d *decoder) quantityValue(attr *hcl.Attribute, rng hcl.Range, v cty.Value, minimum int) (Quantity, bool) {
	const what = `a whole number such as 3 or a percentage string such as "25%"`
	switch {
	case v.IsNull() || !v.IsKnown():
		d.typeError(attr, rng, what, v)
		return Quantity{}, false
	case v.Type() == cty.Number:
		n, ok := d.wholeNumber(attr, rng, v, minimum, maxQuantity, fmt.Sprintf("a whole number from %d to %d, or a percentage string", minimum, maxQuantity))
		return Quantity{N: n, Set: true}, ok
	case v.Type() == cty.String:
		q, err := ParseQuantity(v.AsString())
		if err != nil {
			d.errorf(rng, "Invalid "+attr.Name, "%s must be %s; %v.", attr.Name, what, err)
			return Quantity{}, false
		}
		if q.N < minimum {
			d.errorf(rng, "Invalid "+attr.Name, "%s must be at least %d (or %d%%); got %q.", attr.Name, minimum, minimum, v.AsString())
			return Quantity{}, false
		}
		return q, true
	default:
		d.typeError(attr, rng, what, v)
		return Quantity{}, false
	}
}

func (d *decoder) quantity(attr *hcl.Attribute, ctx *hcl.EvalContext) (Quantity, bool) {
	v, ok := d.eval(attr, ctx)
	if !ok {
		return Quantity{}, false
	}
	return d.quantityValue(attr, attr.Expr.Range(), v, 0)
}

// batch decodes batch: a number, a "25%" string (or "1,25%"), or a list of
// those.
func (d *decoder) batch(attr *hcl.Attribute, ctx *hcl.EvalContext) ([]Quantity, bool) {
	v, ok := d.eval(attr, ctx)
	if !ok {
		return nil, false
	}
	if v.Type() == cty.String {
		qs, err := ParseBatchSpec(v.AsString())
		if err != nil {
			d.errorf(attr.Expr.Range(), "Invalid batch",
				`batch must be a host count such as 1, a percentage such as "25%%", or a list of those such as [1, "25%%"]; %v.`, err)
			return nil, false
		}
		return qs, true
	}
	if v.Type() == cty.Number {
		q, ok := d.quantityValue(attr, attr.Expr.Range(), v, 1)
		return []Quantity{q}, ok
	}
	vals, rngs, isList := d.elements(attr, v)
	if !isList {
		d.typeError(attr, attr.Expr.Range(), `a host count, a percentage string, or a list of those such as [1, "25%"]`, v)
		return nil, false
	}
	if len(vals) == 0 {
		d.errorf(attr.Expr.Range(), "Invalid batch", `batch must hold at least one size, such as [1, "25%%"].`)
		return nil, false
	}
	out := make([]Quantity, 0, len(vals))
	good := true
	for i, e := range vals {
		q, ok := d.quantityValue(attr, rngs[i], e, 1)
		good = good && ok
		out = append(out, q)
	}
	return out, good
}

// ramp decodes the haproxy ramp: weights in percent, strictly increasing,
// ending at 100.
func (d *decoder) ramp(attr *hcl.Attribute, ctx *hcl.EvalContext) ([]int, bool) {
	v, ok := d.eval(attr, ctx)
	if !ok {
		return nil, false
	}
	vals, rngs, isList := d.elements(attr, v)
	if !isList || len(vals) == 0 {
		d.typeError(attr, attr.Expr.Range(), `a list of weights ending at 100%, such as ["10%", "50%", "100%"]`, v)
		return nil, false
	}
	out := make([]int, 0, len(vals))
	for i, e := range vals {
		var n int
		switch {
		case e.IsNull():
			d.typeError(attr, rngs[i], "a list of weights in percent", v)
			return nil, false
		case e.Type() == cty.Number:
			var good bool
			if n, good = d.wholeNumber(attr, rngs[i], e, 1, 100, "a list of weights from 1 to 100 (percent)"); !good {
				return nil, false
			}
		case e.Type() == cty.String:
			q, err := ParseQuantity(e.AsString())
			if err != nil || q.N < 1 || q.N > 100 {
				d.errorf(rngs[i], "Invalid ramp", `ramp steps must be weights from 1%% to 100%%, such as "10%%"; got %q.`, e.AsString())
				return nil, false
			}
			n = q.N
		default:
			d.typeError(attr, rngs[i], "a list of weights in percent", v)
			return nil, false
		}
		if len(out) > 0 && n <= out[len(out)-1] {
			d.errorf(rngs[i], "Invalid ramp", "ramp must increase at every step; %d%% follows %d%%.", n, out[len(out)-1])
			return nil, false
		}
		out = append(out, n)
	}
	if out[len(out)-1] != 100 {
		d.errorf(attr.Expr.Range(), "Invalid ramp", "ramp must end at 100%% (full weight); it ends at %d%%.", out[len(out)-1])
		return nil, false
	}
	return out, true
}
