package volumes

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"

	"github.com/skiff-dev/skiff/internal/agent/cri"
)

func TestMounts(t *testing.T) {
	t.Parallel()
	m, _ := newTestManager(t, fixtures()...)
	host := t.TempDir()
	outside := t.TempDir()
	pod := testPod(
		v1.Volume{Name: "data", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
		v1.Volume{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}}},
		v1.Volume{Name: "host", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: host}}},
		v1.Volume{Name: "claim", VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: "c", ReadOnly: true}}},
	)
	paths, err := m.Setup(context.Background(), pod)
	if err == nil {
		t.Fatal("Setup: want an error for the missing claim")
	}
	paths["claim"] = host // as if bound
	data := paths["data"]
	// A symlink a container could plant to escape its volume.
	if err := os.Symlink(outside, filepath.Join(data, "escape")); err != nil {
		t.Fatal(err)
	}
	realCfg, err := filepath.EvalSymlinks(filepath.Join(paths["cfg"], "a"))
	if err != nil {
		t.Fatal(err)
	}
	realData, _ := filepath.EvalSymlinks(data)

	tests := []struct {
		name    string
		mounts  []v1.VolumeMount
		env     []v1.EnvVar
		want    []cri.Mount
		wantErr string
		check   func(t *testing.T)
	}{
		{
			name: "plain mounts and read-only rules",
			mounts: []v1.VolumeMount{
				{Name: "data", MountPath: "/data"},
				{Name: "data", MountPath: "/ro", ReadOnly: true},
				{Name: "cfg", MountPath: "/etc/cfg"},
				{Name: "host", MountPath: "/host"},
				{Name: "claim", MountPath: "/claim"},
			},
			want: []cri.Mount{
				{ContainerPath: "/data", HostPath: data},
				{ContainerPath: "/ro", HostPath: data, ReadOnly: true},
				{ContainerPath: "/etc/cfg", HostPath: paths["cfg"], ReadOnly: true},
				{ContainerPath: "/host", HostPath: host},
				{ContainerPath: "/claim", HostPath: host, ReadOnly: true},
			},
		},
		{
			name:   "subPath is created",
			mounts: []v1.VolumeMount{{Name: "data", MountPath: "/logs", SubPath: "logs/app"}},
			want:   []cri.Mount{{ContainerPath: "/logs", HostPath: filepath.Join(realData, "logs/app")}},
			check: func(t *testing.T) {
				if fi, err := os.Stat(filepath.Join(data, "logs/app")); err != nil || !fi.IsDir() {
					t.Errorf("subPath dir not created: %v", err)
				}
			},
		},
		{
			name:   "subPath of a config map key resolves to the file",
			mounts: []v1.VolumeMount{{Name: "cfg", MountPath: "/etc/a.conf", SubPath: "a"}},
			want:   []cri.Mount{{ContainerPath: "/etc/a.conf", HostPath: realCfg, ReadOnly: true}},
		},
		{
			name:   "subPathExpr",
			mounts: []v1.VolumeMount{{Name: "data", MountPath: "/mine", SubPathExpr: "pods/$(POD_NAME)"}},
			env:    []v1.EnvVar{{Name: "POD_NAME", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
			want:   []cri.Mount{{ContainerPath: "/mine", HostPath: filepath.Join(realData, "pods/web")}},
		},
		{
			name:    "subPath with ..",
			mounts:  []v1.VolumeMount{{Name: "data", MountPath: "/x", SubPath: "a/../../b"}},
			wantErr: `volumeMount "data": subPath "a/../../b" must not contain '..'`,
		},
		{
			name:    "absolute subPath",
			mounts:  []v1.VolumeMount{{Name: "data", MountPath: "/x", SubPath: "/etc"}},
			wantErr: `volumeMount "data": subPath "/etc" must be relative`,
		},
		{
			name:    "subPath through a symlink out of the volume",
			mounts:  []v1.VolumeMount{{Name: "data", MountPath: "/x", SubPath: "escape/new"}},
			wantErr: `volumeMount "data": subPath "escape/new" resolves outside its volume`,
			check: func(t *testing.T) {
				if _, err := os.Stat(filepath.Join(outside, "new")); err == nil {
					t.Error("a directory was created outside the volume")
				}
			},
		},
		{
			name:    "unknown volume",
			mounts:  []v1.VolumeMount{{Name: "nope", MountPath: "/x"}},
			wantErr: `volumeMount "nope": the pod has no such volume`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &v1.Container{Name: "main", VolumeMounts: tt.mounts, Env: tt.env}
			got, err := m.Mounts(pod, c, paths)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Mounts error = %v, want %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatalf("Mounts: %v", err)
			} else if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Mounts (-want +got):\n%s", diff)
			}
			if tt.check != nil {
				tt.check(t)
			}
		})
	}
}
