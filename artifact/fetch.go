package artifact

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/rollout-sh/rollout/plan"
)

// Fetcher downloads artifacts on the controller, once per source and
// checksum for the whole run, and verifies them. It is safe for
// concurrent use: hosts asking for the same artifact wait for one
// download.
type Fetcher struct {
	Client *http.Client // nil: a client with a 10 minute timeout
	Limits Limits       // zero: DefaultLimits

	mu    sync.Mutex
	cache map[string]*fetched
	count int // downloads and reads made (tests)
}

type fetched struct {
	done chan struct{}
	data []byte
	err  error
}

// Fetch returns the bytes of a's source, verified against a.SHA256. A
// failure (an HTTP status other than 200, a truncated body, a file it
// cannot read, a wrong checksum) names the source; a wrong checksum is a
// *ChecksumError with the expected and actual sha256.
func (f *Fetcher) Fetch(ctx context.Context, a plan.ArtifactSpec) ([]byte, error) {
	key := a.Source + "\x00" + a.SHA256
	f.mu.Lock()
	if f.cache == nil {
		f.cache = map[string]*fetched{}
	}
	e, ok := f.cache[key]
	if !ok {
		e = &fetched{done: make(chan struct{})}
		f.cache[key] = e
		f.count++
		f.mu.Unlock()
		e.data, e.err = f.get(ctx, a)
		if e.err != nil && ctx.Err() != nil {
			// an interrupted download is not a verdict: the next asks again
			f.mu.Lock()
			delete(f.cache, key)
			f.mu.Unlock()
		}
		close(e.done)
	} else {
		f.mu.Unlock()
	}
	select {
	case <-e.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return e.data, e.err
}

// Downloads is how many sources Fetch has read (each once per run).
func (f *Fetcher) Downloads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count
}

func (f *Fetcher) limits() Limits {
	if f.Limits == (Limits{}) {
		return DefaultLimits
	}
	return f.Limits
}

func (f *Fetcher) get(ctx context.Context, a plan.ArtifactSpec) ([]byte, error) {
	lim := f.limits().Download
	var data []byte
	var err error
	if a.URL() {
		data, err = f.download(ctx, a.Source, lim)
	} else {
		data, err = readFile(a.Source, lim)
	}
	if err != nil {
		return nil, err
	}
	if got := Sum(data); got != a.SHA256 {
		return nil, &ChecksumError{Source: a.Source, Expected: a.SHA256, Actual: got}
	}
	return data, nil
}

func readFile(name string, lim int64) ([]byte, error) {
	fh, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, lim+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if int64(len(data)) > lim {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, lim)
	}
	return data, nil
}

func (f *Fetcher) download(ctx context.Context, url string, lim int64) ([]byte, error) {
	c := f.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Minute}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("download %s: %s", url, resp.Status)
	}
	if resp.ContentLength > lim {
		return nil, fmt.Errorf("download %s: %d bytes, more than the limit of %d", url, resp.ContentLength, lim)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, lim+1))
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("download %s: truncated after %d of %d bytes", url, len(data), resp.ContentLength)
		}
		return nil, fmt.Errorf("download %s: %w", url, err)
	}
	if int64(len(data)) > lim {
		return nil, fmt.Errorf("download %s: more than the limit of %d bytes", url, lim)
	}
	if resp.ContentLength >= 0 && int64(len(data)) != resp.ContentLength {
		return nil, fmt.Errorf("download %s: truncated after %d of %d bytes", url, len(data), resp.ContentLength)
	}
	return data, nil
}
