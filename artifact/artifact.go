// Package artifact deploys software artifacts: it fetches them over
// http(s) or from the controller, verifies their sha256, unpacks archives
// safely into a stream of regular files, directories and links that stay
// inside the release, and lays releases out on a host as
// <dest>/releases/<id>/ with the live one the symlink <dest>/current.
//
// The engine reaches it through the small interface rollout.Artifacts;
// Remote is the implementation over a host's session.
package artifact

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"

	"github.com/rollout-sh/rollout/plan"
)

// Limits bound what one artifact may cost.
type Limits struct {
	Download int64 // bytes of the artifact itself
	Unpacked int64 // bytes of all files unpacked from an archive
	Entries  int   // entries of an archive
}

// DefaultLimits are the limits of Remote when it sets none.
var DefaultLimits = Limits{Download: 2 << 30, Unpacked: 8 << 30, Entries: 200_000}

// ErrChecksum is a download whose sha256 is not the pinned one.
var ErrChecksum = errors.New("sha256 mismatch")

// ErrUnsafe is an archive holding an entry that would land outside the
// release directory, a link out of it, a device, or too much.
var ErrUnsafe = errors.New("unsafe archive")

// ChecksumError is a download whose bytes are not the pinned ones.
type ChecksumError struct {
	Source, Expected, Actual string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("%s: sha256 mismatch: expected %s, actual %s", e.Source, e.Expected, e.Actual)
}

// Unwrap makes it ErrChecksum.
func (e *ChecksumError) Unwrap() error { return ErrChecksum }

// ID is the release id of an artifact with this sha256: its first 16 hex
// digits. The same bytes are the same release on every host and every
// revision, so going back to them needs no download.
func ID(sum string) string {
	if len(sum) > 16 {
		return sum[:16]
	}
	return sum
}

// Releases is the directory holding the artifact's releases.
func Releases(a plan.ArtifactSpec) string { return path.Join(a.Dest, "releases") }

// ReleaseDir is the directory of the artifact's release on the host.
func ReleaseDir(a plan.ArtifactSpec) string { return path.Join(Releases(a), ID(a.SHA256)) }

// Current is the symlink naming the live release.
func Current(a plan.ArtifactSpec) string { return path.Join(a.Dest, "current") }

// LinkTarget is what Current holds when the release of sum is live: a
// path relative to dest, so the tree can be moved.
func LinkTarget(sum string) string { return "releases/" + ID(sum) }

// LinkHash is the hash a look at a host reports for a symlink to a
// directory (journal's hash script: the sha256 of the link's target
// text), for the link to the release of sum: it stands in current.json's
// files for the artifact, so skip and drift work as for files.
func LinkHash(sum string) string {
	h := sha256.Sum256([]byte(LinkTarget(sum)))
	return hex.EncodeToString(h[:])
}

// Sum is the sha256 of data, in hex.
func Sum(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}
