package staticpods

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const webYAML = `# a static pod
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
  annotations: {note: kept, kubernetes.io/config.mirror: forged}
  uid: "1234"
  resourceVersion: "7"
spec:
  containers:
  - name: c
    image: skiff-test/busybox:1.35
    command: [sleep, "3600"]
status:
  phase: Running
`

func TestParseManifest(t *testing.T) {
	t.Parallel()
	pod, hash, err := parseManifest([]byte(webYAML), "Node-A")
	if err != nil {
		t.Fatalf("parseManifest: %v", err)
	}
	want := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      "web-node-a",
			Namespace: "default",
			Labels:    map[string]string{"app": "web"},
			Annotations: map[string]string{
				"note":           "kept",
				AnnotationSource: SourceFile,
				AnnotationHash:   hash,
				AnnotationMirror: hash,
			},
		},
		Spec: corev1.PodSpec{
			NodeName:    "Node-A",
			Containers:  []corev1.Container{{Name: "c", Image: "skiff-test/busybox:1.35", Command: []string{"sleep", "3600"}}},
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}},
		},
	}
	if diff := cmp.Diff(want, pod); diff != "" {
		t.Errorf("mirror pod (-want +got):\n%s", diff)
	}
	if len(hash) != 32 {
		t.Errorf("hash %q: want 32 hex digits", hash)
	}
}

func TestParseManifestHash(t *testing.T) {
	t.Parallel()
	base := mustHash(t, webYAML, "node-a")
	json := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","labels":{"app":"web"},"annotations":{"note":"kept"}},
	  "spec":{"containers":[{"name":"c","image":"skiff-test/busybox:1.35","command":["sleep","3600"]}]}}`
	tests := []struct {
		name     string
		manifest string
		node     string
		same     bool
	}{
		{"same content reformatted as JSON", json, "node-a", true},
		{"comment removed", strings.Replace(webYAML, "# a static pod\n", "", 1), "node-a", true},
		{"other node", webYAML, "node-b", false},
		{"other command", strings.Replace(webYAML, `"3600"`, `"60"`, 1), "node-a", false},
		{"other label", strings.Replace(webYAML, "app: web", "app: api", 1), "node-a", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustHash(t, tt.manifest, tt.node)
			if (got == base) != tt.same {
				t.Errorf("hash %s vs base %s: want same=%v", got, base, tt.same)
			}
		})
	}
}

func mustHash(t *testing.T, manifest, node string) string {
	t.Helper()
	_, h, err := parseManifest([]byte(manifest), node)
	if err != nil {
		t.Fatalf("parseManifest: %v", err)
	}
	return h
}

func TestParseManifestErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		manifest string
		wantErr  string
	}{
		{"empty", "\n  \n", "empty manifest"},
		{"not yaml", "{{{ nope", "decoding manifest"},
		{"no kind", "apiVersion: v1\nmetadata: {name: x}\n", "decoding manifest"},
		{"config map", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", "want a v1 Pod"},
		{"no name", "apiVersion: v1\nkind: Pod\nspec: {containers: [{name: c, image: i}]}\n", "no metadata.name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := parseManifest([]byte(tt.manifest), "node-a")
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v: want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseManifestKeepsOwnToleration(t *testing.T) {
	t.Parallel()
	m := strings.Replace(webYAML, "spec:\n", "spec:\n  tolerations: [{operator: Exists, effect: NoExecute}]\n", 1)
	pod, _, err := parseManifest([]byte(m), "node-a")
	if err != nil {
		t.Fatalf("parseManifest: %v", err)
	}
	if len(pod.Spec.Tolerations) != 1 {
		t.Errorf("tolerations %v: want the manifest's one only", pod.Spec.Tolerations)
	}
}

func TestReadManifests(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := map[string]string{
		"a.yaml":       webYAML,
		"b.yml":        strings.Replace(webYAML, "name: web", "name: api", 1),
		"c.json":       `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"db","namespace":"data"},"spec":{"containers":[{"name":"c","image":"i"}]}}`,
		"d.yaml":       webYAML, // the same pod as a.yaml
		"e.yaml":       "kind: Pod\n",
		".hidden.yaml": webYAML,
		"notes.txt":    "not a manifest",
		"a.yaml.swp":   "garbage",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	ms, bad, err := readManifests(dir, "node-a")
	if err != nil {
		t.Fatalf("readManifests: %v", err)
	}
	var gotKeys []string
	for i := range ms {
		gotKeys = append(gotKeys, filepath.Base(ms[i].path)+" "+ms[i].key())
	}
	if diff := cmp.Diff([]string{"a.yaml default/web-node-a", "b.yml default/api-node-a", "c.json data/db-node-a"}, gotKeys); diff != "" {
		t.Errorf("manifests (-want +got):\n%s", diff)
	}
	var gotBad []string
	for _, b := range bad {
		gotBad = append(gotBad, filepath.Base(b.path))
	}
	if diff := cmp.Diff([]string{"d.yaml", "e.yaml"}, gotBad); diff != "" {
		t.Errorf("bad files (-want +got):\n%s", diff)
	}
	if len(bad) > 0 && !strings.Contains(bad[0].err.Error(), "already defined by") {
		t.Errorf("d.yaml error %v: want it to name the duplicate", bad[0].err)
	}

	if _, _, err := readManifests(filepath.Join(dir, "missing"), "node-a"); err == nil {
		t.Errorf("readManifests of a missing directory: want an error")
	}
}

func TestNotes(t *testing.T) {
	t.Parallel()
	var n notes
	steps := []struct {
		key, msg string
		newPass  bool
		keepAll  bool
		want     bool
	}{
		{key: "a", msg: "x", newPass: true, want: true},
		{key: "a", msg: "x", newPass: true, want: false},
		{key: "a", msg: "y", newPass: true, want: true},
		{key: "b", msg: "z", newPass: true, want: true}, // "a" is not noted in this pass
		{key: "a", msg: "y", newPass: true, keepAll: true, want: true},
		{key: "b", msg: "z", newPass: true, want: false}, // kept over by keepAll
	}
	for i, s := range steps {
		if s.newPass {
			if i > 0 {
				n.end()
			}
			n.begin()
		}
		if got := n.changed(s.key, s.msg); got != s.want {
			t.Errorf("step %d: changed(%q, %q) = %v, want %v", i, s.key, s.msg, got, s.want)
		}
		if s.keepAll {
			n.keepAll()
		}
	}
}
