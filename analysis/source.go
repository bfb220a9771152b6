package analysis

import (
	"bufio"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// HAProxyCounters reads one server row of HAProxy's "show stat" (columns by
// name, as the CSV header names them). Errors are hrsp_5xx + eresp + econ;
// requests are req_tot (or, on an HAProxy without it for servers, every
// response and error); responses are hrsp_1xx..hrsp_5xx + hrsp_other.
func HAProxyCounters(fields map[string]string) (Counters, error) {
	num := func(name string) (int64, error) {
		v := strings.TrimSpace(fields[name])
		if v == "" {
			return 0, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("column %s: %q is not a number", name, v)
		}
		return n, nil
	}
	var c Counters
	var errs []string
	get := func(name string) int64 {
		n, err := num(name)
		if err != nil {
			errs = append(errs, err.Error())
		}
		return n
	}
	for _, col := range []string{"hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other"} {
		c.Responses += get(col)
	}
	eresp, econ := get("eresp"), get("econ")
	c.Errors = get("hrsp_5xx") + eresp + econ
	c.Retries = get("wretr")
	if _, ok := fields["req_tot"]; ok && strings.TrimSpace(fields["req_tot"]) != "" {
		c.Requests = get("req_tot")
	} else {
		c.Requests = c.Responses + eresp + econ
	}
	if _, ok := fields["rtime"]; ok {
		c.RTime = float64(get("rtime"))
		c.RTimeKind = RTimeAvgHAProxy
	}
	if len(errs) > 0 {
		return Counters{}, fmt.Errorf("server %s: %s", fields["svname"], strings.Join(errs, "; "))
	}
	return c, nil
}

// CommandLB names the one "load balancer" of an analysis "command" source.
const CommandLB = "command"

// ParseCommandOutput reads what an analysis "command" prints: one line per
// server, "SERVER REQUESTS ERRORS [RTIME_MS_SUM]", each a cumulative
// counter (it only grows; a decrease is read as a reset). Blank lines and
// lines starting with '#' are ignored.
func ParseCommandOutput(out string) (map[string]Counters, error) {
	servers := map[string]Counters{}
	sc := bufio.NewScanner(strings.NewReader(out))
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Fields(text)
		if len(f) < 3 || len(f) > 4 {
			return nil, fmt.Errorf("line %d: want SERVER REQUESTS ERRORS [RTIME_MS_SUM], got %q", line, text)
		}
		var c Counters
		var err error
		if c.Requests, err = strconv.ParseInt(f[1], 10, 64); err != nil || c.Requests < 0 {
			return nil, fmt.Errorf("line %d: requests %q is not a whole number", line, f[1])
		}
		if c.Errors, err = strconv.ParseInt(f[2], 10, 64); err != nil || c.Errors < 0 {
			return nil, fmt.Errorf("line %d: errors %q is not a whole number", line, f[2])
		}
		if c.Errors > c.Requests {
			return nil, fmt.Errorf("line %d: %s has more errors (%d) than requests (%d)", line, f[0], c.Errors, c.Requests)
		}
		c.Responses = c.Requests
		if len(f) == 4 {
			if c.RTime, err = strconv.ParseFloat(f[3], 64); err != nil || c.RTime < 0 || math.IsNaN(c.RTime) || math.IsInf(c.RTime, 0) {
				return nil, fmt.Errorf("line %d: response time sum %q is not a number of milliseconds", line, f[3])
			}
			c.RTimeKind = RTimeSum
		}
		if _, dup := servers[f[0]]; dup {
			return nil, fmt.Errorf("line %d: server %s listed twice", line, f[0])
		}
		servers[f[0]] = c
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(servers) == 0 {
		return nil, fmt.Errorf("no server lines (want SERVER REQUESTS ERRORS [RTIME_MS_SUM])")
	}
	return servers, nil
}
