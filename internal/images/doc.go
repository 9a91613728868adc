// Package images builds OCI image archives from files, in pure Go, and the
// three test images every skiff node uses since no image can be pulled from a
// public registry:
//
//   - skiff-test/busybox:1.35 — Debian's static /bin/busybox with its applet
//     links and a minimal /etc;
//   - skiff-test/pause:3.10 — the pod sandbox image, our own static pause
//     binary (package images/pause);
//   - skiff-test/testserver:1 — our own static HTTP test server
//     (test/images/testserver).
//
// Inputs: files on the local disk (/bin/busybox) and, for the two Go
// binaries, the skiff source tree and a Go toolchain ("go build" with
// CGO_ENABLED=0). Outputs: OCI image-layout tarballs ("oci-archive") that
// "ctr -n k8s.io images import" accepts; each names its image in the index
// with the org.opencontainers.image.ref.name and io.containerd.image.name
// annotations, fully qualified (docker.io/skiff-test/busybox:1.35), which is
// the name the CRI resolves "skiff-test/busybox:1.35" to.
//
// The package never talks to a registry or to containerd; importing an
// archive is the agent/containerd package's job.
//
// # Usage
//
//	img := images.Image{Ref: "docker.io/library/hello:1", Config: images.Config{Entrypoint: []string{"/hello"}}}
//	img.Layers = []images.Layer{{Files: []images.File{{Path: "hello", Mode: 0o755, Data: bin}}}}
//	err := img.WriteArchive(w) // an oci-archive tarball
//
// or, for the test images:
//
//	paths, err := images.BuildTest(ctx, images.BuildOptions{OutDir: dir})
package images
