package journal

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// The local lock is the same protocol as the host lock, made with plain
// filesystem calls in the controller's state dir: <dir>/<plan>/lock/.
// Lock times come from the now argument, as on hosts; the age of a lock
// directory (used only when its info is unreadable) is measured on the
// clock that stamped it, the real one.

// AcquireLocalLock is AcquireHostLock for the local state dir; the
// LockedError's Where is "local".
func AcquireLocalLock(dir, plan string, info LockInfo, now time.Time) error {
	s, err := newLocalStore(dir, plan)
	if err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	return acquire(context.Background(), s, "local", plan, info, now)
}

// RenewLocalLock is RenewHostLock for the local state dir.
func RenewLocalLock(dir, plan string, info LockInfo, now time.Time) error {
	s, err := newLocalStore(dir, plan)
	if err != nil {
		return fmt.Errorf("renew lock: %w", err)
	}
	return renew(context.Background(), s, info, now)
}

// ReleaseLocalLock is ReleaseHostLock for the local state dir.
func ReleaseLocalLock(dir, plan, runID string) error {
	s, err := newLocalStore(dir, plan)
	if err != nil {
		return fmt.Errorf("release lock: %w", err)
	}
	return release(context.Background(), s, runID)
}

// ReadLocalLock is ReadHostLock for the local state dir.
func ReadLocalLock(dir, plan string) (*LockInfo, error) {
	s, err := newLocalStore(dir, plan)
	if err != nil {
		return nil, fmt.Errorf("read lock: %w", err)
	}
	return read(context.Background(), s)
}

// BreakLocalLock is BreakHostLock for the local state dir.
func BreakLocalLock(dir, plan string) error {
	s, err := newLocalStore(dir, plan)
	if err != nil {
		return fmt.Errorf("break lock: %w", err)
	}
	if err := s.breakLock(context.Background()); err != nil {
		return fmt.Errorf("break lock %s: %w", s.path(), err)
	}
	return nil
}

type localStore struct {
	planDir string
	lock    string
}

func newLocalStore(dir, plan string) (*localStore, error) {
	if _, err := PlanDir(dir, plan); err != nil {
		return nil, err
	}
	pd := filepath.Join(dir, plan)
	return &localStore{planDir: pd, lock: filepath.Join(pd, LockDir)}, nil
}

func (s *localStore) path() string { return s.lock }
func (s *localStore) info() string { return filepath.Join(s.lock, LockInfoFile) }
func (s *localStore) busy() string { return filepath.Join(s.lock, busyDir) }

func (s *localStore) create(_ context.Context, info []byte) (bool, error) {
	if err := os.MkdirAll(s.planDir, 0o700); err != nil {
		return false, err
	}
	if _, err := Tighten(s.planDir, 0o700); err != nil {
		return false, err
	}
	if err := os.Mkdir(s.lock, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, err
	}
	if err := s.writeInfo(info); err != nil {
		os.RemoveAll(s.lock)
		return false, err
	}
	return true, nil
}

func (s *localStore) writeInfo(info []byte) error {
	tmp := filepath.Join(s.lock, ".info.tmp."+token())
	if err := os.WriteFile(tmp, info, 0o600); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, s.info()); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func (s *localStore) status(context.Context) (lockState, error) {
	var st lockState
	now := time.Now()
	fi, err := os.Stat(s.lock)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	if !fi.IsDir() {
		return st, fmt.Errorf("%s is not a directory", s.lock)
	}
	st.held, st.age = true, now.Sub(fi.ModTime())
	if bi, err := os.Stat(s.busy()); err == nil {
		st.busy, st.busyAge = true, now.Sub(bi.ModTime())
	}
	raw, err := os.ReadFile(s.info())
	switch {
	case err == nil:
		st.raw, st.info = raw, parseInfo(raw)
	case !errors.Is(err, fs.ErrNotExist):
		return st, err
	}
	return st, nil
}

func (s *localStore) cas(_ context.Context, want string, info []byte) (res casResult, err error) {
	if err := os.Mkdir(s.busy(), 0o700); err != nil {
		switch {
		case errors.Is(err, fs.ErrExist):
			return casBusy, nil
		case errors.Is(err, fs.ErrNotExist):
			return casChanged, nil
		}
		return 0, err
	}
	removed := false
	defer func() {
		if !removed {
			os.Remove(s.busy())
		}
	}()
	got := "none"
	raw, err := os.ReadFile(s.info())
	switch {
	case err == nil:
		h := sha256.Sum256(raw)
		got = hex.EncodeToString(h[:])
	case !errors.Is(err, fs.ErrNotExist):
		return 0, err
	}
	if got != want {
		return casChanged, nil
	}
	if info != nil {
		if !bytes.Equal(info, raw) {
			if err := s.writeInfo(info); err != nil {
				return 0, err
			}
		}
		return casOK, nil
	}
	// .busy leaves with the lock; it must not be removed from a lock
	// made after this one is gone.
	gone := s.goneName()
	if err := os.Rename(s.lock, gone); err != nil {
		return 0, err
	}
	removed = true
	if err := os.RemoveAll(gone); err != nil {
		return 0, err
	}
	return casOK, nil
}

func (s *localStore) breakLock(context.Context) error {
	err := s.moveAway()
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (s *localStore) goneName() string {
	return filepath.Join(s.planDir, ".lock.gone."+token())
}

func (s *localStore) moveAway() error {
	gone := s.goneName()
	if err := os.Rename(s.lock, gone); err != nil {
		return err
	}
	return os.RemoveAll(gone)
}
