package volumes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestSetupContentVolumes(t *testing.T) {
	t.Parallel()
	m, _ := newTestManager(t, fixtures()...)
	ctx := context.Background()

	tests := []struct {
		name    string
		vol     v1.VolumeSource
		plugin  string
		want    map[string]string
		wantErr string
	}{
		{
			name:   "configmap all keys",
			vol:    v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}},
			plugin: pluginConfigMap,
			want: map[string]string{
				"a": "-rw-r--r-- alpha", "b": "-rw-r--r-- beta", "URL": "-rw-r--r-- http://$(HOST)", "bin": "-rw-r--r-- \x00\x01\x02",
			},
		},
		{
			name: "configmap items, modes",
			vol: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
				LocalObjectReference: v1.LocalObjectReference{Name: "cfg"},
				DefaultMode:          ptr(int32(0o440)),
				Items:                []v1.KeyToPath{{Key: "a", Path: "dir/first"}, {Key: "b", Path: "second", Mode: ptr(int32(0o600))}},
			}},
			plugin: pluginConfigMap,
			want:   map[string]string{"dir/first": "-r--r----- alpha", "second": "-rw------- beta"},
		},
		{
			name:    "configmap missing",
			vol:     v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "nope"}}},
			wantErr: `volume "v": configmap "nope" not found`,
		},
		{
			name:   "configmap missing optional",
			vol:    v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "nope"}, Optional: ptr(true)}},
			plugin: pluginConfigMap,
			want:   map[string]string{},
		},
		{
			name:    "configmap missing key",
			vol:     v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}, Items: []v1.KeyToPath{{Key: "zz", Path: "zz"}}}},
			wantErr: `volume "v": configmap "cfg" has no key "zz"`,
		},
		{
			name:   "secret",
			vol:    v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "sec", DefaultMode: ptr(int32(0o400))}},
			plugin: pluginSecret,
			want:   map[string]string{"user": "-r-------- admin", "pass": "-r-------- s3cret"},
		},
		{
			name:    "secret missing",
			vol:     v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "gone"}},
			wantErr: `volume "v": secret "gone" not found`,
		},
		{
			name: "downward API",
			vol: v1.VolumeSource{DownwardAPI: &v1.DownwardAPIVolumeSource{Items: []v1.DownwardAPIVolumeFile{
				{Path: "name", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}},
				{Path: "ns", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.namespace"}},
				{Path: "uid", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.uid"}},
				{Path: "labels", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
				{Path: "annotations", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.annotations"}},
				{Path: "app", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}},
				{Path: "mem", ResourceFieldRef: &v1.ResourceFieldSelector{ContainerName: "main", Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}},
				{Path: "cpu", ResourceFieldRef: &v1.ResourceFieldSelector{ContainerName: "main", Resource: "limits.cpu"}},
				{Path: "cpureq", ResourceFieldRef: &v1.ResourceFieldSelector{ContainerName: "main", Resource: "requests.cpu", Divisor: resource.MustParse("1m")}},
			}}},
			plugin: pluginDownward,
			want: map[string]string{
				"name": "-rw-r--r-- web", "ns": "-rw-r--r-- ns", "uid": "-rw-r--r-- uid-1",
				"labels":      "-rw-r--r-- app=\"web\"\ntier=\"front\"",
				"annotations": "-rw-r--r-- note=\"say \\\"hi\\\"\"",
				"app":         "-rw-r--r-- web",
				"mem":         "-rw-r--r-- 64",
				"cpu":         "-rw-r--r-- 2", // no limit: the node's allocatable
				"cpureq":      "-rw-r--r-- 250",
			},
		},
		{
			name: "projected",
			vol: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{
				DefaultMode: ptr(int32(0o444)),
				Sources: []v1.VolumeProjection{
					{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr(int64(3600))}},
					{ConfigMap: &v1.ConfigMapProjection{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}, Items: []v1.KeyToPath{{Key: "a", Path: "ca.crt"}}}},
					{ConfigMap: &v1.ConfigMapProjection{LocalObjectReference: v1.LocalObjectReference{Name: "absent"}, Optional: ptr(true)}},
					{Secret: &v1.SecretProjection{LocalObjectReference: v1.LocalObjectReference{Name: "sec"}, Items: []v1.KeyToPath{{Key: "user", Path: "user"}}}},
					{DownwardAPI: &v1.DownwardAPIProjection{Items: []v1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
				},
			}},
			plugin: pluginProjected,
			want: map[string]string{
				"token": "-r--r--r-- token-builder-1", "ca.crt": "-r--r--r-- alpha",
				"user": "-r--r--r-- admin", "namespace": "-r--r--r-- ns",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := testPod(v1.Volume{Name: "v", VolumeSource: tt.vol})
			paths, err := m.Setup(ctx, pod)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Setup error = %v, want %q", err, tt.wantErr)
				}
				if tt.wantErr != "" && strings.Contains(tt.wantErr, "not found") && !apierrors.IsNotFound(err) {
					t.Errorf("apierrors.IsNotFound(%v) = false", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Setup: %v", err)
			}
			wantDir := filepath.Join(m.cfg.RootDir, string(pod.UID), "volumes", tt.plugin, "v")
			if diff := cmp.Diff(map[string]string{"v": wantDir}, paths); diff != "" {
				t.Errorf("paths (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, readVolume(t, wantDir)); diff != "" {
				t.Errorf("content (-want +got):\n%s", diff)
			}
			// A second sync is a no-op.
			if _, err := m.Setup(ctx, pod); err != nil {
				t.Fatalf("second Setup: %v", err)
			}
			if diff := cmp.Diff(tt.want, readVolume(t, wantDir)); diff != "" {
				t.Errorf("content after second Setup (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSetupUpdatesConfigMap(t *testing.T) {
	t.Parallel()
	m, cs := newTestManager(t, fixtures()...)
	ctx := context.Background()
	pod := testPod(v1.Volume{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
		LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}, Items: []v1.KeyToPath{{Key: "a", Path: "a"}, {Key: "b", Path: "b"}},
	}}})
	paths, err := m.Setup(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	dir := paths["cfg"]
	before := dotEntries(t, dir)

	cm, err := cs.CoreV1().ConfigMaps("ns").Get(ctx, "cfg", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data = map[string]string{"a": "changed"}
	if _, err := cs.CoreV1().ConfigMaps("ns").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "-rw-r--r-- changed"}
	pod.Spec.Volumes[0].ConfigMap.Optional = ptr(true) // key b is gone now
	poll(t, 5*time.Second, "configmap update reaches the volume", func() error {
		if _, err := m.Setup(ctx, pod); err != nil {
			return err
		}
		if diff := cmp.Diff(want, readVolume(t, dir)); diff != "" {
			return fmt.Errorf("content (-want +got):\n%s", diff)
		}
		return nil
	})
	after := dotEntries(t, dir)
	if len(after) != 2 || after[0] == before[0] {
		t.Errorf("timestamped dirs before %v, after %v: want a new one replacing the old", before, after)
	}
}

func TestSetupEmptyDirAndHostPath(t *testing.T) {
	t.Parallel()
	m, _ := newTestManager(t, fixtures()...)
	ctx := context.Background()
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(host, "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	hp := func(p string, typ v1.HostPathType) v1.VolumeSource {
		return v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: p, Type: &typ}}
	}
	tests := []struct {
		name    string
		vol     v1.VolumeSource
		want    string
		wantErr bool
		check   func(t *testing.T, p string)
	}{
		{name: "emptyDir", vol: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}},
			want: filepath.Join(m.cfg.RootDir, "uid-1", "volumes", pluginEmptyDir, "v"),
			check: func(t *testing.T, p string) {
				fi, err := os.Stat(p)
				if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o777 {
					t.Errorf("emptyDir %s: %v %v, want a 0777 directory", p, fi, err)
				}
			}},
		{name: "hostPath no type", vol: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: "/does/not/matter"}}, want: "/does/not/matter"},
		{name: "Directory", vol: hp(host, v1.HostPathDirectory), want: host},
		{name: "Directory missing", vol: hp(filepath.Join(host, "nope"), v1.HostPathDirectory), wantErr: true},
		{name: "Directory is a file", vol: hp(filepath.Join(host, "file"), v1.HostPathDirectory), wantErr: true},
		{name: "DirectoryOrCreate", vol: hp(filepath.Join(host, "new/dir"), v1.HostPathDirectoryOrCreate), want: filepath.Join(host, "new/dir"),
			check: func(t *testing.T, p string) {
				if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
					t.Errorf("%s not created as a directory: %v", p, err)
				}
			}},
		{name: "File", vol: hp(filepath.Join(host, "file"), v1.HostPathFile), want: filepath.Join(host, "file")},
		{name: "File is a dir", vol: hp(host, v1.HostPathFile), wantErr: true},
		{name: "FileOrCreate", vol: hp(filepath.Join(host, "created"), v1.HostPathFileOrCreate), want: filepath.Join(host, "created"),
			check: func(t *testing.T, p string) {
				if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
					t.Errorf("%s not created as a file: %v", p, err)
				}
			}},
		{name: "Socket", vol: hp(sock, v1.HostPathSocket), want: sock},
		{name: "Socket is a file", vol: hp(filepath.Join(host, "file"), v1.HostPathSocket), wantErr: true},
		{name: "CharDevice", vol: hp("/dev/null", v1.HostPathCharDev), want: "/dev/null"},
		{name: "BlockDevice is a char device", vol: hp("/dev/null", v1.HostPathBlockDev), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			paths, err := m.Setup(ctx, testPod(v1.Volume{Name: "v", VolumeSource: tt.vol}))
			if tt.wantErr {
				if err == nil || !strings.HasPrefix(err.Error(), `volume "v": hostPath`) {
					t.Fatalf("Setup error = %v, want a hostPath error for volume v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if paths["v"] != tt.want {
				t.Errorf("path = %q, want %q", paths["v"], tt.want)
			}
			if tt.check != nil {
				tt.check(t, paths["v"])
			}
		})
	}
}

func TestSetupClaims(t *testing.T) {
	t.Parallel()
	host := t.TempDir()
	pv := func(name string, src v1.PersistentVolumeSource) *v1.PersistentVolume {
		return &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1.PersistentVolumeSpec{PersistentVolumeSource: src}}
	}
	pvc := func(name, volume string, phase v1.PersistentVolumeClaimPhase) *v1.PersistentVolumeClaim {
		return &v1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
			Spec:       v1.PersistentVolumeClaimSpec{VolumeName: volume},
			Status:     v1.PersistentVolumeClaimStatus{Phase: phase},
		}
	}
	objs := append(fixtures(),
		pv("pv-host", v1.PersistentVolumeSource{HostPath: &v1.HostPathVolumeSource{Path: host}}),
		pv("pv-local", v1.PersistentVolumeSource{Local: &v1.LocalVolumeSource{Path: host}}),
		pv("pv-nfs", v1.PersistentVolumeSource{NFS: &v1.NFSVolumeSource{Server: "x", Path: "/"}}),
		pvc("host", "pv-host", v1.ClaimBound),
		pvc("local", "pv-local", v1.ClaimBound),
		pvc("nfs", "pv-nfs", v1.ClaimBound),
		pvc("pending", "", v1.ClaimPending),
	)
	m, _ := newTestManager(t, objs...)
	tests := []struct {
		claim, want, wantErr string
	}{
		{claim: "host", want: host},
		{claim: "local", want: host},
		{claim: "nfs", wantErr: `volume "v": persistentvolume "pv-nfs": only hostPath and local persistent volumes are supported`},
		{claim: "pending", wantErr: `volume "v": persistentvolumeclaim "pending" is not bound (phase "Pending")`},
		{claim: "missing", wantErr: `volume "v": persistentvolumeclaim "missing": persistentvolumeclaims "missing" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.claim, func(t *testing.T) {
			pod := testPod(v1.Volume{Name: "v", VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: tt.claim}}})
			pod.UID = types.UID("uid-" + tt.claim)
			paths, err := m.Setup(context.Background(), pod)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Setup error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || paths["v"] != tt.want {
				t.Fatalf("Setup = %v, %v; want path %q", paths, err, tt.want)
			}
		})
	}
}

func TestSetupReportsEveryFailedVolume(t *testing.T) {
	t.Parallel()
	m, _ := newTestManager(t, fixtures()...)
	pod := testPod(
		v1.Volume{Name: "ok", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
		v1.Volume{Name: "c", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "x"}}}},
		v1.Volume{Name: "s", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "y"}}},
	)
	paths, err := m.Setup(context.Background(), pod)
	want := "volume \"c\": configmap \"x\" not found\nvolume \"s\": secret \"y\" not found"
	if err == nil || err.Error() != want {
		t.Fatalf("Setup error = %v, want %q", err, want)
	}
	if _, ok := paths["ok"]; !ok || len(paths) != 1 {
		t.Errorf("paths = %v, want only the ready volume", paths)
	}
}

func TestServiceAccountTokenRefresh(t *testing.T) {
	t.Parallel()
	m, _ := newTestManager(t, fixtures()...)
	now := time.Now()
	m.now = func() time.Time { return now }
	pod := testPod(v1.Volume{Name: "tok", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{Sources: []v1.VolumeProjection{
		{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Path: "token", Audience: "vault", ExpirationSeconds: ptr(int64(1000))}},
	}}}})
	read := func() string {
		paths, err := m.Setup(context.Background(), pod)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(paths["tok"], "token"))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	steps := []struct {
		at   time.Duration
		want string
	}{
		{0, "token-builder-1"},
		{700 * time.Second, "token-builder-1"}, // before 80% of its life
		{810 * time.Second, "token-builder-2"}, // past 80%: refreshed
		{1000 * time.Second, "token-builder-2"},
	}
	start := now
	for _, s := range steps {
		now = start.Add(s.at)
		if got := read(); got != s.want {
			t.Errorf("at +%v: token = %q, want %q", s.at, got, s.want)
		}
	}
}

func TestTeardown(t *testing.T) {
	t.Parallel()
	m, _ := newTestManager(t, fixtures()...)
	pod := testPod(
		v1.Volume{Name: "e", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
		v1.Volume{Name: "c", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}}},
	)
	if _, err := m.Setup(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // idempotent
		if err := m.Teardown(context.Background(), pod.UID); err != nil {
			t.Fatalf("Teardown %d: %v", i, err)
		}
	}
	if _, err := os.Stat(m.PodDir(pod.UID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pod dir after Teardown: %v, want it gone", err)
	}
	// After teardown a new Setup writes again (nothing remembered).
	paths, err := m.Setup(context.Background(), pod)
	if err != nil {
		t.Fatal(err)
	}
	if got := readVolume(t, paths["c"])["a"]; got != "-rw-r--r-- alpha" {
		t.Errorf("after re-setup a = %q", got)
	}
}

func TestBadNames(t *testing.T) {
	t.Parallel()
	m, _ := newTestManager(t, fixtures()...)
	for _, uid := range []types.UID{"", ".", "..", "a/b"} {
		if err := m.Teardown(context.Background(), uid); err == nil {
			t.Errorf("Teardown(%q): no error", uid)
		}
		pod := testPod()
		pod.UID = uid
		if _, err := m.Setup(context.Background(), pod); err == nil {
			t.Errorf("Setup with UID %q: no error", uid)
		}
	}
	pod := testPod(v1.Volume{Name: "../x", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}})
	if _, err := m.Setup(context.Background(), pod); err == nil || err.Error() != `volume "../x": invalid volume name "../x"` {
		t.Errorf("Setup with volume ../x: %v", err)
	}
	if _, err := os.Stat(m.cfg.RootDir); err != nil {
		t.Errorf("root after bad teardowns: %v", err)
	}
}

// TestSetupEphemeralClaimOwner checks that a generic ephemeral volume
// mounts the claim <pod>-<volume> only when the pod controls it, as
// upstream's kubelet: a namesake claim of someone else is refused.
func TestSetupEphemeralClaimOwner(t *testing.T) {
	t.Parallel()
	host := t.TempDir()
	yes := true
	claim := func(ns, name, ownerUID string) *v1.PersistentVolumeClaim {
		c := &v1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec:       v1.PersistentVolumeClaimSpec{VolumeName: "pv-" + name},
			Status:     v1.PersistentVolumeClaimStatus{Phase: v1.ClaimBound},
		}
		if ownerUID != "" {
			c.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: "web", UID: types.UID(ownerUID), Controller: &yes}}
		}
		return c
	}
	pv := func(name string) *v1.PersistentVolume {
		return &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: v1.PersistentVolumeSpec{PersistentVolumeSource: v1.PersistentVolumeSource{HostPath: &v1.HostPathVolumeSource{Path: host}}}}
	}
	objs := append(fixtures(),
		pv("pv-web-mine"), claim("ns", "web-mine", "uid-eph"),
		pv("pv-web-theirs"), claim("ns", "web-theirs", "uid-someone-else"),
	)
	m, _ := newTestManager(t, objs...)
	tmpl := &v1.PersistentVolumeClaimTemplate{Spec: v1.PersistentVolumeClaimSpec{AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}}}
	tests := []struct {
		volume, want, wantErr string
	}{
		{volume: "mine", want: host},
		{volume: "theirs", wantErr: `volume "theirs": PVC ns/web-theirs was not created for pod ns/web (pod is not owner)`},
	}
	for _, tt := range tests {
		t.Run(tt.volume, func(t *testing.T) {
			pod := testPod(v1.Volume{Name: tt.volume, VolumeSource: v1.VolumeSource{Ephemeral: &v1.EphemeralVolumeSource{VolumeClaimTemplate: tmpl}}})
			pod.UID = "uid-eph"
			paths, err := m.Setup(context.Background(), pod)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Setup error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || paths[tt.volume] != tt.want {
				t.Fatalf("Setup = %v, %v; want path %q", paths, err, tt.want)
			}
		})
	}
}

// TestChangedNotifiesPods: the pods using a config map or secret hear of
// its creation (an optional one that was missing), change and deletion,
// so that their volumes are set up again.
func TestChangedNotifiesPods(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	heard := map[types.UID]int{}
	m, cs := newTestManagerWith(t, func(c *Config) {
		c.Changed = func(uid types.UID) {
			mu.Lock()
			heard[uid]++
			mu.Unlock()
		}
	}, fixtures()...)
	ctx := context.Background()
	pod := testPod(v1.Volume{Name: "later", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{
		Sources: []v1.VolumeProjection{{Secret: &v1.SecretProjection{LocalObjectReference: v1.LocalObjectReference{Name: "later"}, Optional: ptr(true)}}},
	}}})
	if _, err := m.Setup(ctx, pod); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return heard[pod.UID]
	}
	before := count()
	if _, err := cs.CoreV1().Secrets("ns").Create(ctx, &v1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "later", Namespace: "ns"}, Data: map[string][]byte{"k": []byte("v")},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, 5*time.Second, "the secret's creation is heard", func() error {
		if count() == before {
			return fmt.Errorf("pod %s not told", pod.UID)
		}
		return nil
	})
	paths, err := m.Setup(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"k": "-rw-r--r-- v"}, readVolume(t, paths["later"])); diff != "" {
		t.Errorf("volume after the secret appeared (-want +got):\n%s", diff)
	}
	// A pod torn down hears nothing more.
	m.objects.release(pod.UID)
	after := count()
	if err := cs.CoreV1().Secrets("ns").Delete(ctx, "later", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if count() != after {
		t.Errorf("released pod still told of changes")
	}
}

// TestSetupFSGroup: with an fsGroup, secret-like files are readable by the
// group (at least 0440) and owned by it, and an emptyDir belongs to the
// group with setgid, as upstream sets volume ownership.
func TestSetupFSGroup(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("changing a file's group to an arbitrary one needs root")
	}
	m, _ := newTestManager(t, fixtures()...)
	ctx := context.Background()
	pod := testPod(
		v1.Volume{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
			LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}, DefaultMode: ptr(int32(0o400)),
		}}},
		v1.Volume{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
	)
	pod.Spec.SecurityContext = &v1.PodSecurityContext{FSGroup: ptr(int64(1234))}
	paths, err := m.Setup(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(paths["cfg"], "a"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o440 || fi.Sys().(*syscall.Stat_t).Gid != 1234 {
		t.Errorf("config map file: mode %v gid %d, want 0440 and 1234", fi.Mode().Perm(), fi.Sys().(*syscall.Stat_t).Gid)
	}
	di, err := os.Stat(paths["scratch"])
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode()&os.ModeSetgid == 0 || di.Sys().(*syscall.Stat_t).Gid != 1234 {
		t.Errorf("emptyDir: mode %v gid %d, want setgid and 1234", di.Mode(), di.Sys().(*syscall.Stat_t).Gid)
	}
}
