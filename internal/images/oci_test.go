package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// parsed is an archive read back and checked: every digest and size matches.
type parsed struct {
	files  []string // archive entries
	index  Index
	man    Manifest
	config ImageConfig
	// layers maps each layer's entries to a short description:
	// "dir 755", "file 644 <size>", "link -> target".
	layers []map[string]string
}

func parseArchive(t *testing.T, archive []byte) parsed {
	t.Helper()
	var p parsed
	contents := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading archive: %v", err)
		}
		p.files = append(p.files, h.Name)
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("reading %s: %v", h.Name, err)
		}
		contents[h.Name] = b
	}
	blob := func(d Descriptor) []byte {
		t.Helper()
		b, ok := contents["blobs/sha256/"+strings.TrimPrefix(d.Digest, "sha256:")]
		if !ok {
			t.Fatalf("blob %s missing", d.Digest)
		}
		if got := digestOf(b); got != d.Digest {
			t.Fatalf("blob %s has digest %s", d.Digest, got)
		}
		if int64(len(b)) != d.Size {
			t.Fatalf("blob %s has size %d, descriptor says %d", d.Digest, len(b), d.Size)
		}
		return b
	}
	if got := string(contents["oci-layout"]); got != `{"imageLayoutVersion":"1.0.0"}` {
		t.Fatalf("oci-layout = %q", got)
	}
	if err := json.Unmarshal(contents["index.json"], &p.index); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	if len(p.index.Manifests) != 1 {
		t.Fatalf("index has %d manifests, want 1", len(p.index.Manifests))
	}
	if err := json.Unmarshal(blob(p.index.Manifests[0]), &p.man); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	if err := json.Unmarshal(blob(p.man.Config), &p.config); err != nil {
		t.Fatalf("config: %v", err)
	}
	if len(p.config.RootFS.DiffIDs) != len(p.man.Layers) {
		t.Fatalf("%d diff_ids for %d layers", len(p.config.RootFS.DiffIDs), len(p.man.Layers))
	}
	for i, l := range p.man.Layers {
		zr, err := gzip.NewReader(bytes.NewReader(blob(l)))
		if err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		if got := digestOf(raw); got != p.config.RootFS.DiffIDs[i] {
			t.Fatalf("layer %d diff_id %s, config says %s", i, got, p.config.RootFS.DiffIDs[i])
		}
		entries := map[string]string{}
		lr := tar.NewReader(bytes.NewReader(raw))
		for {
			h, err := lr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("layer %d: %v", i, err)
			}
			switch h.Typeflag {
			case tar.TypeDir:
				entries[h.Name] = "dir " + octal(h.Mode)
			case tar.TypeSymlink:
				entries[h.Name] = "link -> " + h.Linkname
			case tar.TypeReg:
				entries[h.Name] = "file " + octal(h.Mode) + " " + itoa(h.Size)
			default:
				entries[h.Name] = "other"
			}
		}
		p.layers = append(p.layers, entries)
	}
	sort.Strings(p.files)
	return p
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func octal(m int64) string { return strconv.FormatInt(m, 8) }
func itoa(n int64) string  { return strconv.FormatInt(n, 10) }

func TestWriteArchive(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		img        Image
		wantLayers []map[string]string
		wantConfig Config
	}{
		{
			name: "files links and implied directories",
			img: Image{
				Ref: "docker.io/library/x:1",
				Layers: []Layer{{Files: []File{
					{Path: "/bin/tool", Mode: 0o755, Data: []byte("#!")},
					{Path: "usr/bin/alias", Linkname: "/bin/tool"},
					{Path: "tmp", Dir: true, Mode: 0o777},
					{Path: "etc/passwd", Data: []byte("root")},
				}}},
				Config: Config{Entrypoint: []string{"/bin/tool"}, Cmd: []string{"-v"}, Env: []string{"PATH=/bin"}},
			},
			wantLayers: []map[string]string{{
				"bin/":          "dir 755",
				"bin/tool":      "file 755 2",
				"etc/":          "dir 755",
				"etc/passwd":    "file 644 4",
				"tmp/":          "dir 777",
				"usr/":          "dir 755",
				"usr/bin/":      "dir 755",
				"usr/bin/alias": "link -> /bin/tool",
			}},
			wantConfig: Config{Entrypoint: []string{"/bin/tool"}, Cmd: []string{"-v"}, Env: []string{"PATH=/bin"}},
		},
		{
			name: "two layers",
			img: Image{
				Ref:    "docker.io/library/y:2",
				Layers: []Layer{{Files: []File{{Path: "a", Data: []byte("1")}}}, {Files: []File{{Path: "b", Data: []byte("22")}}}},
			},
			wantLayers: []map[string]string{{"a": "file 644 1"}, {"b": "file 644 2"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			if err := tt.img.WriteArchive(&buf); err != nil {
				t.Fatalf("WriteArchive: %v", err)
			}
			p := parseArchive(t, buf.Bytes())
			if diff := cmp.Diff(tt.wantLayers, p.layers); diff != "" {
				t.Errorf("layers (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantConfig, p.config.Config); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
			if p.config.OS != "linux" || p.config.Architecture != runtime.GOARCH {
				t.Errorf("platform %s/%s, want linux/%s", p.config.OS, p.config.Architecture, runtime.GOARCH)
			}
			m := p.index.Manifests[0]
			wantAnn := map[string]string{AnnotationRefName: tt.img.Ref, AnnotationContainerdName: tt.img.Ref}
			if diff := cmp.Diff(wantAnn, m.Annotations); diff != "" {
				t.Errorf("index annotations (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(&Platform{Architecture: runtime.GOARCH, OS: "linux"}, m.Platform); diff != "" {
				t.Errorf("index platform (-want +got):\n%s", diff)
			}
			if p.index.MediaType != MediaTypeIndex || m.MediaType != MediaTypeManifest || p.man.Config.MediaType != MediaTypeConfig {
				t.Errorf("media types: index %q, manifest %q, config %q", p.index.MediaType, m.MediaType, p.man.Config.MediaType)
			}
			for _, l := range p.man.Layers {
				if l.MediaType != MediaTypeLayer {
					t.Errorf("layer media type %q", l.MediaType)
				}
			}
			// Same input, same bytes.
			var again bytes.Buffer
			if err := tt.img.WriteArchive(&again); err != nil {
				t.Fatalf("WriteArchive again: %v", err)
			}
			if !bytes.Equal(buf.Bytes(), again.Bytes()) {
				t.Errorf("archive is not reproducible")
			}
		})
	}
}

func TestWriteArchiveErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		img  Image
		want string
	}{
		{name: "no ref", img: Image{}, want: "empty image reference"},
		{name: "duplicate", img: Image{Ref: "r", Layers: []Layer{{Files: []File{{Path: "a"}, {Path: "/a"}}}}}, want: `duplicate path "a"`},
		{name: "escape", img: Image{Ref: "r", Layers: []Layer{{Files: []File{{Path: "../a"}}}}}, want: `invalid path "../a"`},
		{name: "file as parent", img: Image{Ref: "r", Layers: []Layer{{Files: []File{{Path: "a"}, {Path: "a/b"}}}}}, want: `needs "a" to be a directory`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.img.WriteArchive(io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("WriteArchive error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestBuildTest(t *testing.T) {
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("skipping: /bin/busybox is absent (apt-get install busybox-static)")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("skipping: no go command on PATH")
	}
	dir := t.TempDir()
	got, err := BuildTest(context.Background(), BuildOptions{OutDir: dir})
	if err != nil {
		t.Fatalf("BuildTest: %v", err)
	}
	tests := []struct {
		image      string
		ref        string
		entries    map[string]string // entries that must be in the layer, exactly
		wantConfig Config
	}{
		{
			image: BusyboxImage, ref: BusyboxRef,
			entries: map[string]string{
				"bin/sh": "link -> /bin/busybox", "bin/echo": "link -> /bin/busybox", "bin/sleep": "link -> /bin/busybox",
				"bin/cat": "link -> /bin/busybox", "bin/ls": "link -> /bin/busybox", "usr/bin/wget": "link -> /bin/busybox",
				"usr/bin/timeout": "link -> /bin/busybox", "etc/passwd": "file 644 82", "tmp/": "dir 1777",
			},
			wantConfig: Config{Cmd: []string{"sh"}, Env: []string{defaultPath}, WorkingDir: "/"},
		},
		{
			image: PauseImage, ref: PauseRef,
			entries:    map[string]string{"etc/group": "file 644 27"},
			wantConfig: Config{Entrypoint: []string{"/pause"}, Env: []string{defaultPath}, WorkingDir: "/", StopSignal: "SIGINT"},
		},
		{
			image: TestServerImage, ref: TestServerRef,
			entries: map[string]string{"etc/hosts": "file 644 61"},
			wantConfig: Config{Entrypoint: []string{"/testserver"}, Env: []string{defaultPath}, WorkingDir: "/",
				ExposedPorts: map[string]struct{}{"8080/tcp": {}, "9000/tcp": {}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.image, func(t *testing.T) {
			b, err := os.ReadFile(got[tt.image])
			if err != nil {
				t.Fatalf("reading archive: %v", err)
			}
			p := parseArchive(t, b)
			if diff := cmp.Diff(tt.ref, p.index.Manifests[0].Annotations[AnnotationRefName]); diff != "" {
				t.Errorf("ref name (-want +got):\n%s", diff)
			}
			if len(p.layers) != 1 {
				t.Fatalf("%d layers, want 1", len(p.layers))
			}
			gotEntries := map[string]string{}
			for k := range tt.entries {
				gotEntries[k] = p.layers[0][k]
			}
			if diff := cmp.Diff(tt.entries, gotEntries); diff != "" {
				t.Errorf("layer entries (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantConfig, p.config.Config); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
			for _, ep := range append(tt.wantConfig.Entrypoint, "bin/busybox") {
				name := strings.TrimPrefix(ep, "/")
				if d, ok := p.layers[0][name]; ok && !strings.HasPrefix(d, "file 755 ") {
					t.Errorf("%s is %q, want an executable file", name, d)
				}
			}
		})
	}
}
