// Package prometheus reads canary analysis counters from a Prometheus
// server: each PromQL expression of an analysis "prometheus" block is an
// instant query (/api/v1/query) returning one cumulative counter per
// server. What the source cannot read now (Prometheus down, a server the
// query does not list) holds the verdict; what it will never read as
// configured (bad PromQL, refused credentials, a result without the server
// label) fails it. The arithmetic is package analysis's, the same as for
// HAProxy's own counters.
package prometheus

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rollout-sh/rollout/analysis"
)

// DefaultTimeout bounds one query.
const DefaultTimeout = 10 * time.Second

// maxBody bounds what is read of one answer.
const maxBody = 32 << 20

// Query is one PromQL expression and where the plan sets it.
type Query struct {
	Name string // "requests", "errors", "response_time"
	Expr string // "" = not set (response_time only)
	At   string // "rollout.hcl:14", for messages
}

// Config is a Prometheus source. Credentials are values, already read from
// the environment by the caller.
type Config struct {
	Address      string // http(s)://host:port[/prefix]
	Requests     Query  // cumulative requests per server
	Errors       Query  // cumulative errors per server
	ResponseTime Query  // optional: cumulative sum of response times per server, in seconds
	ServerLabel  string // the label naming the server; default "server"

	Username, Password string // basic auth, when Username is set
	BearerToken        string // Authorization: Bearer, when set
	CAFile             string // PEM bundle to verify the server with ("" = the system's)
	CertFile, KeyFile  string // a client certificate, when both are set
	InsecureSkipVerify bool
	Timeout            time.Duration // per query; default DefaultTimeout
}

// Source reads one snapshot per call; it is safe for one caller at a time.
type Source struct {
	cfg    Config
	client *http.Client
	api    string
}

// New checks cfg and builds its HTTP client.
func New(cfg Config) (*Source, error) {
	u, err := url.Parse(cfg.Address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("address %q is not an http(s) URL", cfg.Address)
	}
	if cfg.Requests.Expr == "" || cfg.Errors.Expr == "" {
		return nil, errors.New("requests and errors queries are required")
	}
	if cfg.ServerLabel == "" {
		cfg.ServerLabel = "server"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.CAFile != "" || cfg.CertFile != "" || cfg.InsecureSkipVerify {
		tc := &tls.Config{InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // the plan asks for it by name
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("ca_file %s: no PEM certificate in it", cfg.CAFile)
			}
			tc.RootCAs = pool
		}
		if cfg.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("tls client certificate: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		tr.TLSClientConfig = tc
	}
	return &Source{cfg: cfg, client: &http.Client{Transport: tr}, api: strings.TrimRight(cfg.Address, "/") + "/api/v1/query"}, nil
}

// Name is the source's name in a snapshot (its "load balancer").
func (s *Source) Name() string { return s.cfg.Address }

// queryError is a query that failed; fatal when asking again cannot help.
type queryError struct {
	fatal bool
	msg   string
}

func (e *queryError) Error() string { return e.msg }

// Read runs every query at one evaluation time and returns the counters of
// the servers all of them list.
func (s *Source) Read(ctx context.Context) analysis.Snapshot {
	lb := s.Name()
	snap := analysis.Snapshot{LBs: map[string]map[string]analysis.Counters{}, Unread: map[string]string{}, Broken: map[string]string{}}
	queries := []Query{s.cfg.Requests, s.cfg.Errors}
	if s.cfg.ResponseTime.Expr != "" {
		queries = append(queries, s.cfg.ResponseTime)
	}
	results := make([]map[string]float64, len(queries))
	evalAt := ""
	var fatal, transient []string
	for i, q := range queries {
		res, at, err := s.query(ctx, q, evalAt)
		var qe *queryError
		switch {
		case errors.As(err, &qe) && qe.fatal:
			fatal = append(fatal, qe.msg)
		case err != nil:
			transient = append(transient, err.Error())
		default:
			results[i] = res
			if evalAt == "" {
				evalAt = at // the other queries see the same instant
			}
		}
	}
	snap.At = time.Now()
	switch {
	case len(fatal) > 0:
		snap.Broken[lb] = strings.Join(fatal, "; ")
		return snap
	case len(transient) > 0:
		snap.Unread[lb] = strings.Join(transient, "; ")
		return snap
	}
	servers := map[string]analysis.Counters{}
	reqs := results[0]
	if len(reqs) == 0 {
		snap.Notes = append(snap.Notes, fmt.Sprintf("%s returns no series", describe(queries[0])))
	}
	for _, name := range slices.Sorted(maps.Keys(reqs)) {
		c := analysis.Counters{Requests: count(reqs[name])}
		c.Responses = c.Requests
		e, ok := results[1][name]
		if !ok {
			snap.Notes = append(snap.Notes, fmt.Sprintf("%s lists no %s=%q: left out (write it so that it returns 0 for a server without errors)", describe(queries[1]), s.cfg.ServerLabel, name))
			continue
		}
		c.Errors = count(e)
		if len(queries) == 3 {
			rt, ok := results[2][name]
			if !ok {
				snap.Notes = append(snap.Notes, fmt.Sprintf("%s lists no %s=%q: left out", describe(queries[2]), s.cfg.ServerLabel, name))
				continue
			}
			c.RTime, c.RTimeKind = rt*1000, analysis.RTimeSum
		}
		servers[name] = c
	}
	for _, name := range slices.Sorted(maps.Keys(results[1])) {
		if _, ok := reqs[name]; !ok {
			snap.Notes = append(snap.Notes, fmt.Sprintf("%s lists %s=%q, which the requests query does not", describe(queries[1]), s.cfg.ServerLabel, name))
		}
	}
	snap.LBs[lb] = servers
	return snap
}

// count is a counter's value as a whole number (Prometheus has floats).
func count(v float64) int64 { return int64(math.Round(v)) }

func describe(q Query) string {
	return fmt.Sprintf("%s query `%s` (%s)", q.Name, q.Expr, q.At)
}

// apiAnswer is the envelope of every /api/v1 answer.
type apiAnswer struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"` // [unix seconds, "value"]
}

// query runs one instant query (at evalAt, a Prometheus timestamp, when
// set) and returns each server's value and the evaluation time.
func (s *Source) query(ctx context.Context, q Query, evalAt string) (map[string]float64, string, error) {
	form := url.Values{"query": {q.Expr}}
	if evalAt != "" {
		form.Set("time", evalAt)
	}
	qctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(qctx, http.MethodPost, s.api, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, "", &queryError{fatal: true, msg: fmt.Sprintf("%s: %v", describe(q), err)}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	switch {
	case s.cfg.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+s.cfg.BearerToken)
	case s.cfg.Username != "":
		req.SetBasicAuth(s.cfg.Username, s.cfg.Password)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("%s query: %w", q.Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, "", fmt.Errorf("%s query: reading the answer: %w", q.Name, err)
	}
	var ans apiAnswer
	jsonErr := json.Unmarshal(body, &ans)
	if resp.StatusCode/100 != 2 || ans.Status == "error" {
		why := strings.TrimSpace(string(bytes.TrimSpace(body)))
		if jsonErr == nil && ans.Error != "" {
			why = ans.ErrorType + ": " + ans.Error
		}
		if len(why) > 300 {
			why = why[:300] + "…"
		}
		if permanent(resp.StatusCode) {
			return nil, "", &queryError{fatal: true, msg: fmt.Sprintf("Prometheus refused the %s (%s): %s", describe(q), resp.Status, why)}
		}
		return nil, "", fmt.Errorf("%s query: %s: %s", q.Name, resp.Status, why)
	}
	if jsonErr != nil {
		return nil, "", fmt.Errorf("%s query: %s does not answer as Prometheus's API: %v", q.Name, s.cfg.Address, jsonErr)
	}
	if ans.Data.ResultType != "vector" {
		return nil, "", &queryError{fatal: true, msg: fmt.Sprintf("%s returns a %s; it must return an instant vector, one series per %s", describe(q), ans.Data.ResultType, s.cfg.ServerLabel)}
	}
	var samples []sample
	if err := json.Unmarshal(ans.Data.Result, &samples); err != nil {
		return nil, "", fmt.Errorf("%s query: a vector Prometheus's API does not send: %v", q.Name, err)
	}
	out := map[string]float64{}
	at := ""
	for _, sm := range samples {
		name, ok := sm.Metric[s.cfg.ServerLabel]
		if !ok || name == "" {
			return nil, "", &queryError{fatal: true, msg: fmt.Sprintf("%s returns a series without the label %s (%s): aggregate it by that label, e.g. sum by (%s) (…)",
				describe(q), s.cfg.ServerLabel, labels(sm.Metric), s.cfg.ServerLabel)}
		}
		if _, dup := out[name]; dup {
			return nil, "", &queryError{fatal: true, msg: fmt.Sprintf("%s returns several series for %s=%q: aggregate it, e.g. sum by (%s) (…)",
				describe(q), s.cfg.ServerLabel, name, s.cfg.ServerLabel)}
		}
		ts, v, err := sampleValue(sm.Value)
		if err != nil {
			return nil, "", fmt.Errorf("%s query: %s=%q: %v", q.Name, s.cfg.ServerLabel, name, err)
		}
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			// not a counter reading now (a division by zero, a gap): the
			// server is left out, so it holds rather than passes
			continue
		}
		out[name] = v
		at = ts
	}
	return out, at, nil
}

// permanent: an answer that asking again will not change.
func permanent(code int) bool {
	return code/100 == 4 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests
}

func sampleValue(v [2]any) (string, float64, error) {
	ts, ok := v[0].(float64)
	str, ok2 := v[1].(string)
	if !ok || !ok2 {
		return "", 0, fmt.Errorf("value %v is not [time, \"number\"]", v)
	}
	f, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return "", 0, fmt.Errorf("value %q is not a number", str)
	}
	return strconv.FormatFloat(ts, 'f', -1, 64), f, nil
}

func labels(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%q", k, m[k]))
	}
	return "{" + strings.Join(parts, ",") + "}"
}
