package volumes

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

const tmpfsMagic = 0x01021994

func statfs(t *testing.T, p string) syscall.Statfs_t {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(p, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestTmpfsVolumes(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	m, _ := newTestManager(t, fixtures()...)
	ctx := context.Background()
	pod := testPod(
		v1.Volume{Name: "mem", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: v1.StorageMediumMemory, SizeLimit: ptr(resource.MustParse("8Mi"))}}},
		v1.Volume{Name: "disk", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
		v1.Volume{Name: "sec", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "sec"}}},
	)
	var paths map[string]string
	for i := 0; i < 2; i++ { // the second sync must not stack mounts
		var err error
		if paths, err = m.Setup(ctx, pod); err != nil {
			t.Fatal(err)
		}
	}
	mems := statfs(t, paths["mem"])
	if mems.Type != tmpfsMagic {
		t.Errorf("memory emptyDir: filesystem type %#x, want tmpfs", mems.Type)
	}
	if size := int64(mems.Blocks) * mems.Bsize; size != 8<<20 {
		t.Errorf("memory emptyDir: size %d, want %d", size, 8<<20)
	}
	if fi, err := os.Stat(paths["mem"]); err != nil || fi.Mode().Perm() != 0o777 {
		t.Errorf("memory emptyDir mode: %v %v, want 0777", fi, err)
	}
	if st := statfs(t, paths["disk"]); st.Type == tmpfsMagic && statfs(t, m.cfg.RootDir).Type != tmpfsMagic {
		t.Errorf("disk emptyDir is a tmpfs")
	}
	if st := statfs(t, paths["sec"]); st.Type != tmpfsMagic {
		t.Errorf("secret volume: filesystem type %#x, want tmpfs", st.Type)
	}
	mps, err := mountsUnder(m.PodDir(pod.UID))
	if err != nil {
		t.Fatal(err)
	}
	if len(mps) != 2 {
		t.Errorf("mounts under the pod dir: %v, want 2", mps)
	}
	if got := readVolume(t, paths["sec"])["user"]; got != "-rw-r--r-- admin" {
		t.Errorf("secret file user = %q", got)
	}

	if err := m.Teardown(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
	if mps, _ := mountsUnder(m.PodDir(pod.UID)); len(mps) != 0 {
		t.Errorf("mounts left after Teardown: %v", mps)
	}
	if _, err := os.Stat(m.PodDir(pod.UID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pod dir after Teardown: %v", err)
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`/a/b`:           "/a/b",
		`/with\040space`: "/with space",
		`/tab\011x\134y`: "/tab\tx\\y",
		`/trailing\04`:   `/trailing\04`,
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestMemoryVolumesWithoutMountPrivilege: without the right to mount, a
// secret volume is a directory only root can read, and a memory emptyDir
// is an error naming the volume.
func TestMemoryVolumesWithoutMountPrivilege(t *testing.T) {
	t.Parallel()
	m, _ := newTestManager(t, fixtures()...)
	m.tmpfs = func(dir string, _ int64, _ os.FileMode) error {
		return &os.PathError{Op: "mount", Path: dir, Err: syscall.EPERM}
	}
	pod := testPod(
		v1.Volume{Name: "sec", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "sec"}}},
		v1.Volume{Name: "mem", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: v1.StorageMediumMemory}}},
	)
	paths, err := m.Setup(context.Background(), pod)
	if err == nil || !errors.Is(err, syscall.EPERM) || err.Error()[:14] != `volume "mem": ` {
		t.Errorf("Setup error = %v, want EPERM for volume mem", err)
	}
	fi, err := os.Stat(paths["sec"])
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("secret dir: %v %v, want mode 0700", fi, err)
	}
	if got := readVolume(t, paths["sec"])["pass"]; got != "-rw-r--r-- s3cret" {
		t.Errorf("secret file pass = %q", got)
	}
}
