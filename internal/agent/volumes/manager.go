package volumes

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/component-helpers/storage/ephemeral"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Plugin directory names under ROOT/pods/<uid>/volumes, as upstream's.
const (
	pluginEmptyDir  = "kubernetes.io~empty-dir"
	pluginConfigMap = "kubernetes.io~configmap"
	pluginSecret    = "kubernetes.io~secret"
	pluginProjected = "kubernetes.io~projected"
	pluginDownward  = "kubernetes.io~downward-api"
)

// Config configures a Manager.
type Config struct {
	// RootDir is ROOT/pods: each pod's files are under RootDir/<uid>.
	RootDir string
	// Client reads config maps, secrets, services, claims, volumes and the
	// node, and requests service account tokens.
	Client kubernetes.Interface
	// NodeName is the node's name (for limits that default to its
	// allocatable resources).
	NodeName string
	// Logger is the component's logger; nil means no logs.
	Logger *slog.Logger
	// Changed, when set, is called with the UID of each pod using a
	// config map or secret that was created, changed or deleted, so that
	// its volumes are set up again (the node agent resyncs the pod). It
	// is called from an informer goroutine and must not block.
	Changed func(uid types.UID)
}

// Manager prepares pods' volumes and containers' environments. All
// methods are safe for concurrent use; calls for one pod are serialized.
type Manager struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	objects *objectCache
	nodes   *nodeCache
	tokens  *tokenManager
	// stop ends the informers; called when Run returns.
	stop context.CancelFunc
	// tmpfs mounts a tmpfs on a directory unless one is there
	// (ensureTmpfs; replaced in tests).
	tmpfs func(dir string, size int64, mode fs.FileMode) error

	// podLocks serialize Setup and Teardown of one pod (striped by UID).
	podLocks [64]sync.Mutex

	mu sync.Mutex
	// written is guarded by mu: per pod, the digest of the payload last
	// written to each atomically updated volume directory, so that an
	// unchanged payload costs no disk reads.
	written map[types.UID]map[string][32]byte
	// claims is guarded by mu: per pod, the host path each bound
	// persistentVolumeClaim volume resolved to (a binding never changes).
	claims map[types.UID]map[string]string
}

// New returns a Manager. Informers it starts run until Run returns (or for
// the process's life if Run is never called).
func New(cfg Config) (*Manager, error) {
	if cfg.RootDir == "" {
		return nil, errors.New("volumes: RootDir is required")
	}
	if cfg.Client == nil {
		return nil, errors.New("volumes: Client is required")
	}
	if err := os.MkdirAll(cfg.RootDir, 0o750); err != nil {
		return nil, fmt.Errorf("volumes: creating %s: %w", cfg.RootDir, err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		cfg:     cfg,
		log:     log,
		now:     time.Now,
		objects: newObjectCache(ctx, cfg.Client, cfg.Changed),
		stop:    cancel,
		tmpfs:   ensureTmpfs,
		written: map[types.UID]map[string][32]byte{},
		claims:  map[types.UID]map[string]string{},
	}
	m.nodes = &nodeCache{client: cfg.Client, name: cfg.NodeName, now: func() time.Time { return m.now() }}
	m.tokens = newTokenManager(cfg.Client, func() time.Time { return m.now() })
	return m, nil
}

// Run blocks until ctx ends, then stops the informers the Manager started.
// It returns nil.
func (m *Manager) Run(ctx context.Context) error {
	<-ctx.Done()
	m.stop()
	return nil
}

func (m *Manager) podLock(uid types.UID) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(uid))
	return &m.podLocks[h.Sum32()%uint32(len(m.podLocks))]
}

// PodDir returns ROOT/pods/<uid>.
func (m *Manager) PodDir(uid types.UID) string {
	return filepath.Join(m.cfg.RootDir, string(uid))
}

func (m *Manager) volumeDir(uid types.UID, plugin, name string) string {
	return filepath.Join(m.cfg.RootDir, string(uid), "volumes", plugin, name)
}

// Setup prepares every volume of pod.Spec.Volumes and returns the host
// path of each by volume name. The pod sync engine calls it at every sync
// of a pod that should run, before creating containers.
//
// It is idempotent: directories and mounts already there are kept, and the
// contents of configMap, secret, downwardAPI and projected volumes are
// rewritten (atomically, through ..data) only when they changed. On error
// the map holds the volumes that were ready and the error names each volume
// that was not, with the missing object (`volume "v": configmap "x" not
// found`); the sync should report FailedMount and try again later.
func (m *Manager) Setup(ctx context.Context, pod *v1.Pod) (map[string]string, error) {
	if err := checkPathName("pod UID", string(pod.UID)); err != nil {
		return nil, fmt.Errorf("volumes: setup of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	l := m.podLock(pod.UID)
	l.Lock()
	defer l.Unlock()
	paths := make(map[string]string, len(pod.Spec.Volumes))
	var errs []error
	for i := range pod.Spec.Volumes {
		vol := &pod.Spec.Volumes[i]
		p, err := "", checkPathName("volume name", vol.Name)
		if err == nil {
			p, err = m.setupVolume(ctx, pod, vol)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("volume %q: %w", vol.Name, err))
			continue
		}
		paths[vol.Name] = p
	}
	return paths, errors.Join(errs...)
}

func (m *Manager) setupVolume(ctx context.Context, pod *v1.Pod, vol *v1.Volume) (string, error) {
	src := &vol.VolumeSource
	switch {
	case src.EmptyDir != nil:
		dir := m.volumeDir(pod.UID, pluginEmptyDir, vol.Name)
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return "", err
		}
		if src.EmptyDir.Medium == v1.StorageMediumMemory {
			var size int64
			if src.EmptyDir.SizeLimit != nil {
				size = src.EmptyDir.SizeLimit.Value()
			}
			if err := m.tmpfs(dir, size, 0o777); err != nil {
				return "", err
			}
		} else if src.EmptyDir.Medium != v1.StorageMediumDefault {
			return "", fmt.Errorf("emptyDir medium %q is not supported", src.EmptyDir.Medium)
		}
		// Writable by every user of the pod, as upstream; with an
		// fsGroup, owned by that group, whose files it then gets too
		// (setgid).
		mode := fs.FileMode(0o777)
		gid := fsGroup(pod)
		if gid != nil {
			mode |= fs.ModeSetgid
		}
		fi, err := os.Stat(dir)
		if err != nil {
			return "", err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); gid != nil && (!ok || int64(st.Gid) != *gid) {
			if err := os.Lchown(dir, -1, int(*gid)); err != nil {
				return "", fmt.Errorf("giving %s to fsGroup %d: %w", dir, *gid, err)
			}
		}
		if fi.Mode()&(fs.ModePerm|fs.ModeSetgid) == mode {
			return dir, nil
		}
		return dir, os.Chmod(dir, mode)

	case src.HostPath != nil:
		t := v1.HostPathUnset
		if src.HostPath.Type != nil {
			t = *src.HostPath.Type
		}
		return src.HostPath.Path, checkHostPath(src.HostPath.Path, t)

	case src.ConfigMap != nil:
		cm := src.ConfigMap
		p := payload{}
		if err := m.configMapPayload(ctx, p, pod, cm.Name, cm.Items, isOptional(cm.Optional), cm.DefaultMode); err != nil {
			return "", err
		}
		return m.writeVolume(pod.UID, m.volumeDir(pod.UID, pluginConfigMap, vol.Name), p, false, fsGroup(pod))

	case src.Secret != nil:
		s := src.Secret
		p := payload{}
		if err := m.secretPayload(ctx, p, pod, s.SecretName, s.Items, isOptional(s.Optional), s.DefaultMode); err != nil {
			return "", err
		}
		return m.writeVolume(pod.UID, m.volumeDir(pod.UID, pluginSecret, vol.Name), p, true, fsGroup(pod))

	case src.DownwardAPI != nil:
		p := payload{}
		if err := m.downwardPayload(ctx, p, pod, src.DownwardAPI.Items, src.DownwardAPI.DefaultMode); err != nil {
			return "", err
		}
		return m.writeVolume(pod.UID, m.volumeDir(pod.UID, pluginDownward, vol.Name), p, false, fsGroup(pod))

	case src.Projected != nil:
		p, err := m.projectedPayload(ctx, pod, vol.Name, src.Projected)
		if err != nil {
			return "", err
		}
		// Projected volumes carry secrets and tokens: memory, as upstream.
		return m.writeVolume(pod.UID, m.volumeDir(pod.UID, pluginProjected, vol.Name), p, true, fsGroup(pod))

	case src.PersistentVolumeClaim != nil:
		return m.claimPath(ctx, pod, vol.Name, src.PersistentVolumeClaim.ClaimName, false)

	case src.Ephemeral != nil:
		// A generic ephemeral volume is the claim <pod>-<volume> the
		// ephemeral volume controller made for this pod.
		return m.claimPath(ctx, pod, vol.Name, ephemeral.VolumeClaimName(pod, vol), true)
	}
	return "", errors.New("unsupported volume type (supported: emptyDir, hostPath, configMap, secret, downwardAPI, projected, persistentVolumeClaim, ephemeral)")
}

// writeVolume makes dir hold p. Secret-like volumes (memory) are on a
// tmpfs when mounting works, else in a directory only root can read.
func (m *Manager) writeVolume(uid types.UID, dir string, p payload, memory bool, gid *int64) (string, error) {
	if gid != nil {
		// Readable by the pod's fsGroup, as upstream makes the volumes
		// whose ownership it sets (at least 0440); writeAtomic gives the
		// files to the group.
		for k, f := range p {
			f.Mode |= 0o440
			p[k] = f
		}
	}
	d := p.digest()
	m.mu.Lock()
	last, ok := m.written[uid][dir]
	m.mu.Unlock()
	if ok && last == d {
		return dir, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if memory {
		if err := m.tmpfs(dir, 0, 0o755); err != nil {
			if !errors.Is(err, syscall.EPERM) {
				return "", err
			}
			m.log.Debug("no tmpfs for a secret volume, using a private directory", "dir", dir, "err", err)
			if err := os.Chmod(dir, 0o700); err != nil {
				return "", err
			}
		}
	}
	changed, err := writeAtomic(dir, p, m.now(), gid)
	if err != nil {
		return "", fmt.Errorf("writing %s: %w", dir, err)
	}
	if changed {
		m.log.Debug("volume content updated", "dir", dir)
	}
	m.mu.Lock()
	if m.written[uid] == nil {
		m.written[uid] = map[string][32]byte{}
	}
	m.written[uid][dir] = d
	m.mu.Unlock()
	return dir, nil
}

// fsGroup is the pod's securityContext.fsGroup, or nil.
func fsGroup(pod *v1.Pod) *int64 {
	if sc := pod.Spec.SecurityContext; sc != nil {
		return sc.FSGroup
	}
	return nil
}

// checkPathName refuses a name that cannot be one path element (a pod UID
// of ".." would make Teardown remove the whole root).
func checkPathName(what, name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("invalid %s %q", what, name)
	}
	return nil
}

// checkHostPath applies a hostPath volume's type check, creating the
// directory or file for the …OrCreate types.
func checkHostPath(path string, t v1.HostPathType) error {
	if t == v1.HostPathUnset {
		return nil
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		switch t {
		case v1.HostPathDirectoryOrCreate:
			if err := os.MkdirAll(path, 0o755); err != nil {
				return fmt.Errorf("hostPath: creating directory %s: %w", path, err)
			}
			return nil
		case v1.HostPathFileOrCreate:
			f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o644)
			if err != nil {
				return fmt.Errorf("hostPath: creating file %s: %w", path, err)
			}
			return f.Close()
		}
		return fmt.Errorf("hostPath type check failed: %s does not exist", path)
	}
	if err != nil {
		return fmt.Errorf("hostPath: %w", err)
	}
	mode := fi.Mode()
	var ok bool
	var want string
	switch t {
	case v1.HostPathDirectoryOrCreate, v1.HostPathDirectory:
		ok, want = mode.IsDir(), "a directory"
	case v1.HostPathFileOrCreate, v1.HostPathFile:
		ok, want = mode.IsRegular(), "a file"
	case v1.HostPathSocket:
		ok, want = mode&fs.ModeSocket != 0, "a socket"
	case v1.HostPathCharDev:
		ok, want = mode&fs.ModeDevice != 0 && mode&fs.ModeCharDevice != 0, "a character device"
	case v1.HostPathBlockDev:
		ok, want = mode&fs.ModeDevice != 0 && mode&fs.ModeCharDevice == 0, "a block device"
	default:
		return fmt.Errorf("hostPath: unknown type %q", t)
	}
	if !ok {
		return fmt.Errorf("hostPath type check failed: %s is not %s", path, want)
	}
	return nil
}

// claimPath resolves a persistentVolumeClaim volume to the host path of
// its bound hostPath or local persistent volume. With mustOwn (the claim
// of a generic ephemeral volume) the claim must be controlled by pod.
func (m *Manager) claimPath(ctx context.Context, pod *v1.Pod, volName, claim string, mustOwn bool) (string, error) {
	m.mu.Lock()
	p, ok := m.claims[pod.UID][volName]
	m.mu.Unlock()
	if ok {
		return p, nil
	}
	pvc, err := m.cfg.Client.CoreV1().PersistentVolumeClaims(pod.Namespace).Get(ctx, claim, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("persistentvolumeclaim %q: %w", claim, err)
	}
	if mustOwn {
		// Someone else's claim that happens to have the name: mounting it
		// would hand this pod another's data (upstream's kubelet refuses
		// too, in these words).
		if err := ephemeral.VolumeIsForPod(pod, pvc); err != nil {
			return "", err
		}
	}
	if pvc.Status.Phase != v1.ClaimBound || pvc.Spec.VolumeName == "" {
		return "", fmt.Errorf("persistentvolumeclaim %q is not bound (phase %q)", claim, pvc.Status.Phase)
	}
	pv, err := m.cfg.Client.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("persistentvolume %q of claim %q: %w", pvc.Spec.VolumeName, claim, err)
	}
	switch {
	case pv.Spec.HostPath != nil:
		t := v1.HostPathUnset
		if pv.Spec.HostPath.Type != nil {
			t = *pv.Spec.HostPath.Type
		}
		if err := checkHostPath(pv.Spec.HostPath.Path, t); err != nil {
			return "", fmt.Errorf("persistentvolume %q: %w", pv.Name, err)
		}
		p = pv.Spec.HostPath.Path
	case pv.Spec.Local != nil:
		if _, err := os.Stat(pv.Spec.Local.Path); err != nil {
			return "", fmt.Errorf("persistentvolume %q: local path: %w", pv.Name, err)
		}
		p = pv.Spec.Local.Path
	default:
		return "", fmt.Errorf("persistentvolume %q: only hostPath and local persistent volumes are supported", pv.Name)
	}
	m.mu.Lock()
	if m.claims[pod.UID] == nil {
		m.claims[pod.UID] = map[string]string{}
	}
	m.claims[pod.UID][volName] = p
	m.mu.Unlock()
	return p, nil
}

// Teardown unmounts every mount under ROOT/pods/<uid> (emptyDir and secret
// tmpfs), removes the directory and forgets the pod. The sync calls it once
// every container of the pod is gone. It is idempotent; it removes nothing
// while a mount under the directory remains.
func (m *Manager) Teardown(ctx context.Context, uid types.UID) error {
	if err := checkPathName("pod UID", string(uid)); err != nil {
		return fmt.Errorf("volumes: teardown: %w", err)
	}
	l := m.podLock(uid)
	l.Lock()
	defer l.Unlock()
	m.tokens.forget(uid)
	m.objects.release(uid)
	m.mu.Lock()
	delete(m.written, uid)
	delete(m.claims, uid)
	m.mu.Unlock()

	dir := m.PodDir(uid)
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := unmountUnder(dir); err != nil {
		return fmt.Errorf("volumes: teardown of pod %s: %w", uid, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("volumes: teardown of pod %s: %w", uid, err)
	}
	return nil
}
