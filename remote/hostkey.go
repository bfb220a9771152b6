package remote

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	skknownhosts "github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// knownHostsMu serializes reads-for-append and appends to known_hosts files
// within this process.
var knownHostsMu sync.Mutex

// hostKeyVerifier checks the key of one host against known_hosts and
// remembers why it refused, so the caller can report it precisely.
type hostKeyVerifier struct {
	hostport  string // address as dialled, host:port
	file      string
	acceptNew bool
	override  ssh.HostKeyCallback

	refused error // set when the callback refused the key
}

func knownHostsPath(cfg Config) (string, error) {
	if cfg.KnownHostsFile != "" {
		return cfg.KnownHostsFile, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find known_hosts: %w", err)
	}
	return filepath.Join(home, ".ssh", "known_hosts"), nil
}

// loadKnownHosts reads file; a missing file is an empty database.
func loadKnownHosts(file string) (*skknownhosts.HostKeyDB, error) {
	db, err := skknownhosts.NewDB(file)
	if errors.Is(err, fs.ErrNotExist) {
		return skknownhosts.NewDB()
	}
	if err != nil {
		return nil, fmt.Errorf("read known_hosts %s: %w", file, err)
	}
	return db, nil
}

// hostKeyAlgorithms returns the host key algorithms to ask the server for,
// restricted to the key types known_hosts records for hostport (certificate
// authorities included), so that a server with several host keys presents
// the one we can verify. nil means no preference (nothing recorded, or the
// override is in use).
func (v *hostKeyVerifier) hostKeyAlgorithms() []string {
	if v.override != nil {
		return nil
	}
	db, err := loadKnownHosts(v.file)
	if err != nil {
		return nil
	}
	return db.HostKeyAlgorithms(v.hostport)
}

var placeholderAddr = &net.TCPAddr{IP: net.IPv4zero}

// callback is the ssh.HostKeyCallback used during the handshake.
func (v *hostKeyVerifier) callback(_ string, remote net.Addr, key ssh.PublicKey) error {
	if v.override != nil {
		if err := v.override(v.hostport, remote, key); err != nil {
			v.refused = err
			return err
		}
		return nil
	}
	db, err := loadKnownHosts(v.file)
	if err != nil {
		v.refused = err
		return err
	}
	err = db.HostKeyCallback()(v.hostport, remote, key)
	var ke *knownhosts.KeyError
	if errors.As(err, &ke) && len(ke.Want) == 0 && v.acceptNew {
		err = v.record(key)
	}
	if err != nil {
		v.refused = v.explain(err, key)
		return v.refused
	}
	return nil
}

// record appends key for this host to the known_hosts file, unless another
// connection recorded it in the meantime.
func (v *hostKeyVerifier) record(key ssh.PublicKey) error {
	knownHostsMu.Lock()
	defer knownHostsMu.Unlock()
	// Look again under the lock: a concurrent dial may have added it.
	db, err := loadKnownHosts(v.file)
	if err != nil {
		return err
	}
	err = db.HostKeyCallback()(v.hostport, placeholderAddr, key)
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) || len(ke.Want) != 0 {
		return err // nil (now known) or a mismatch/revocation
	}
	if err := os.MkdirAll(filepath.Dir(v.file), 0o700); err != nil {
		return fmt.Errorf("record host key in %s: %w", v.file, err)
	}
	f, err := os.OpenFile(v.file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("record host key in %s: %w", v.file, err)
	}
	if st, err := f.Stat(); err == nil && st.Size() > 0 && !endsWithNewline(v.file, st.Size()) {
		if _, err := f.WriteString("\n"); err != nil {
			f.Close()
			return fmt.Errorf("record host key in %s: %w", v.file, err)
		}
	}
	if err := skknownhosts.WriteKnownHost(f, v.hostport, placeholderAddr, key); err != nil {
		f.Close()
		return fmt.Errorf("record host key in %s: %w", v.file, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("record host key in %s: %w", v.file, err)
	}
	return nil
}

func endsWithNewline(file string, size int64) bool {
	f, err := os.Open(file)
	if err != nil {
		return true
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, size-1); err != nil {
		return true
	}
	return b[0] == '\n'
}

// explain turns a knownhosts error into one of the sentinels with a message
// telling the operator what to do.
func (v *hostKeyVerifier) explain(err error, key ssh.PublicKey) error {
	entry := knownhosts.Normalize(v.hostport)
	fp := ssh.FingerprintSHA256(key)
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case errors.As(err, &re):
		return fmt.Errorf("%w: %s presented %s key %s, which %s marks as revoked; refusing to connect",
			ErrHostKeyChanged, entry, key.Type(), fp, re.Revoked.Filename)
	case errors.As(err, &ke) && len(ke.Want) == 0:
		host, port, _ := net.SplitHostPort(v.hostport)
		return fmt.Errorf("%w: %s is not in %s (it offered %s key %s); "+
			"run with --accept-new-host-keys to record it on first contact, "+
			"or add it yourself after checking it: ssh-keyscan -p %s %s >> %s",
			ErrHostKeyUnknown, entry, v.file, key.Type(), fp, port, host, v.file)
	case errors.As(err, &ke):
		var where []string
		for _, w := range ke.Want {
			where = append(where, fmt.Sprintf("%s:%d (%s)", w.Filename, w.Line, w.Key.Type()))
		}
		return fmt.Errorf("%w: %s presented %s key %s, which does not match %s; "+
			"someone may be intercepting the connection (man-in-the-middle attack), or the host was reinstalled; "+
			"if the change is expected, remove the old entry with: ssh-keygen -R '%s' -f %s",
			ErrHostKeyChanged, entry, key.Type(), fp, strings.Join(where, ", "), entry, v.file)
	}
	return fmt.Errorf("verify host key of %s: %w", entry, err)
}
