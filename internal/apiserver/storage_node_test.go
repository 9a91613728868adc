package apiserver

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/discovery"
	"github.com/skiff-dev/skiff/internal/etcd/etcdtest"
	"github.com/skiff-dev/skiff/internal/openapi"
	"github.com/skiff-dev/skiff/internal/registry"
	"github.com/skiff-dev/skiff/internal/registry/builtin"
	"github.com/skiff-dev/skiff/internal/storage"
)

// storageNodeResourceNames are the storage.k8s.io CSI resources and
// node.k8s.io runtimeclasses.
var storageNodeResourceNames = []string{"csidrivers", "csinodes", "volumeattachments", "csistoragecapacities", "runtimeclasses"}

// withStorageNode serves the CSI resources and runtimeclasses too (on an
// etcd of their own), with discovery and OpenAPI over everything served.
func withStorageNode(t testing.TB) envOption {
	return func(c *Config) {
		client := etcdtest.Start(t)
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		for _, res := range builtin.Resources() {
			if !slices.Contains(storageNodeResourceNames, res.GVR.Resource) {
				continue
			}
			st, err := storage.New(ctx, storage.Config{
				Client:      client,
				Prefix:      "/registry/" + res.GVR.Group + "/" + res.GVR.Resource + "/",
				Resource:    res.GroupResource(),
				Codec:       storage.ProtobufCodec(c.Scheme, res.GVR.GroupVersion()),
				NewFunc:     res.Strategy.New,
				NewListFunc: res.Strategy.NewList,
				Attrs:       res.Strategy.Attrs,
				Logger:      c.Logger,
			})
			if err != nil {
				t.Fatalf("storage for %s: %v", res.GVR, err)
			}
			c.Stores = append(c.Stores, registry.NewStore(res, st, registry.StoreOptions{Logger: c.Logger}))
		}
		var resources []*registry.Resource
		for _, st := range c.Stores {
			resources = append(resources, st.Resource)
		}
		schemas, err := openapi.Schemas(resources)
		if err != nil {
			t.Fatalf("openapi schemas: %v", err)
		}
		if c.TypeConverter, err = managedfields.NewTypeConverter(schemas, false); err != nil {
			t.Fatalf("type converter: %v", err)
		}
		c.Discovery = discovery.New(resources)
		oa, err := openapi.New(resources)
		if err != nil {
			t.Fatalf("openapi: %v", err)
		}
		c.OpenAPI = oa
	}
}

// typedClient is the part of a client-go typed resource client the round
// trip uses.
type typedClient[T runtime.Object, L runtime.Object] interface {
	Create(ctx context.Context, obj T, opts metav1.CreateOptions) (T, error)
	Update(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error)
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
	DeleteCollection(ctx context.Context, opts metav1.DeleteOptions, listOpts metav1.ListOptions) error
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
	List(ctx context.Context, opts metav1.ListOptions) (L, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (T, error)
}

// roundTrip runs the conformance-style API operations on one resource:
// create two objects (newObj(name)), watch, get, list by label, patch,
// update (mutate), delete one, deletecollection the rest, and checks that
// the watch saw every change.
func roundTrip[T runtime.Object, L runtime.Object](t *testing.T, c typedClient[T, L], newObj func(name string) T, mutate func(T)) {
	t.Helper()
	ctx := t.Context()
	sel := metav1.ListOptions{LabelSelector: "e2e=roundtrip"}
	list, err := c.List(ctx, sel)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	lm, err := meta.ListAccessor(list)
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.Watch(ctx, metav1.ListOptions{LabelSelector: sel.LabelSelector, ResourceVersion: lm.GetResourceVersion()})
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	defer w.Stop()

	for _, name := range []string{"one", "two"} {
		obj := newObj(name)
		m, _ := meta.Accessor(obj)
		m.SetLabels(map[string]string{"e2e": "roundtrip"})
		if _, err := c.Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
	if _, err := c.Get(ctx, "one", metav1.GetOptions{}); err != nil {
		t.Fatalf("get: %v", err)
	}
	if list, err = c.List(ctx, sel); err != nil || meta.LenList(list) != 2 {
		t.Fatalf("list: %v, %d items", err, meta.LenList(list))
	}
	patched, err := c.Patch(ctx, "one", types.MergePatchType, []byte(`{"metadata":{"annotations":{"patched":"true"}}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatalf("patch: %v", err)
	}
	if pm, _ := meta.Accessor(patched); pm.GetAnnotations()["patched"] != "true" {
		t.Errorf("patch lost: %v", pm.GetAnnotations())
	}
	mutate(patched)
	updated, err := c.Update(ctx, patched, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if um, _ := meta.Accessor(updated); um.GetAnnotations()["updated"] != "true" {
		t.Errorf("update lost: %v", um.GetAnnotations())
	}
	if err := c.Delete(ctx, "one", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := c.Get(ctx, "one", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get after delete: %v, want NotFound", err)
	}
	if err := c.DeleteCollection(ctx, metav1.DeleteOptions{}, sel); err != nil {
		t.Fatalf("deletecollection: %v", err)
	}
	if list, err = c.List(ctx, sel); err != nil || meta.LenList(list) != 0 {
		t.Fatalf("list after deletecollection: %v, %d items", err, meta.LenList(list))
	}

	want := []string{"ADDED one", "ADDED two", "MODIFIED one", "MODIFIED one", "DELETED one", "DELETED two"}
	var got []string
	timeout := time.After(10 * time.Second)
	for len(got) < len(want) {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch closed after %v", got)
			}
			m, err := meta.Accessor(ev.Object)
			if err != nil {
				t.Fatalf("watch event %v: %v", ev.Type, err)
			}
			got = append(got, string(ev.Type)+" "+m.GetName())
		case <-timeout:
			t.Fatalf("watch saw %v, want %v", got, want)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("watch saw %v, want %v", got, want)
	}
}

// annotateUpdated marks an object for the update step of roundTrip.
func annotateUpdated(obj runtime.Object) {
	m, _ := meta.Accessor(obj)
	a := m.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a["updated"] = "true"
	m.SetAnnotations(a)
}

func TestStorageNodeClientGo(t *testing.T) {
	env := newTestEnv(t, withStorageNode(t))
	cs := env.clientset(t)

	t.Run("csidrivers", func(t *testing.T) {
		roundTrip(t, cs.StorageV1().CSIDrivers(), func(name string) *storagev1.CSIDriver {
			return &storagev1.CSIDriver{ObjectMeta: metav1.ObjectMeta{Name: name}}
		}, func(d *storagev1.CSIDriver) {
			annotateUpdated(d)
			d.Spec.PodInfoOnMount = ptr.To(true)
		})
		d, err := cs.StorageV1().CSIDrivers().Create(t.Context(), &storagev1.CSIDriver{ObjectMeta: metav1.ObjectMeta{Name: "defaults.example.com"}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !ptr.Deref(d.Spec.AttachRequired, false) || ptr.Deref(d.Spec.FSGroupPolicy, "") != storagev1.ReadWriteOnceWithFSTypeFSGroupPolicy ||
			!slices.Equal(d.Spec.VolumeLifecycleModes, []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecyclePersistent}) {
			t.Errorf("defaults not applied: %+v", d.Spec)
		}
		d.Spec.AttachRequired = ptr.To(false)
		if _, err := cs.StorageV1().CSIDrivers().Update(t.Context(), d, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
			t.Errorf("changing attachRequired: %v, want Invalid", err)
		}
	})

	t.Run("csinodes", func(t *testing.T) {
		roundTrip(t, cs.StorageV1().CSINodes(), func(name string) *storagev1.CSINode {
			return &storagev1.CSINode{ObjectMeta: metav1.ObjectMeta{Name: name},
				Spec: storagev1.CSINodeSpec{Drivers: []storagev1.CSINodeDriver{{Name: "csi.example.com", NodeID: name}}}}
		}, func(n *storagev1.CSINode) {
			annotateUpdated(n)
			n.Spec.Drivers = append(n.Spec.Drivers, storagev1.CSINodeDriver{Name: "other.example.com", NodeID: "x"})
		})
	})

	t.Run("volumeattachments", func(t *testing.T) {
		newVA := func(name string) *storagev1.VolumeAttachment {
			return &storagev1.VolumeAttachment{
				ObjectMeta: metav1.ObjectMeta{Name: name},
				Spec: storagev1.VolumeAttachmentSpec{Attacher: "csi.example.com", NodeName: "node-1",
					Source: storagev1.VolumeAttachmentSource{PersistentVolumeName: ptr.To("pv-" + name)}},
				Status: storagev1.VolumeAttachmentStatus{Attached: true},
			}
		}
		roundTrip(t, cs.StorageV1().VolumeAttachments(), newVA, func(va *storagev1.VolumeAttachment) { annotateUpdated(va) })

		vas := cs.StorageV1().VolumeAttachments()
		ctx := t.Context()
		va, err := vas.Create(ctx, newVA("status"), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if va.Status.Attached {
			t.Errorf("create kept status.attached")
		}
		va.Status.Attached = true
		va.Status.AttachmentMetadata = map[string]string{"k": "v"}
		va.Spec.NodeName = "ignored-by-status"
		if va, err = vas.UpdateStatus(ctx, va, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("update status: %v", err)
		}
		if !va.Status.Attached || va.Spec.NodeName != "node-1" {
			t.Errorf("after status update: attached %v, node %q", va.Status.Attached, va.Spec.NodeName)
		}
		va, err = vas.Patch(ctx, "status", types.MergePatchType, []byte(`{"status":{"detachError":{"message":"boom"}}}`), metav1.PatchOptions{}, "status")
		if err != nil {
			t.Fatalf("patch status: %v", err)
		}
		if va.Status.DetachError == nil || va.Status.DetachError.Message != "boom" {
			t.Errorf("patched status: %+v", va.Status)
		}
		va.Status.Attached = false
		va.Annotations = map[string]string{"x": "y"}
		got, err := vas.Update(ctx, va, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("update: %v", err)
		}
		if !got.Status.Attached {
			t.Errorf("main-resource update changed status")
		}
		got.Spec.NodeName = "node-2"
		if _, err := vas.Update(ctx, got, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
			t.Errorf("changing the spec: %v, want Invalid", err)
		}
		if st, err := vas.Get(ctx, "status", metav1.GetOptions{}); err != nil || st.Status.DetachError == nil {
			t.Errorf("get status: %v %+v", err, st)
		}
	})

	t.Run("csistoragecapacities", func(t *testing.T) {
		roundTrip(t, cs.StorageV1().CSIStorageCapacities("default"), func(name string) *storagev1.CSIStorageCapacity {
			return &storagev1.CSIStorageCapacity{ObjectMeta: metav1.ObjectMeta{Name: name}, StorageClassName: "fast",
				Capacity: ptr.To(resource.MustParse("1Gi"))}
		}, func(c *storagev1.CSIStorageCapacity) {
			annotateUpdated(c)
			c.Capacity = ptr.To(resource.MustParse("2Gi"))
		})
	})

	t.Run("runtimeclasses", func(t *testing.T) {
		roundTrip(t, cs.NodeV1().RuntimeClasses(), func(name string) *nodev1.RuntimeClass {
			return &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Handler: "runc",
				Overhead: &nodev1.Overhead{PodFixed: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m")}}}
		}, func(rc *nodev1.RuntimeClass) {
			annotateUpdated(rc)
			rc.Scheduling = &nodev1.Scheduling{NodeSelector: map[string]string{"runtime": "runc"}}
		})
		rc, err := cs.NodeV1().RuntimeClasses().Create(t.Context(), &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "h"}, Handler: "runc"}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rc.Handler = "kata"
		if _, err := cs.NodeV1().RuntimeClasses().Update(t.Context(), rc, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
			t.Errorf("changing the handler: %v, want Invalid", err)
		}
		if _, err := cs.NodeV1().RuntimeClasses().Create(t.Context(), &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "nohandler"}}, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
			t.Errorf("create without handler: %v, want Invalid", err)
		}
	})

	t.Run("discovery", func(t *testing.T) {
		for _, gv := range []string{"storage.k8s.io/v1", "node.k8s.io/v1"} {
			rl, err := cs.Discovery().ServerResourcesForGroupVersion(gv)
			if err != nil {
				t.Fatalf("discovery %s: %v", gv, err)
			}
			var names []string
			for _, r := range rl.APIResources {
				names = append(names, r.Name)
			}
			for _, want := range storageNodeResourceNames {
				if (gv == "node.k8s.io/v1") == (want == "runtimeclasses") && !slices.Contains(names, want) {
					t.Errorf("%s lacks %s: %v", gv, want, names)
				}
			}
			if gv == "storage.k8s.io/v1" && !slices.Contains(names, "volumeattachments/status") {
				t.Errorf("%s lacks volumeattachments/status: %v", gv, names)
			}
		}
	})
}

func TestStorageNodeKubectl(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kubectl binaries")
	}
	bins := kubectlBinaries(t)
	env := newTestEnv(t, withStorageNode(t))
	cs := env.clientset(t)
	ctx := t.Context()
	if _, err := cs.NodeV1().RuntimeClasses().Create(ctx, &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "gvisor"}, Handler: "runsc"}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.StorageV1().CSIDrivers().Create(ctx, &storagev1.CSIDriver{ObjectMeta: metav1.ObjectMeta{Name: "hostpath.csi.k8s.io"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kubeconfig := env.adminKubeconfig(t)
	for _, bin := range bins {
		t.Run(filepath.Base(bin), func(t *testing.T) {
			cacheDir := t.TempDir()
			run := func(args ...string) string {
				t.Helper()
				cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				cmd := exec.CommandContext(cctx, bin, append([]string{"--kubeconfig", kubeconfig, "--cache-dir", cacheDir}, args...)...)
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Run(); err != nil {
					t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out.String())
				}
				return out.String()
			}
			out := run("get", "runtimeclasses,csidrivers")
			for _, want := range [][]string{
				{"NAME", "HANDLER", "AGE"},
				{"runtimeclass.node.k8s.io/gvisor", "runsc"},
				{"NAME", "ATTACHREQUIRED", "PODINFOONMOUNT", "STORAGECAPACITY", "TOKENREQUESTS", "REQUIRESREPUBLISH", "MODES", "AGE"},
				{"csidriver.storage.k8s.io/hostpath.csi.k8s.io", "true", "false", "false", "<unset>", "false", "Persistent"},
			} {
				if !containsFields(out, want) {
					t.Errorf("kubectl get runtimeclasses,csidrivers lacks a line %v:\n%s", want, out)
				}
			}
			out = run("api-resources", "--api-group=storage.k8s.io")
			for _, want := range [][]string{
				{"csidrivers", "storage.k8s.io/v1", "false", "CSIDriver"},
				{"csinodes", "storage.k8s.io/v1", "false", "CSINode"},
				{"csistoragecapacities", "storage.k8s.io/v1", "true", "CSIStorageCapacity"},
				{"volumeattachments", "storage.k8s.io/v1", "false", "VolumeAttachment"},
			} {
				if !containsFields(out, want) {
					t.Errorf("kubectl api-resources lacks %v:\n%s", want, out)
				}
			}
			out = run("api-resources", "--api-group=node.k8s.io")
			if !containsFields(out, []string{"runtimeclasses", "node.k8s.io/v1", "false", "RuntimeClass"}) {
				t.Errorf("kubectl api-resources lacks runtimeclasses:\n%s", out)
			}
			if out := run("explain", "runtimeclass.handler"); !strings.Contains(out, "handler") || !strings.Contains(out, "RuntimeClass") {
				t.Errorf("kubectl explain runtimeclass.handler:\n%s", out)
			}
			for _, r := range []string{"csinodes", "volumeattachments", "csistoragecapacities"} {
				run("get", r)
			}
		})
	}
}

// containsFields reports whether some line of out has exactly the given
// leading whitespace-separated fields.
func containsFields(out string, want []string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= len(want) && slices.Equal(f[:len(want)], want) {
			return true
		}
	}
	return false
}
