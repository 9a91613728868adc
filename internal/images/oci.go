package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"path"
	"runtime"
	"sort"
	"strings"
	"time"
)

// Media types and annotations of the OCI image spec and containerd.
const (
	MediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	MediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	MediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"

	// AnnotationRefName names an image in an OCI index.
	AnnotationRefName = "org.opencontainers.image.ref.name"
	// AnnotationContainerdName is what containerd's importer prefers over
	// AnnotationRefName.
	AnnotationContainerdName = "io.containerd.image.name"
)

// epoch is the modification time of every file in the layers we build, and
// the creation time of the images, so that the same inputs give the same
// digests.
func epoch() time.Time { return time.Unix(0, 0).UTC() }

// File is one entry of a layer. Exactly one of Data (a regular file),
// Linkname (a symbolic link) or Dir is meaningful.
type File struct {
	// Path is relative to the image root, without a leading slash
	// ("bin/sh"). Parent directories are added when missing.
	Path string
	// Mode holds the permission bits (0o755); 0 means 0o644 for files and
	// 0o755 for directories.
	Mode fs.FileMode
	// Data is a regular file's content.
	Data []byte
	// Linkname, when set, makes the entry a symbolic link to it.
	Linkname string
	// Dir makes the entry a directory.
	Dir bool
}

// Layer is one filesystem layer: a set of files.
type Layer struct {
	Files []File
}

// Config is the part of the image configuration a container starts from.
type Config struct {
	Entrypoint []string `json:"Entrypoint,omitempty"`
	Cmd        []string `json:"Cmd,omitempty"`
	Env        []string `json:"Env,omitempty"`
	WorkingDir string   `json:"WorkingDir,omitempty"`
	User       string   `json:"User,omitempty"`
	// ExposedPorts is keyed by "8080/tcp".
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	StopSignal   string              `json:"StopSignal,omitempty"`
}

// Image is an image to build: its fully qualified reference, its layers,
// bottom first, and its runtime configuration.
type Image struct {
	// Ref is the fully qualified name ("docker.io/skiff-test/busybox:1.35").
	Ref    string
	Layers []Layer
	Config Config
	// OS and Architecture default to linux and the running GOARCH.
	OS           string
	Architecture string
}

// Descriptor is an OCI content descriptor.
type Descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Platform    *Platform         `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Platform is an OCI platform.
type Platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

// Manifest is an OCI image manifest.
type Manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        Descriptor   `json:"config"`
	Layers        []Descriptor `json:"layers"`
}

// Index is an OCI image index (index.json).
type Index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []Descriptor `json:"manifests"`
}

// ImageConfig is the OCI image configuration blob.
type ImageConfig struct {
	Created      time.Time `json:"created"`
	Architecture string    `json:"architecture"`
	OS           string    `json:"os"`
	Config       Config    `json:"config"`
	RootFS       RootFS    `json:"rootfs"`
	History      []History `json:"history,omitempty"`
}

// RootFS lists the uncompressed layer digests of an image configuration.
type RootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

// History is one entry of an image configuration's history.
type History struct {
	Created   time.Time `json:"created"`
	CreatedBy string    `json:"created_by,omitempty"`
}

// blob is one content-addressed object of the archive.
type blob struct {
	digest string
	data   []byte
}

func newBlob(data []byte) blob {
	sum := sha256.Sum256(data)
	return blob{digest: "sha256:" + hex.EncodeToString(sum[:]), data: data}
}

// WriteArchive writes img as an OCI image-layout tarball (oci-layout,
// index.json, blobs/sha256/...) to w. The output depends only on img.
func (img Image) WriteArchive(w io.Writer) error {
	if img.Ref == "" {
		return fmt.Errorf("images: writing archive: empty image reference")
	}
	osName, arch := img.OS, img.Architecture
	if osName == "" {
		osName = "linux"
	}
	if arch == "" {
		arch = runtime.GOARCH
	}
	var blobs []blob
	cfg := ImageConfig{
		Created:      epoch(),
		Architecture: arch,
		OS:           osName,
		Config:       img.Config,
		RootFS:       RootFS{Type: "layers"},
	}
	var layerDescs []Descriptor
	for i, l := range img.Layers {
		raw, err := l.tar()
		if err != nil {
			return fmt.Errorf("images: building layer %d of %s: %w", i, img.Ref, err)
		}
		diff := newBlob(raw)
		gz, err := gzipBytes(raw)
		if err != nil {
			return fmt.Errorf("images: compressing layer %d of %s: %w", i, img.Ref, err)
		}
		b := newBlob(gz)
		blobs = append(blobs, b)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, diff.digest)
		cfg.History = append(cfg.History, History{Created: epoch(), CreatedBy: "skiff images"})
		layerDescs = append(layerDescs, Descriptor{MediaType: MediaTypeLayer, Digest: b.digest, Size: int64(len(gz))})
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("images: encoding config of %s: %w", img.Ref, err)
	}
	cfgBlob := newBlob(cfgJSON)
	blobs = append(blobs, cfgBlob)
	if layerDescs == nil {
		layerDescs = []Descriptor{}
	}
	man := Manifest{
		SchemaVersion: 2,
		MediaType:     MediaTypeManifest,
		Config:        Descriptor{MediaType: MediaTypeConfig, Digest: cfgBlob.digest, Size: int64(len(cfgJSON))},
		Layers:        layerDescs,
	}
	manJSON, err := json.Marshal(man)
	if err != nil {
		return fmt.Errorf("images: encoding manifest of %s: %w", img.Ref, err)
	}
	manBlob := newBlob(manJSON)
	blobs = append(blobs, manBlob)
	idx := Index{
		SchemaVersion: 2,
		MediaType:     MediaTypeIndex,
		Manifests: []Descriptor{{
			MediaType: MediaTypeManifest,
			Digest:    manBlob.digest,
			Size:      int64(len(manJSON)),
			Platform:  &Platform{Architecture: arch, OS: osName},
			Annotations: map[string]string{
				AnnotationRefName:        img.Ref,
				AnnotationContainerdName: img.Ref,
			},
		}},
	}
	idxJSON, err := json.Marshal(idx)
	if err != nil {
		return fmt.Errorf("images: encoding index of %s: %w", img.Ref, err)
	}

	tw := tar.NewWriter(w)
	put := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), ModTime: epoch(), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	dirs := []string{"blobs/", "blobs/sha256/"}
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Name: d, Mode: 0o755, ModTime: epoch(), Typeflag: tar.TypeDir}); err != nil {
			return fmt.Errorf("images: writing archive of %s: %w", img.Ref, err)
		}
	}
	if err := put("oci-layout", 0o644, []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return fmt.Errorf("images: writing archive of %s: %w", img.Ref, err)
	}
	if err := put("index.json", 0o644, idxJSON); err != nil {
		return fmt.Errorf("images: writing archive of %s: %w", img.Ref, err)
	}
	seen := map[string]bool{}
	for _, b := range blobs {
		if seen[b.digest] {
			continue
		}
		seen[b.digest] = true
		if err := put("blobs/sha256/"+strings.TrimPrefix(b.digest, "sha256:"), 0o644, b.data); err != nil {
			return fmt.Errorf("images: writing archive of %s: %w", img.Ref, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("images: writing archive of %s: %w", img.Ref, err)
	}
	return nil
}

// tar renders the layer as an uncompressed tarball, parents before
// children, sorted by path.
func (l Layer) tar() ([]byte, error) {
	entries := map[string]File{}
	for _, f := range l.Files {
		p := path.Clean(strings.TrimPrefix(f.Path, "/"))
		if p == "." || p == "" || strings.HasPrefix(p, "../") || p == ".." {
			return nil, fmt.Errorf("invalid path %q", f.Path)
		}
		if _, dup := entries[p]; dup {
			return nil, fmt.Errorf("duplicate path %q", p)
		}
		f.Path = p
		entries[p] = f
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if _, ok := entries[d]; !ok {
				entries[d] = File{Path: d, Dir: true}
			}
		}
	}
	// A parent directory implied by a later file may already be a
	// non-directory entry.
	for p := range entries {
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if !entries[d].Dir {
				return nil, fmt.Errorf("path %q needs %q to be a directory", p, d)
			}
		}
	}
	names := make([]string, 0, len(entries))
	for p := range entries {
		names = append(names, p)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range names {
		f := entries[p]
		h := &tar.Header{Name: p, ModTime: epoch(), Uname: "root", Gname: "root", Format: tar.FormatPAX}
		switch {
		case f.Dir:
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, p+"/", modeOr(f.Mode, 0o755)
		case f.Linkname != "":
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, f.Linkname, 0o777
		default:
			h.Typeflag, h.Size, h.Mode = tar.TypeReg, int64(len(f.Data)), modeOr(f.Mode, 0o644)
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("writing %q: %w", p, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.Data); err != nil {
				return nil, fmt.Errorf("writing %q: %w", p, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// modeOr returns the tar mode of m's permission, setuid, setgid and sticky
// bits, or def when m has none.
func modeOr(m fs.FileMode, def int64) int64 {
	if m == 0 {
		return def
	}
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}

func gzipBytes(raw []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
