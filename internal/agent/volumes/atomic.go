package volumes

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// The layout of an atomically updated volume directory, as upstream's:
//
//	DIR/..2026_11_22_07_09_35.123456789/       the current content (real files)
//	DIR/..data -> ..2026_11_22_07_09_35.123456789
//	DIR/<first path element> -> ..data/<first path element>
//
// A writer builds a fresh timestamped directory, then swaps ..data to it
// with a rename, which is atomic, so a reader through the visible symlinks
// sees either the whole old payload or the whole new one, never a mix.
const (
	dataDirName    = "..data"
	newDataDirName = "..data_tmp"
)

// file is one file of a payload: its content and permission bits.
type file struct {
	Data []byte
	Mode fs.FileMode
}

// payload maps a relative, slash-separated path to its file.
type payload map[string]file

// digest is a stable hash of a payload, paths and modes included.
func (p payload) digest() [32]byte {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s\x00%o\x00%d\x00", k, p[k].Mode, len(p[k].Data))
		h.Write(p[k].Data)
	}
	var d [32]byte
	copy(d[:], h.Sum(nil))
	return d
}

// validatePayloadPath rejects paths that would escape the volume or clash
// with the writer's own names.
func validatePayloadPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case path.IsAbs(p):
		return fmt.Errorf("path %q must be relative", p)
	case strings.HasPrefix(p, ".."):
		return fmt.Errorf("path %q must not start with '..'", p)
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return fmt.Errorf("path %q must not contain '..'", p)
		}
	}
	return nil
}

// writeAtomic makes dir hold exactly p, through the ..data layout. now
// names the new timestamped directory. It returns changed=false when dir
// already held p (nothing written).
//
// With gid, the files and directories written are given to that group
// (the pod's fsGroup).
func writeAtomic(dir string, p payload, now time.Time, gid *int64) (changed bool, err error) {
	clean := make(payload, len(p))
	for k, f := range p {
		if err := validatePayloadPath(k); err != nil {
			return false, err
		}
		clean[path.Clean(k)] = f
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	oldTS, err := os.Readlink(filepath.Join(dir, dataDirName))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("reading %s: %w", dataDirName, err)
	}
	if oldTS != "" {
		same, err := sameContent(filepath.Join(dir, oldTS), clean)
		if err != nil {
			return false, err
		}
		if same {
			// The visible links may still be missing if a previous
			// write was interrupted; make sure of them.
			return false, linkVisible(dir, clean)
		}
	}

	tsDir, err := os.MkdirTemp(dir, now.UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return false, err
	}
	if err := os.Chmod(tsDir, 0o755); err != nil {
		return false, err
	}
	tsName := filepath.Base(tsDir)
	for k, f := range clean {
		full := filepath.Join(tsDir, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			os.RemoveAll(tsDir)
			return false, err
		}
		if err := os.WriteFile(full, f.Data, f.Mode); err != nil {
			os.RemoveAll(tsDir)
			return false, err
		}
		// WriteFile's mode is subject to the umask.
		if err := os.Chmod(full, f.Mode); err != nil {
			os.RemoveAll(tsDir)
			return false, err
		}
	}
	if gid != nil {
		err := filepath.WalkDir(tsDir, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, -1, int(*gid))
		})
		if err != nil {
			os.RemoveAll(tsDir)
			return false, fmt.Errorf("giving %s to fsGroup %d: %w", tsDir, *gid, err)
		}
	}

	tmpLink := filepath.Join(dir, newDataDirName)
	if err := os.Remove(tmpLink); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if err := os.Symlink(tsName, tmpLink); err != nil {
		os.RemoveAll(tsDir)
		return false, err
	}
	if err := os.Rename(tmpLink, filepath.Join(dir, dataDirName)); err != nil {
		os.Remove(tmpLink)
		os.RemoveAll(tsDir)
		return false, fmt.Errorf("swapping %s: %w", dataDirName, err)
	}
	if err := linkVisible(dir, clean); err != nil {
		return true, err
	}
	return true, removeStale(dir, tsName, clean)
}

// topLevel returns the first path elements of the payload's paths.
func topLevel(p payload) map[string]bool {
	top := make(map[string]bool, len(p))
	for k := range p {
		first, _, _ := strings.Cut(k, "/")
		top[first] = true
	}
	return top
}

// linkVisible creates DIR/<name> -> ..data/<name> for every top-level name.
func linkVisible(dir string, p payload) error {
	for name := range topLevel(p) {
		link := filepath.Join(dir, name)
		target := filepath.Join(dataDirName, name)
		if got, err := os.Readlink(link); err == nil && got == target {
			continue
		}
		if err := os.RemoveAll(link); err != nil {
			return err
		}
		if err := os.Symlink(target, link); err != nil {
			return err
		}
	}
	return nil
}

// removeStale removes the old timestamped directories and the visible
// names no longer in the payload.
func removeStale(dir, current string, p payload) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	top := topLevel(p)
	var errs []error
	for _, e := range entries {
		name := e.Name()
		switch {
		case name == dataDirName || name == current || top[name]:
			continue
		case strings.HasPrefix(name, ".."):
			if e.IsDir() || name == newDataDirName {
				errs = append(errs, os.RemoveAll(filepath.Join(dir, name)))
			}
		case e.Type()&fs.ModeSymlink != 0:
			// Only our own visible links are removed; anything else
			// in the directory is left alone.
			if t, err := os.Readlink(filepath.Join(dir, name)); err == nil && strings.HasPrefix(t, dataDirName+"/") {
				errs = append(errs, os.Remove(filepath.Join(dir, name)))
			}
		}
	}
	return errors.Join(errs...)
}

// sameContent reports whether the directory ts holds exactly p.
func sameContent(ts string, p payload) (bool, error) {
	n := 0
	same := true
	err := filepath.WalkDir(ts, func(full string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(ts, full)
		if err != nil {
			return err
		}
		f, ok := p[filepath.ToSlash(rel)]
		if !ok {
			same = false
			return filepath.SkipAll
		}
		n++
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm() != f.Mode.Perm() || info.Size() != int64(len(f.Data)) {
			same = false
			return filepath.SkipAll
		}
		data, err := os.ReadFile(full)
		if err != nil {
			return err
		}
		if !bytes.Equal(data, f.Data) {
			same = false
			return filepath.SkipAll
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", ts, err)
	}
	return same && n == len(p), nil
}
