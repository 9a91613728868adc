package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// crdManifest is a CustomResourceDefinition as an operator's manifest
// has one: a schema with descriptions, a default, an enum, printer
// columns, status and scale subresources and a short name.
func crdManifest(group string) string {
	return fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: backups.%[1]s
spec:
  group: %[1]s
  scope: Namespaced
  names:
    plural: backups
    singular: backup
    kind: Backup
    shortNames: [bk]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale:
        specReplicasPath: .spec.copies
        statusReplicasPath: .status.copies
    additionalPrinterColumns:
    - name: Schedule
      type: string
      jsonPath: .spec.schedule
    - name: Copies
      type: integer
      jsonPath: .spec.copies
    - name: Age
      type: date
      jsonPath: .metadata.creationTimestamp
    schema:
      openAPIV3Schema:
        type: object
        description: A Backup copies a volume on a schedule.
        properties:
          spec:
            type: object
            description: What to back up and when.
            required: [schedule]
            x-kubernetes-validations:
            - rule: "!has(self.mode) || self.mode != 'incremental' || self.copies <= 10"
              message: incremental backups keep at most 10 copies
            properties:
              schedule:
                type: string
                description: When to run, in cron format.
              copies:
                type: integer
                minimum: 1
                default: 3
              mode:
                type: string
                enum: [full, incremental]
          status:
            type: object
            properties:
              copies:
                type: integer
`, group)
}

func backupManifest(ns, schedule, extra string) string {
	return fmt.Sprintf(`apiVersion: %s/v1
kind: Backup
metadata:
  name: nightly
  namespace: %s
spec:
  schedule: %q
%s`, crdGroup(ns), ns, schedule, extra)
}

func crdGroup(ns string) string { return ns + ".example.com" }

// TestCustomResourceDefinitions drives CRDs and their custom resources
// with every kubectl version, each with a CRD of its own, then restarts
// the server and checks they are still served.
func TestCustomResourceDefinitions(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	dir := t.TempDir()
	srv := startServer(t, dir, freeAddr(t))
	var last kubectl
	for _, v := range kubectlVersions {
		t.Run("kubectl-"+v, func(t *testing.T) {
			k := findKubectl(t, v, srv.kubeconfig)
			last = k
			ns := "crd" + strings.ReplaceAll(v, ".", "")
			exerciseCRD(t, k, ns)
		})
	}
	if last.bin == "" {
		return
	}
	t.Run("restart", func(t *testing.T) {
		k := last
		ns := "crdkeep"
		k.ok(t, "create", "namespace", ns)
		k.okStdin(t, crdManifest(crdGroup(ns)), "apply", "-f", "-")
		k.ok(t, "wait", "--for=condition=Established", "--timeout=30s", "crd/backups."+crdGroup(ns))
		k.okStdin(t, backupManifest(ns, "0 1 * * *", ""), "apply", "-f", "-")
		srv.stop(t)
		srv2 := startServer(t, dir, srv.listen)
		defer srv2.stop(t)
		got := k.ok(t, "get", "backups."+crdGroup(ns), "nightly", "-n", ns, "-o", "jsonpath={.spec.schedule} {.spec.copies}")
		if got != "0 1 * * * 3" {
			t.Errorf("custom resource after restart: %q", got)
		}
	})
}

func exerciseCRD(t *testing.T, k kubectl, ns string) {
	group := crdGroup(ns)
	resource := "backups." + group
	k.ok(t, "create", "namespace", ns)
	k.okStdin(t, crdManifest(group), "apply", "-f", "-")
	k.ok(t, "wait", "--for=condition=Established", "--timeout=30s", "crd/"+resource)
	if out := k.ok(t, "get", "crd", resource); !strings.Contains(out, resource) {
		t.Errorf("kubectl get crd:\n%s", out)
	}

	// Apply; defaults fill in; printer columns show.
	k.okStdin(t, backupManifest(ns, "0 2 * * *", ""), "apply", "-f", "-")
	out := k.ok(t, "get", "bk", "-n", ns)
	if hdr := strings.Fields(firstLine(out)); strings.Join(hdr, " ") != "NAME SCHEDULE COPIES AGE" {
		t.Errorf("kubectl get bk columns: %q\n%s", hdr, out)
	}
	if !strings.Contains(out, "0 2 * * *") || !strings.Contains(out, " 3 ") {
		t.Errorf("kubectl get bk lacks the schedule or the defaulted copies:\n%s", out)
	}

	// Applying the same manifest again changes nothing; a changed one is
	// patched (kubectl sends a JSON merge patch for custom resources).
	if out := k.okStdin(t, backupManifest(ns, "0 2 * * *", ""), "apply", "-f", "-"); !strings.Contains(out, "unchanged") {
		t.Errorf("second apply: %s", out)
	}
	if out := k.okStdin(t, backupManifest(ns, "0 3 * * *", "  mode: full\n"), "apply", "-f", "-"); !strings.Contains(out, "configured") {
		t.Errorf("changed apply: %s", out)
	}
	if got := k.ok(t, "get", resource, "nightly", "-n", ns, "-o", "jsonpath={.spec.schedule}/{.spec.mode}"); got != "0 3 * * */full" {
		t.Errorf("after apply: %q", got)
	}

	// Schema violations are refused naming the field.
	r := k.run(t, backupManifest(ns, "0 3 * * *", "  mode: sometimes\n  copies: 0\n"), "apply", "-f", "-")
	if r.code == 0 || !strings.Contains(r.stderr, "spec.mode") || !strings.Contains(r.stderr, "spec.copies") {
		t.Errorf("invalid apply: %v", r)
	}
	// CEL rules are enforced.
	r = k.run(t, backupManifest(ns, "0 3 * * *", "  mode: incremental\n  copies: 11\n"), "apply", "-f", "-")
	if r.code == 0 || !strings.Contains(r.stderr, "incremental backups keep at most 10 copies") {
		t.Errorf("apply breaking a CEL rule: %v", r)
	}
	// An unknown field is refused (kubectl validates strictly by default).
	r = k.run(t, backupManifest(ns, "0 3 * * *", "  colour: red\n"), "apply", "-f", "-")
	if r.code == 0 || !strings.Contains(r.stderr, "colour") {
		t.Errorf("apply with an unknown field: %v", r)
	}

	// explain reads the published schema.
	if out := k.ok(t, "explain", resource+".spec.schedule"); !strings.Contains(out, "When to run, in cron format.") {
		t.Errorf("kubectl explain:\n%s", out)
	}

	// Server-side apply, scale, label, patch.
	k.okStdin(t, backupManifest(ns, "0 4 * * *", ""), "apply", "--server-side", "--force-conflicts", "-f", "-")
	k.ok(t, "scale", resource+"/nightly", "-n", ns, "--replicas=5")
	k.ok(t, "label", resource, "nightly", "-n", ns, "tier=gold")
	k.ok(t, "patch", resource, "nightly", "-n", ns, "--type=merge", "-p", `{"spec":{"mode":"incremental"}}`)
	got := k.ok(t, "get", resource, "-n", ns, "-l", "tier=gold", "-o", "jsonpath={.items[*].spec.schedule}/{.items[*].spec.copies}/{.items[*].spec.mode}")
	if got != "0 4 * * */5/incremental" {
		t.Errorf("after server-side apply, scale, label and patch: %q", got)
	}

	// Deleting the CRD takes its custom resources with it.
	k.ok(t, "delete", "crd", resource, "--timeout=60s")
	eventually(t, 30*time.Second, func() error {
		r := k.run(t, "", "get", "crd", resource)
		if r.code == 0 {
			return fmt.Errorf("CRD still there:\n%s", r.stdout)
		}
		return nil
	})
	k.okStdin(t, crdManifest(group), "apply", "-f", "-")
	k.ok(t, "wait", "--for=condition=Established", "--timeout=30s", "crd/"+resource)
	eventually(t, 30*time.Second, func() error {
		r := k.run(t, "", "get", resource, "-n", ns, "-o", "name")
		if r.code != 0 || strings.TrimSpace(r.stdout) != "" {
			return fmt.Errorf("recreated CRD: %v", r)
		}
		return nil
	})
	k.ok(t, "delete", "namespace", ns, "--wait=false")
}
