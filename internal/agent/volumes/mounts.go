package volumes

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/skiff-dev/skiff/internal/agent/cri"
)

// envTimeout bounds the environment lookups Mounts does for subPathExpr.
const envTimeout = 30 * time.Second

// Mounts returns the CRI mounts for container c: one per volumeMount, at
// its mountPath, from paths (Setup's result) joined with subPath or the
// expanded subPathExpr. A missing subPath is created as a directory; a
// subPath that resolves (through symlinks) outside its volume is refused.
// configMap, secret, downwardAPI and projected volumes, and read-only
// claims, are always mounted read-only, as upstream. The sync calls it
// before creating each container.
func (m *Manager) Mounts(pod *v1.Pod, c *v1.Container, paths map[string]string) ([]cri.Mount, error) {
	vols := make(map[string]*v1.Volume, len(pod.Spec.Volumes))
	for i := range pod.Spec.Volumes {
		vols[pod.Spec.Volumes[i].Name] = &pod.Spec.Volumes[i]
	}
	var env map[string]string
	out := make([]cri.Mount, 0, len(c.VolumeMounts))
	for _, vm := range c.VolumeMounts {
		vol, ok := vols[vm.Name]
		if !ok {
			return nil, fmt.Errorf("volumeMount %q: the pod has no such volume", vm.Name)
		}
		hostPath, ok := paths[vm.Name]
		if !ok {
			return nil, fmt.Errorf("volumeMount %q: volume is not set up", vm.Name)
		}
		sub := vm.SubPath
		if vm.SubPathExpr != "" {
			if env == nil {
				ctx, cancel := context.WithTimeout(context.Background(), envTimeout)
				vars, err := m.Env(ctx, pod, c)
				cancel()
				if err != nil {
					return nil, fmt.Errorf("volumeMount %q: expanding subPathExpr: %w", vm.Name, err)
				}
				env = make(map[string]string, len(vars))
				for _, v := range vars {
					env[v.Name] = v.Value
				}
			}
			sub = expand(vm.SubPathExpr, func(n string) (string, bool) {
				v, ok := env[n]
				return v, ok
			})
		}
		if sub != "" {
			p, err := subPath(hostPath, sub)
			if err != nil {
				return nil, fmt.Errorf("volumeMount %q: %w", vm.Name, err)
			}
			hostPath = p
		}
		out = append(out, cri.Mount{
			ContainerPath: vm.MountPath,
			HostPath:      hostPath,
			ReadOnly:      vm.ReadOnly || readOnlyVolume(vol),
		})
	}
	return out, nil
}

func readOnlyVolume(v *v1.Volume) bool {
	s := &v.VolumeSource
	switch {
	case s.ConfigMap != nil, s.Secret != nil, s.DownwardAPI != nil, s.Projected != nil:
		return true
	case s.PersistentVolumeClaim != nil:
		return s.PersistentVolumeClaim.ReadOnly
	}
	return false
}

// subPath resolves sub inside the volume at base, creating it as a
// directory when missing, and returns its real path.
//
// TODO(issue 5): a container could swap a checked directory for a symlink
// between the check and the mount; upstream closes that race by mounting
// through /proc/self/fd, which the CRI mount interface cannot express.
func subPath(base, sub string) (string, error) {
	if path.IsAbs(sub) || filepath.IsAbs(sub) {
		return "", fmt.Errorf("subPath %q must be relative", sub)
	}
	for _, el := range strings.Split(filepath.ToSlash(sub), "/") {
		if el == ".." {
			return "", fmt.Errorf("subPath %q must not contain '..'", sub)
		}
	}
	realBase, err := filepath.EvalSymlinks(base)
	if err != nil {
		return "", fmt.Errorf("resolving volume path: %w", err)
	}
	full := filepath.Join(realBase, sub)
	inside := func(p string) bool {
		return p == realBase || strings.HasPrefix(p, realBase+string(filepath.Separator))
	}
	// Check the deepest existing ancestor before creating anything, so
	// that MkdirAll cannot follow a symlink out of the volume.
	existing := full
	for {
		if _, err := os.Lstat(existing); err == nil {
			break
		}
		existing = filepath.Dir(existing)
	}
	realExisting, err := filepath.EvalSymlinks(existing)
	if err != nil {
		return "", fmt.Errorf("subPath %q: %w", sub, err)
	}
	if !inside(realExisting) {
		return "", fmt.Errorf("subPath %q resolves outside its volume", sub)
	}
	if existing != full {
		perm := fs.FileMode(0o755)
		if fi, err := os.Stat(realBase); err == nil {
			perm = fi.Mode().Perm()
		}
		if err := os.MkdirAll(full, perm); err != nil {
			return "", fmt.Errorf("creating subPath %q: %w", sub, err)
		}
	}
	real, err := filepath.EvalSymlinks(full)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("subPath %q does not exist", sub)
		}
		return "", fmt.Errorf("subPath %q: %w", sub, err)
	}
	if !inside(real) {
		return "", fmt.Errorf("subPath %q resolves outside its volume", sub)
	}
	return real, nil
}
