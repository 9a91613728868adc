package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// requireNode skips the test unless this machine can run pods: root,
// containerd, runc, the CNI plugins, busybox-static and the go command
// (to build the test images). .ci/run installs all of them.
func requireNode(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("skipping: running pods needs root (CI runs this as root)")
	}
	for _, p := range []string{"/usr/bin/containerd", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/bin/busybox"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("skipping: %s is absent (apt-get install containerd runc containernetworking-plugins busybox-static)", p)
		}
	}
	for _, c := range []string{"runc", "go"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("skipping: %s is absent", c)
		}
	}
}

// buildTestImages builds the test images' archives into a temp dir.
func buildTestImages(t *testing.T) []string {
	t.Helper()
	out := t.TempDir()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(skiffBin, "images", "build-test", "--out", out, "--src", wd)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("skiff images build-test: %v\n%s", err, b)
	}
	return []string{filepath.Join(out, "busybox.tar"), filepath.Join(out, "testserver.tar")}
}

// startNode runs skiff server with its node agent on dir (node e2e-node
// on 127.0.0.1) and waits until the node is Ready and the test images are
// imported.
func startNode(t *testing.T, dir, listen, kubeletPort string, archives []string) (*serverProc, kubectl) {
	t.Helper()
	return startNodeArgs(t, dir, listen, "e2e-node", archives, "--node-ip", "127.0.0.1", "--kubelet-port", kubeletPort)
}

// startNodeArgs runs skiff server with its node agent named nodeName and
// the other server flags args, waits until the node is Ready, and imports
// archives into its containerd.
func startNodeArgs(t *testing.T, dir, listen, nodeName string, archives []string, args ...string) (*serverProc, kubectl) {
	t.Helper()
	srv := startServerArgs(t, dir, listen, append([]string{"--node-name", nodeName}, args...)...)
	k := kubectl{bin: filepath.Join(kubectlDir(), "kubectl.1.33"), kubeconfig: srv.kubeconfig}
	if _, err := os.Stat(k.bin); err != nil {
		t.Skipf("kubectl 1.33 not found: %v", err)
	}
	eventually(t, 90*time.Second, func() error {
		r := k.run(t, "", "get", "node", nodeName, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		if r.code != 0 || r.stdout != "True" {
			return fmt.Errorf("node not Ready: %v", r)
		}
		return nil
	})
	if len(archives) > 0 {
		eventually(t, 30*time.Second, func() error {
			b, err := exec.Command(skiffBin, append([]string{"images", "import", "--data-dir", dir}, archives...)...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("skiff images import: %v: %s", err, b)
			}
			return nil
		})
	}
	return srv, k
}

// cleanupNode stops whatever the node left behind under dir once the test
// is over (the server is killed first: cleanups run last-in first-out):
// "skiff reset" stops every pod through the CRI, which also releases their
// networks; then any process still running from the node (containerd,
// shims, containers: their cmdline or root file system is under dir) is
// killed and the mounts under dir are undone.
func cleanupNode(t *testing.T, dir string) {
	t.Cleanup(func() {
		if out, err := exec.Command(skiffBin, "reset", "--data-dir", dir).CombinedOutput(); err != nil {
			t.Logf("skiff reset: %v\n%s", err, out)
		}
		killUnder(dir)
	})
}

// podJSON returns the pod as JSON-decoded.
func getPod(t *testing.T, k kubectl, ns, name string) *corev1.Pod {
	t.Helper()
	var p corev1.Pod
	if err := json.Unmarshal([]byte(k.ok(t, "get", "pod", name, "-n", ns, "-o", "json")), &p); err != nil {
		t.Fatal(err)
	}
	return &p
}

func containerStatus(p *corev1.Pod, name string) *corev1.ContainerStatus {
	for i := range p.Status.ContainerStatuses {
		if p.Status.ContainerStatuses[i].Name == name {
			return &p.Status.ContainerStatuses[i]
		}
	}
	return nil
}

const nodeManifests = `
apiVersion: v1
kind: Namespace
metadata: {name: node}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: node}
data: {greeting: hello-from-configmap}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: node}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: skiff-test/testserver:1
        imagePullPolicy: Never
        ports: [{containerPort: 8080, name: http}]
        readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: shell, namespace: node}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: shell
    image: skiff-test/busybox:1.35
    imagePullPolicy: Never
    command: [sh, -c, 'echo hello-from-logs; echo "$(cat /etc/cfg/greeting)"; exec sleep 3600']
    volumeMounts: [{name: cfg, mountPath: /etc/cfg}]
  volumes:
  - name: cfg
    configMap: {name: settings}
---
apiVersion: v1
kind: Pod
metadata: {name: crasher, namespace: node}
spec:
  containers:
  - name: crasher
    image: skiff-test/busybox:1.35
    imagePullPolicy: Never
    command: [sh, -c, 'echo crashing; exit 3']
---
apiVersion: v1
kind: Pod
metadata: {name: unhealthy, namespace: node}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: skiff-test/busybox:1.35
    imagePullPolicy: Never
    command: [sleep, '3600']
    livenessProbe:
      exec: {command: [cat, /tmp/healthy]}
      periodSeconds: 1
      failureThreshold: 2
---
apiVersion: v1
kind: Pod
metadata: {name: hog, namespace: node}
spec:
  restartPolicy: Never
  containers:
  - name: hog
    image: skiff-test/busybox:1.35
    imagePullPolicy: Never
    # The pause lets containerd watch the container's memory cgroup for
    # OOM events first: a process killed in its first milliseconds can
    # exit before that, and is then reported as a plain Error (137).
    command: [sh, -c, 'sleep 1; exec dd if=/dev/zero of=/dev/null bs=128M count=1']
    resources:
      limits: {memory: 32Mi}
`

// TestNodeAgent runs the node agent of skiff server with real containerd
// and checks what a user does with pods through stock kubectl.
func TestNodeAgent(t *testing.T) {
	requireNode(t)
	archives := buildTestImages(t)
	dir := t.TempDir()
	cleanupNode(t, dir)
	listen, kubeletPort := freeAddr(t), freePort(t)
	srv, k := startNode(t, dir, listen, kubeletPort, archives)

	k.okStdin(t, nodeManifests, "apply", "-f", "-")
	k.ok(t, "rollout", "status", "-n", "node", "deployment/web", "--timeout", "90s")
	k.ok(t, "wait", "-n", "node", "--for=condition=Ready", "pod/shell", "--timeout", "60s")
	webPod := strings.TrimSpace(k.ok(t, "get", "pods", "-n", "node", "-l", "app=web", "-o", "jsonpath={.items[0].metadata.name}"))

	t.Run("serves on its pod IP", func(t *testing.T) {
		p := getPod(t, k, "node", webPod)
		if p.Status.PodIP == "" || p.Status.QOSClass != corev1.PodQOSBestEffort {
			t.Fatalf("status: podIP %q, qosClass %q", p.Status.PodIP, p.Status.QOSClass)
		}
		body := httpGet(t, "http://"+net.JoinHostPort(p.Status.PodIP, "8080")+"/")
		if !strings.Contains(body, webPod) {
			t.Errorf("GET / on the pod IP = %q, want the pod's host name %q", body, webPod)
		}
	})

	t.Run("logs", func(t *testing.T) {
		out := k.ok(t, "logs", "-n", "node", "shell")
		if !strings.Contains(out, "hello-from-logs") {
			t.Errorf("kubectl logs = %q", out)
		}
		if out := k.ok(t, "logs", "-n", "node", "shell", "--timestamps", "--tail", "1"); !strings.Contains(out, "hello-from-configmap") || !strings.Contains(out, "Z ") {
			t.Errorf("kubectl logs --timestamps --tail 1 = %q", out)
		}
	})

	t.Run("configmap volume", func(t *testing.T) {
		if out := k.ok(t, "exec", "-n", "node", "shell", "--", "cat", "/etc/cfg/greeting"); out != "hello-from-configmap" {
			t.Errorf("configmap file = %q", out)
		}
	})

	for _, v := range kubectlVersions {
		t.Run("exec with kubectl "+v, func(t *testing.T) {
			kv := findKubectl(t, v, srv.kubeconfig)
			if out := kv.ok(t, "exec", "-n", "node", "shell", "--", "sh", "-c", "echo hi"); out != "hi\n" {
				t.Errorf("exec output = %q, want %q", out, "hi\n")
			}
			r := kv.run(t, "", "exec", "-n", "node", "shell", "--", "sh", "-c", "exit 7")
			if r.code != 7 {
				t.Errorf("exec of exit 7: %v", r)
			}
			if out := kv.okStdin(t, "from-stdin\n", "exec", "-i", "-n", "node", "shell", "--", "cat"); out != "from-stdin\n" {
				t.Errorf("exec -i cat = %q", out)
			}
		})
	}

	t.Run("cp", func(t *testing.T) {
		src := filepath.Join(t.TempDir(), "payload.txt")
		if err := os.WriteFile(src, []byte("copied-in\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		k.ok(t, "cp", src, "node/shell:/tmp/payload.txt")
		if out := k.ok(t, "exec", "-n", "node", "shell", "--", "cat", "/tmp/payload.txt"); out != "copied-in\n" {
			t.Errorf("copied file = %q", out)
		}
		back := filepath.Join(t.TempDir(), "back.txt")
		k.ok(t, "cp", "node/shell:/tmp/payload.txt", back)
		if b, err := os.ReadFile(back); err != nil || string(b) != "copied-in\n" {
			t.Errorf("copied back: %q, %v", b, err)
		}
	})

	t.Run("statefulset storage", func(t *testing.T) {
		// A class like the default local-path one, with its directories
		// under this test's data dir rather than /var/lib/skiff/storage.
		storage := filepath.Join(dir, "volumes")
		k.okStdin(t, `apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: e2e-local}
provisioner: skiff.dev/local-path
reclaimPolicy: Delete
volumeBindingMode: WaitForFirstConsumer
parameters: {path: `+storage+`}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: node}
spec:
  serviceName: db
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: skiff-test/busybox:1.35
        imagePullPolicy: Never
        command: [sh, -c, 'test -f /data/first || hostname > /data/first; exec sleep 3600']
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      storageClassName: e2e-local
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
`, "apply", "-f", "-")
		k.ok(t, "rollout", "status", "-n", "node", "statefulset/db", "--timeout", "90s")
		if phase := k.ok(t, "get", "pvc", "-n", "node", "data-db-0", "-o", "jsonpath={.status.phase}"); phase != "Bound" {
			t.Fatalf("claim data-db-0 is %q, want Bound", phase)
		}
		pv := k.ok(t, "get", "pvc", "-n", "node", "data-db-0", "-o", "jsonpath={.spec.volumeName}")
		// WaitForFirstConsumer: the volume was provisioned for the node the
		// scheduler chose, and requires it.
		node := k.ok(t, "get", "pod", "-n", "node", "db-0", "-o", "jsonpath={.spec.nodeName}")
		if got := k.ok(t, "get", "pv", pv, "-o", "jsonpath={.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values[0]}"); node == "" || got != node {
			t.Errorf("volume %s requires node %q, want the pod's node %q", pv, got, node)
		}
		if _, err := os.Stat(filepath.Join(storage, pv, "first")); err != nil {
			t.Errorf("the provisioned volume's directory holds no data: %v", err)
		}
		// The data outlives the pod.
		k.ok(t, "delete", "pod", "-n", "node", "db-0", "--wait")
		k.ok(t, "wait", "-n", "node", "--for=condition=Ready", "pod/db-0", "--timeout", "60s")
		if out := k.ok(t, "exec", "-n", "node", "db-0", "--", "cat", "/data/first"); out != "db-0\n" {
			t.Errorf("/data/first after the pod came back = %q", out)
		}
		// Deleting the claim deletes the provisioned volume (reclaimPolicy Delete).
		k.ok(t, "delete", "statefulset", "-n", "node", "db", "--wait")
		k.ok(t, "delete", "pvc", "-n", "node", "data-db-0", "--wait")
		k.ok(t, "wait", "--for=delete", "pv/"+pv, "--timeout", "30s")

		// A generic ephemeral volume: its claim is made for the pod,
		// provisioned, mounted, and goes with the pod.
		k.okStdin(t, `apiVersion: v1
kind: Pod
metadata: {name: scratch, namespace: node}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: skiff-test/busybox:1.35
    imagePullPolicy: Never
    command: [sh, -c, 'echo in-ephemeral > /scratch/f; exec sleep 3600']
    volumeMounts: [{name: work, mountPath: /scratch}]
  volumes:
  - name: work
    ephemeral:
      volumeClaimTemplate:
        spec:
          storageClassName: e2e-local
          accessModes: [ReadWriteOnce]
          resources: {requests: {storage: 1Gi}}
`, "apply", "-f", "-")
		k.ok(t, "wait", "-n", "node", "--for=condition=Ready", "pod/scratch", "--timeout", "60s")
		if out := k.ok(t, "exec", "-n", "node", "scratch", "--", "cat", "/scratch/f"); out != "in-ephemeral\n" {
			t.Errorf("ephemeral volume content = %q", out)
		}
		k.ok(t, "delete", "pod", "-n", "node", "scratch", "--wait")
		// The claim goes with its pod (garbage collection by owner).
		k.ok(t, "wait", "-n", "node", "--for=delete", "pvc/scratch-work", "--timeout", "30s")
	})

	t.Run("kubectl run -i --rm", func(t *testing.T) {
		// stdin at its end at once (a script, CI): the attach must still
		// carry the output until the container exits (stdinOnce), and a
		// TTY pod asked for without a terminal must not hang.
		for _, v := range kubectlVersions {
			kv := findKubectl(t, v, srv.kubeconfig)
			out := kv.ok(t, "run", "-i", "--rm", "--restart=Never", "-n", "node", "once-"+strings.ReplaceAll(v, ".", "-"),
				"--image=skiff-test/busybox:1.35", "--image-pull-policy=Never", "--", "sh", "-c", "sleep 2; echo late-output")
			if !strings.Contains(out, "late-output") {
				t.Errorf("kubectl %s run -i --rm printed %q, want the container's output", v, out)
			}
		}
		// A command that is done before kubectl can attach: kubectl
		// falls back to the logs, so its output is not lost.
		out := k.ok(t, "run", "-i", "--rm", "--restart=Never", "-n", "node", "quick",
			"--image=skiff-test/busybox:1.35", "--image-pull-policy=Never", "--", "sh", "-c", "echo quick-output")
		if !strings.Contains(out, "quick-output") {
			t.Errorf("kubectl run -i --rm of a quick command printed %q, want its output", out)
		}
		start := time.Now()
		k.ok(t, "run", "-it", "--rm", "--restart=Never", "-n", "node", "tty-once",
			"--image=skiff-test/busybox:1.35", "--image-pull-policy=Never", "--", "sh", "-c", "sleep 2")
		if d := time.Since(start); d > 45*time.Second {
			t.Errorf("kubectl run -it --rm without a terminal took %v", d)
		}
	})

	t.Run("runtime class", func(t *testing.T) {
		// handler runc is the agent's containerd runtime; the class's
		// overhead lands on the pod.
		k.okStdin(t, `apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: e2e-runc}
handler: runc
overhead: {podFixed: {memory: 16Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: classy, namespace: node}
spec:
  runtimeClassName: e2e-runc
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: skiff-test/busybox:1.35
    imagePullPolicy: Never
    command: [sleep, "3600"]
`, "apply", "-f", "-")
		k.ok(t, "wait", "-n", "node", "--for=condition=Ready", "pod/classy", "--timeout", "60s")
		if got := k.ok(t, "get", "pod", "-n", "node", "classy", "-o", "jsonpath={.spec.overhead.memory}"); got != "16Mi" {
			t.Errorf("pod overhead = %q, want 16Mi", got)
		}
		r := k.run(t, `apiVersion: v1
kind: Pod
metadata: {name: classless, namespace: node}
spec:
  runtimeClassName: no-such-class
  containers: [{name: c, image: skiff-test/busybox:1.35}]
`, "apply", "-f", "-")
		if r.code == 0 || !strings.Contains(r.stderr, `RuntimeClass "no-such-class" not found`) {
			t.Errorf("a pod naming a missing RuntimeClass: %s", r)
		}
		k.ok(t, "delete", "pod", "-n", "node", "classy", "--wait")
	})

	t.Run("admission webhook behind a service", func(t *testing.T) { exerciseWebhookService(t, k) })

	t.Run("kubectl debug", func(t *testing.T) {
		// An ephemeral container in the running pod, in its app
		// container's process namespace (--target).
		k.ok(t, "debug", "-n", "node", "shell", "--image=skiff-test/busybox:1.35", "--image-pull-policy=Never",
			"--target=shell", "--container=debugger", "--", "sh", "-c", "echo from-debugger; exec sleep 3601")
		eventually(t, 60*time.Second, func() error {
			p := getPod(t, k, "node", "shell")
			for _, s := range p.Status.EphemeralContainerStatuses {
				if s.Name == "debugger" && s.State.Running != nil {
					return nil
				}
			}
			return fmt.Errorf("ephemeral container not running: %+v", p.Status.EphemeralContainerStatuses)
		})
		if out := k.ok(t, "logs", "-n", "node", "shell", "-c", "debugger"); !strings.Contains(out, "from-debugger") {
			t.Errorf("logs of the ephemeral container = %q", out)
		}
		if out := k.ok(t, "exec", "-n", "node", "shell", "-c", "debugger", "--", "ps"); !strings.Contains(out, "sleep 3600") {
			t.Errorf("ps in the ephemeral container does not show its target's process:\n%s", out)
		}
	})

	t.Run("port-forward", func(t *testing.T) {
		for _, v := range kubectlVersions {
			kv := findKubectl(t, v, srv.kubeconfig)
			port := freePort(t)
			ctx, cancel := context.WithCancel(context.Background())
			cmd := exec.CommandContext(ctx, kv.bin, "--kubeconfig", kv.kubeconfig, "port-forward", "-n", "node", "pod/"+webPod, port+":8080")
			stdout, _ := cmd.StdoutPipe()
			cmd.Stderr = io.Discard
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// kubectl prints "Forwarding from 127.0.0.1:PORT -> 8080" once listening.
			ready := make(chan struct{})
			go func() {
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					if strings.Contains(sc.Text(), "Forwarding from") {
						close(ready)
						break
					}
				}
				_, _ = io.Copy(io.Discard, stdout)
			}()
			select {
			case <-ready:
			case <-time.After(30 * time.Second):
				cancel()
				t.Fatalf("kubectl %s port-forward never became ready", v)
			}
			body := httpGet(t, "http://127.0.0.1:"+port+"/")
			cancel()
			_ = cmd.Wait()
			if !strings.Contains(body, webPod) {
				t.Errorf("kubectl %s port-forward: GET / = %q", v, body)
			}
		}
	})

	t.Run("crash loop", func(t *testing.T) {
		eventually(t, 60*time.Second, func() error {
			p := getPod(t, k, "node", "crasher")
			cs := containerStatus(p, "crasher")
			if cs == nil || cs.RestartCount < 1 || cs.LastTerminationState.Terminated == nil {
				return fmt.Errorf("not restarted yet: %+v", cs)
			}
			if code := cs.LastTerminationState.Terminated.ExitCode; code != 3 {
				return fmt.Errorf("last exit code %d, want 3", code)
			}
			if cs.State.Waiting == nil || cs.State.Waiting.Reason != "CrashLoopBackOff" {
				return fmt.Errorf("state %+v, want waiting CrashLoopBackOff", cs.State)
			}
			return nil
		})
		if out := k.ok(t, "logs", "-n", "node", "crasher", "--previous"); !strings.Contains(out, "crashing") {
			t.Errorf("kubectl logs --previous = %q", out)
		}
	})

	t.Run("liveness restarts", func(t *testing.T) {
		eventually(t, 60*time.Second, func() error {
			cs := containerStatus(getPod(t, k, "node", "unhealthy"), "app")
			if cs == nil || cs.RestartCount < 1 {
				return fmt.Errorf("not restarted yet: %+v", cs)
			}
			return nil
		})
		events := k.ok(t, "get", "events", "-n", "node", "--field-selector", "involvedObject.name=unhealthy")
		if !strings.Contains(events, "Unhealthy") {
			t.Errorf("no Unhealthy event:\n%s", events)
		}
	})

	t.Run("OOMKilled", func(t *testing.T) {
		eventually(t, 60*time.Second, func() error {
			p := getPod(t, k, "node", "hog")
			cs := containerStatus(p, "hog")
			if cs == nil || cs.State.Terminated == nil {
				return fmt.Errorf("not terminated yet: %+v", cs)
			}
			if cs.State.Terminated.Reason != "OOMKilled" || p.Status.Phase != corev1.PodFailed {
				return fmt.Errorf("terminated %+v, phase %s; want OOMKilled, Failed", cs.State.Terminated, p.Status.Phase)
			}
			return nil
		})
	})

	t.Run("preStop hook", func(t *testing.T) {
		hostDir := t.TempDir()
		k.okStdin(t, fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: hooked, namespace: node}
spec:
  terminationGracePeriodSeconds: 10
  containers:
  - name: app
    image: skiff-test/busybox:1.35
    imagePullPolicy: Never
    command: [sleep, '3600']
    lifecycle:
      preStop:
        exec: {command: [sh, -c, 'echo stopping > /host/prestop']}
    volumeMounts: [{name: host, mountPath: /host}]
  volumes:
  - name: host
    hostPath: {path: %s, type: Directory}
`, hostDir), "apply", "-f", "-")
		k.ok(t, "wait", "-n", "node", "--for=condition=Ready", "pod/hooked", "--timeout", "60s")
		k.ok(t, "delete", "pod", "-n", "node", "hooked", "--timeout", "60s")
		b, err := os.ReadFile(filepath.Join(hostDir, "prestop"))
		if err != nil || string(b) != "stopping\n" {
			t.Errorf("preStop hook output: %q, %v", b, err)
		}
	})

	t.Run("agent restart keeps containers", func(t *testing.T) {
		before := getPod(t, k, "node", webPod)
		cs := containerStatus(before, "web")
		if cs == nil || cs.State.Running == nil {
			t.Fatalf("web not running: %+v", cs)
		}
		// Kill the server and its agent outright, as a crash would.
		if err := srv.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-srv.done
		body := httpGet(t, "http://"+net.JoinHostPort(before.Status.PodIP, "8080")+"/")
		if !strings.Contains(body, webPod) {
			t.Errorf("pod stopped serving while the agent was down: %q", body)
		}
		srv2, k2 := startNode(t, dir, listen, kubeletPort, nil)
		defer srv2.stop(t)
		// Give the agent a moment to sync, then require the same container.
		eventually(t, 30*time.Second, func() error {
			after := getPod(t, k2, "node", webPod)
			cs2 := containerStatus(after, "web")
			if cs2 == nil || cs2.ContainerID != cs.ContainerID || cs2.RestartCount != cs.RestartCount || cs2.State.Running == nil || !cs2.Ready {
				return fmt.Errorf("after restart: %+v, before: %+v", cs2, cs)
			}
			return nil
		})
		// The API server is ready before the agent's kubelet API is.
		eventually(t, 30*time.Second, func() error {
			r := k2.run(t, "", "exec", "-n", "node", "shell", "--", "sh", "-c", "echo still-here")
			if r.code != 0 || r.stdout != "still-here\n" {
				return fmt.Errorf("exec after restart: %v", r)
			}
			return nil
		})
		k2.ok(t, "delete", "namespace", "node", "--timeout", "90s")
	})
}

// httpGet GETs url with a short timeout and returns the body.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	var body string
	eventually(t, 20*time.Second, func() error {
		c := &http.Client{Timeout: 3 * time.Second}
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s: %s", url, resp.Status, b)
		}
		body = string(b)
		return nil
	})
	return body
}
