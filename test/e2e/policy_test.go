package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// replicaPolicy is a ValidatingAdmissionPolicy as the Kubernetes docs
// write one: Deployments may not ask for more replicas than a ConfigMap
// parameter allows, with a variable and a message expression.
const replicaPolicy = `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: replica-limit
spec:
  failurePolicy: Fail
  paramKind:
    apiVersion: v1
    kind: ConfigMap
  matchConstraints:
    resourceRules:
    - apiGroups: ["apps"]
      apiVersions: ["v1"]
      operations: ["CREATE", "UPDATE"]
      resources: ["deployments"]
  variables:
  - name: limit
    expression: "int(params.data.maxReplicas)"
  validations:
  - expression: "object.spec.replicas <= variables.limit"
    messageExpression: "'replicas must be no greater than ' + string(variables.limit)"
    reason: Invalid
`

// replicaBinding binds replicaPolicy, with the ConfigMap "replica-limit"
// of the request's namespace as its parameter, to namespaces labelled
// policy=on.
const replicaBinding = `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: replica-limit
spec:
  policyName: replica-limit
  validationActions: [Deny]
  paramRef:
    name: replica-limit
    parameterNotFoundAction: Deny
  matchResources:
    namespaceSelector:
      matchLabels:
        policy: "on"
`

// labelPolicy warns (does not deny) about config maps without a team
// label.
const labelPolicy = `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: team-label
spec:
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: ["v1"]
      operations: ["CREATE"]
      resources: ["configmaps"]
  matchConditions:
  - name: not-the-parameter
    expression: "object.metadata.name != 'replica-limit'"
  validations:
  - expression: "has(object.metadata.labels) && 'team' in object.metadata.labels"
    message: config maps should carry a team label
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: team-label
spec:
  policyName: team-label
  validationActions: [Warn]
  matchResources:
    namespaceSelector:
      matchLabels:
        policy: "on"
`

// typeConfusedPolicy is the conformance suite's policy with type
// confusion: an int compared with a string, a string plus an int.
const typeConfusedPolicy = `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: confused
spec:
  matchConstraints:
    resourceRules:
    - apiGroups: ["apps"]
      apiVersions: ["v1"]
      operations: ["CREATE", "UPDATE"]
      resources: ["deployments"]
  validations:
  - expression: "object.spec.replicas > '1'"
    messageExpression: "'wants replicas > 1, got ' + object.spec.replicas"
`

// execPolicy refuses `rm` through pods/exec in namespaces labelled
// policy=on.
const execPolicy = `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: no-rm
spec:
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: ["v1"]
      operations: ["CONNECT"]
      resources: ["pods/exec"]
  validations:
  - expression: "!has(object.command) || size(object.command) == 0 || object.command[0] != 'rm'"
    message: no rm in pods
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: no-rm
spec:
  policyName: no-rm
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels:
        policy: "on"
`

func policyDeployment(ns string, replicas int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: %s
spec:
  replicas: %d
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: skiff.local/testserver:latest
`, ns, replicas)
}

// TestValidatingAdmissionPolicy writes policies and bindings with kubectl
// and sees the API server enforce them: denials with the policy's
// message, parameters from a ConfigMap (and a missing one), namespace
// selection, warnings, type checking in the status, and policies refused
// when an expression does not compile.
func TestValidatingAdmissionPolicy(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	srv := startServer(t, t.TempDir(), freeAddr(t))
	defer srv.stop(t)
	k := findKubectl(t, kubectlVersions[0], srv.kubeconfig)

	k.ok(t, "create", "namespace", "guarded")
	k.ok(t, "label", "namespace", "guarded", "policy=on")
	k.ok(t, "create", "namespace", "open")
	k.okStdin(t, replicaPolicy, "apply", "-f", "-")
	k.okStdin(t, replicaBinding, "apply", "-f", "-")
	k.ok(t, "wait", "--for=jsonpath={.status.observedGeneration}=1", "--timeout=30s",
		"validatingadmissionpolicy/replica-limit")
	out := k.ok(t, "get", "validatingadmissionpolicies")
	if hdr := strings.Join(strings.Fields(firstLine(out)), " "); hdr != "NAME VALIDATIONS PARAMKIND AGE" ||
		!strings.Contains(out, "v1/ConfigMap") {
		t.Errorf("kubectl get validatingadmissionpolicies:\n%s", out)
	}
	if out := k.ok(t, "get", "validatingadmissionpolicybindings"); !strings.Contains(out, "*/replica-limit") {
		t.Errorf("kubectl get validatingadmissionpolicybindings:\n%s", out)
	}

	// The parameter is missing: parameterNotFoundAction Deny.
	eventually(t, 30*time.Second, func() error {
		r := k.run(t, policyDeployment("guarded", 1), "apply", "-f", "-")
		if r.code == 0 {
			k.run(t, "", "delete", "deployment", "web", "-n", "guarded")
			return fmt.Errorf("a deployment was admitted without the policy's parameter: %v", r)
		}
		if !strings.Contains(r.stderr, "replica-limit") {
			return fmt.Errorf("unexpected refusal: %v", r)
		}
		return nil
	})

	// With the parameter: more replicas than allowed are refused with
	// the policy's message; fewer are admitted, and so is anything in a
	// namespace the binding does not select.
	k.ok(t, "create", "configmap", "replica-limit", "-n", "guarded", "--from-literal=maxReplicas=3")
	eventually(t, 30*time.Second, func() error {
		r := k.run(t, policyDeployment("guarded", 5), "apply", "-f", "-")
		if r.code == 0 || !strings.Contains(r.stderr, "replicas must be no greater than 3") {
			return fmt.Errorf("five replicas: %v", r)
		}
		if !strings.Contains(r.stderr, "ValidatingAdmissionPolicy 'replica-limit' with binding 'replica-limit' denied request") {
			return fmt.Errorf("five replicas refused without upstream's wording: %v", r)
		}
		return nil
	})
	k.okStdin(t, policyDeployment("guarded", 2), "apply", "-f", "-")
	r := k.run(t, "", "patch", "deployment/web", "-n", "guarded", "--type=merge", "-p", `{"spec":{"replicas":4}}`)
	if r.code == 0 || !strings.Contains(r.stderr, "replicas must be no greater than 3") {
		t.Errorf("an update past the limit: %v", r)
	}
	// The policy's rule names deployments, not deployments/scale: as
	// upstream, scaling through the subresource is not matched.
	k.ok(t, "scale", "deployment/web", "-n", "guarded", "--replicas=4")
	k.okStdin(t, policyDeployment("open", 10), "apply", "-f", "-")

	// A Warn binding: admitted, with kubectl printing the warning.
	k.okStdin(t, labelPolicy, "apply", "-f", "-")
	eventually(t, 30*time.Second, func() error {
		name := fmt.Sprintf("cm%d", time.Now().UnixNano())
		r := k.run(t, "", "create", "configmap", name, "-n", "guarded")
		if r.code != 0 {
			return fmt.Errorf("a Warn policy refused a write: %v", r)
		}
		if !strings.Contains(r.stderr, "config maps should carry a team label") {
			return fmt.Errorf("no warning yet: %v", r)
		}
		return nil
	})

	// CONNECT is admitted too: a policy on pods/exec sees the
	// PodExecOptions (refused before the pod is even looked up).
	k.okStdin(t, execPolicy, "apply", "-f", "-")
	eventually(t, 30*time.Second, func() error {
		r := k.run(t, "", "get", "--raw", "/api/v1/namespaces/guarded/pods/web-0/exec?command=rm&command=-rf&stdout=true")
		if r.code == 0 || !strings.Contains(r.stderr, "no rm in pods") {
			return fmt.Errorf("exec of rm: %v", r)
		}
		return nil
	})
	if r := k.run(t, "", "get", "--raw", "/api/v1/namespaces/guarded/pods/web-0/exec?command=ls&stdout=true"); !strings.Contains(r.stderr, "not found") {
		t.Errorf("an admitted exec should reach the pod lookup: %v", r)
	}

	// Type checking against the matched kinds' schemas, as the
	// conformance suite checks it: a policy that type-checks has no
	// warnings; a confused one has one per expression.
	if out := k.ok(t, "get", "validatingadmissionpolicy", "replica-limit", "-o", "jsonpath={.status.typeChecking}"); out != "{}" {
		t.Errorf("typeChecking of a sound policy: %q", out)
	}
	k.okStdin(t, typeConfusedPolicy, "apply", "-f", "-")
	eventually(t, 30*time.Second, func() error {
		out := k.ok(t, "get", "validatingadmissionpolicy", "confused", "-o",
			`jsonpath={range .status.typeChecking.expressionWarnings[*]}{.fieldRef}={.warning}{"\n"}{end}`)
		if !strings.Contains(out, "spec.validations[0].expression=apps/v1, Kind=Deployment: ERROR") ||
			!strings.Contains(out, "found no matching overload for '_>_' applied to '(int, string)'") ||
			!strings.Contains(out, "spec.validations[0].messageExpression=") ||
			!strings.Contains(out, "found no matching overload for '_+_' applied to '(string, int)'") {
			return fmt.Errorf("type checking warnings:\n%s", out)
		}
		return nil
	})

	// An expression that does not compile is refused when written.
	bad := strings.Replace(replicaPolicy, "name: replica-limit", "name: broken", 1)
	bad = strings.Replace(bad, "object.spec.replicas <= variables.limit", "object.spec.replicas <=", 1)
	r = k.run(t, bad, "apply", "-f", "-")
	if r.code == 0 || !strings.Contains(r.stderr, "spec.validations[0].expression") {
		t.Errorf("a policy whose expression does not compile: %v", r)
	}

	// Deleting the binding lifts the policy.
	k.ok(t, "delete", "validatingadmissionpolicybinding", "replica-limit")
	eventually(t, 30*time.Second, func() error {
		r := k.run(t, policyDeployment("guarded", 5), "apply", "-f", "-")
		if r.code != 0 {
			return fmt.Errorf("still refused after the binding was deleted: %v", r)
		}
		return nil
	})
}
