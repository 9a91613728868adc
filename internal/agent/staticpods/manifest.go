package staticpods

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
)

// Annotations of static and mirror pods, as upstream's kubelet sets them.
const (
	// AnnotationSource names where a static pod came from; always
	// SourceFile here.
	AnnotationSource = "kubernetes.io/config.source"
	// AnnotationHash is the hash of the manifest a pod was made from.
	AnnotationHash = "kubernetes.io/config.hash"
	// AnnotationMirror marks a mirror pod; its value is the same hash.
	AnnotationMirror = "kubernetes.io/config.mirror"
	// AnnotationSeen is when the agent first saw the manifest with this
	// hash (RFC 3339 with nanoseconds).
	AnnotationSeen = "kubernetes.io/config.seen"
	// SourceFile is AnnotationSource's value for manifests from a
	// directory.
	SourceFile = "file"
)

// ReasonInvalidManifest is the reason of the Warning event on the Node for
// a manifest that does not parse or that the API server rejects.
const ReasonInvalidManifest = "InvalidStaticPodManifest"

// IsMirrorPod reports whether pod is a mirror pod (of any node). nil is
// not one.
func IsMirrorPod(pod *corev1.Pod) bool {
	if pod == nil {
		return false
	}
	_, ok := pod.Annotations[AnnotationMirror]
	return ok
}

// manifest is one valid manifest file turned into the mirror pod to
// create, still without AnnotationSeen and the owner reference.
type manifest struct {
	path string
	pod  *corev1.Pod
	hash string
}

// key is the mirror pod's namespace/name.
func (m *manifest) key() string { return m.pod.Namespace + "/" + m.pod.Name }

// fileError is a manifest file that could not be used.
type fileError struct {
	path string
	err  error
}

// isManifestName reports whether a directory entry's name is read as a
// manifest.
func isManifestName(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// readManifests reads every manifest in dir, in name order. Files that
// cannot be used come back as fileErrors (a later file defining the same
// pod as an earlier one is one); the error is for the directory itself.
func readManifests(dir, nodeName string) ([]manifest, []fileError, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("reading manifest directory %q: %w", dir, err)
	}
	var ms []manifest
	var bad []fileError
	byKey := map[string]string{}
	for _, e := range entries { // os.ReadDir sorts by name
		if !isManifestName(e.Name()) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		info, err := os.Stat(path) // follows symlinks
		if err != nil {
			bad = append(bad, fileError{path, err})
			continue
		}
		if !info.Mode().IsRegular() {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			bad = append(bad, fileError{path, err})
			continue
		}
		pod, hash, err := parseManifest(data, nodeName)
		if err != nil {
			bad = append(bad, fileError{path, err})
			continue
		}
		m := manifest{path: path, pod: pod, hash: hash}
		if other, ok := byKey[m.key()]; ok {
			bad = append(bad, fileError{path, fmt.Errorf("pod %s is already defined by %s", m.key(), other)})
			continue
		}
		byKey[m.key()] = path
		ms = append(ms, m)
	}
	sort.Slice(bad, func(i, j int) bool { return bad[i].path < bad[j].path })
	return ms, bad, nil
}

// parseManifest decodes one Pod (YAML or JSON, apiVersion v1 and kind
// Pod) and returns the mirror pod for nodeName with its hash. The hash
// covers the decoded pod and the node name, so reformatting a file or
// editing its comments does not change it. It is pure.
func parseManifest(data []byte, nodeName string) (*corev1.Pod, string, error) {
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, "", errors.New("empty manifest")
	}
	obj, gvk, err := scheme.Codecs.UniversalDeserializer().Decode(data, nil, nil)
	if err != nil {
		return nil, "", fmt.Errorf("decoding manifest: %w", err)
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok || gvk.Group != "" || gvk.Version != "v1" {
		return nil, "", fmt.Errorf("manifest is a %s, want a v1 Pod", gvk)
	}
	if pod.Name == "" {
		return nil, "", errors.New("manifest has no metadata.name")
	}
	if pod.Namespace == "" {
		pod.Namespace = metav1.NamespaceDefault
	}
	pod.Name = pod.Name + "-" + strings.ToLower(nodeName)
	pod.Spec.NodeName = nodeName
	// What only the API server sets, or this package, is not the file's
	// to say.
	pod.GenerateName = ""
	pod.UID = ""
	pod.ResourceVersion = ""
	pod.Generation = 0
	pod.CreationTimestamp = metav1.Time{}
	pod.DeletionTimestamp = nil
	pod.DeletionGracePeriodSeconds = nil
	pod.OwnerReferences = nil
	pod.ManagedFields = nil
	pod.Status = corev1.PodStatus{}
	for _, k := range []string{AnnotationSource, AnnotationHash, AnnotationMirror, AnnotationSeen} {
		delete(pod.Annotations, k)
	}
	if len(pod.Annotations) == 0 {
		pod.Annotations = nil
	}
	// As upstream: a static pod tolerates every NoExecute taint, so that
	// taint-based eviction never removes it from its own node.
	all := corev1.Toleration{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}
	found := false
	for _, t := range pod.Spec.Tolerations {
		if t.MatchToleration(&all) {
			found = true
		}
	}
	if !found {
		pod.Spec.Tolerations = append(pod.Spec.Tolerations, all)
	}

	canonical, err := json.Marshal(pod)
	if err != nil {
		return nil, "", fmt.Errorf("encoding pod: %w", err)
	}
	sum := sha256.Sum256(canonical)
	hash := hex.EncodeToString(sum[:16])

	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[AnnotationSource] = SourceFile
	pod.Annotations[AnnotationHash] = hash
	pod.Annotations[AnnotationMirror] = hash
	return pod, hash, nil
}
