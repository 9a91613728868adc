package volumes

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// readVolume returns what a reader sees through dir's visible names
// (following the symlinks), by slash path, and mode.
func readVolume(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") {
			continue
		}
		root := filepath.Join(dir, e.Name())
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := os.Stat(p)
			if err != nil {
				return err
			}
			if fi.IsDir() {
				if p == root {
					// a symlink to a directory: walk its target
					sub := readVolume(t, p)
					for k, v := range sub {
						out[e.Name()+"/"+k] = v
					}
					return filepath.SkipDir
				}
				return nil
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			out[filepath.ToSlash(rel)] = fi.Mode().Perm().String() + " " + string(data)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// dotEntries lists the names starting with ".." in dir.
func dotEntries(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

func TestWriteAtomic(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "vol")
	now := time.Date(2026, 11, 22, 7, 9, 35, 0, time.UTC)

	steps := []struct {
		name        string
		p           payload
		wantChanged bool
		want        map[string]string
	}{
		{
			name:        "first write",
			p:           payload{"a": {[]byte("1"), 0o644}, "sub/b": {[]byte("2"), 0o600}},
			wantChanged: true,
			want:        map[string]string{"a": "-rw-r--r-- 1", "sub/b": "-rw------- 2"},
		},
		{
			name: "same payload is not rewritten",
			p:    payload{"a": {[]byte("1"), 0o644}, "sub/b": {[]byte("2"), 0o600}},
			want: map[string]string{"a": "-rw-r--r-- 1", "sub/b": "-rw------- 2"},
		},
		{
			name:        "a mode change is a change",
			p:           payload{"a": {[]byte("1"), 0o400}, "sub/b": {[]byte("2"), 0o600}},
			wantChanged: true,
			want:        map[string]string{"a": "-r-------- 1", "sub/b": "-rw------- 2"},
		},
		{
			name:        "update replaces content and drops old keys",
			p:           payload{"a": {[]byte("new"), 0o644}, "c": {[]byte("3"), 0o644}},
			wantChanged: true,
			want:        map[string]string{"a": "-rw-r--r-- new", "c": "-rw-r--r-- 3"},
		},
		{
			name:        "empty payload",
			p:           payload{},
			wantChanged: true,
			want:        map[string]string{},
		},
	}
	for i, s := range steps {
		changed, err := writeAtomic(dir, s.p, now.Add(time.Duration(i)*time.Second), nil)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if changed != s.wantChanged {
			t.Errorf("%s: changed = %v, want %v", s.name, changed, s.wantChanged)
		}
		if diff := cmp.Diff(s.want, readVolume(t, dir)); diff != "" {
			t.Errorf("%s: content (-want +got):\n%s", s.name, diff)
		}
		// Exactly one timestamped dir and ..data pointing at it.
		dots := dotEntries(t, dir)
		if len(dots) != 2 || dots[1] != dataDirName {
			t.Fatalf("%s: dot entries = %v, want one timestamped dir and ..data", s.name, dots)
		}
		target, err := os.Readlink(filepath.Join(dir, dataDirName))
		if err != nil || target != dots[0] || !strings.HasPrefix(target, "..2026_11_22_07_09_") {
			t.Errorf("%s: ..data -> %q (%v), want %q", s.name, target, err, dots[0])
		}
		// Visible names are symlinks through ..data.
		for k := range s.want {
			top, _, _ := strings.Cut(k, "/")
			link, err := os.Readlink(filepath.Join(dir, top))
			if err != nil || link != filepath.Join(dataDirName, top) {
				t.Errorf("%s: %s -> %q (%v), want ..data/%s", s.name, top, link, err, top)
			}
		}
	}
}

func TestWriteAtomicRejectsBadPaths(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"", "/abs", "../up", "a/../../b", "..data"} {
		t.Run(p, func(t *testing.T) {
			if _, err := writeAtomic(t.TempDir(), payload{p: {[]byte("x"), 0o644}}, time.Now(), nil); err == nil {
				t.Errorf("writeAtomic with path %q: no error", p)
			}
		})
	}
}
