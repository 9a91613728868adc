package volumes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/skiff-dev/skiff/internal/agent/cri"
)

// expand replaces $(NAME) references in s with lookup(NAME) when defined,
// as upstream: "$$" is an escaped "$", a reference to an undefined name
// and an unterminated "$(" stay as written.
func expand(s string, lookup func(string) (string, bool)) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch next := s[i+1]; next {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString("$(")
				i++
				continue
			}
			name := s[i+2 : i+2+end]
			if v, ok := lookup(name); ok {
				b.WriteString(v)
			} else {
				b.WriteString("$(" + name + ")")
			}
			i += 2 + end
		default:
			b.WriteByte('$')
			b.WriteByte(next)
			i++
		}
	}
	return b.String()
}

// orderedEnv is an environment that keeps the order in which names were
// first defined; a later definition replaces the value in place.
type orderedEnv struct {
	names  []string
	values map[string]string
}

func (e *orderedEnv) set(name, value string) {
	if e.values == nil {
		e.values = map[string]string{}
	}
	if _, ok := e.values[name]; !ok {
		e.names = append(e.names, name)
	}
	e.values[name] = value
}

// Env returns c's environment, as upstream computes it:
//
//  1. envFrom, in order (config maps' and secrets' keys, with the prefix);
//     a missing optional object adds nothing;
//  2. env, in order, overriding what envFrom set: a value with $(NAME)
//     expanded from the variables defined before it and the service
//     variables, or a valueFrom (config map or secret key, optional; a
//     fieldRef; a resourceFieldRef with its divisor);
//  3. the service link variables (FOO_SERVICE_HOST, FOO_PORT_80_TCP, …)
//     not already defined, sorted by name: the services of the pod's
//     namespace when spec.enableServiceLinks is not false, and the
//     `kubernetes` service of the default namespace always.
//
// Variables of steps 1–2 come in the order they were first defined.
// pod.Status.PodIP(s) and HostIP(s) must be filled. The sync calls it before
// creating each container; errors name the missing object (`configmap "x"
// not found`) and mean CreateContainerConfigError.
func (m *Manager) Env(ctx context.Context, pod *v1.Pod, c *v1.Container) ([]cri.EnvVar, error) {
	services, err := m.serviceEnv(ctx, pod)
	if err != nil {
		return nil, err
	}
	var env orderedEnv
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm, err := m.objects.configMap(ctx, pod.UID, pod.Namespace, from.ConfigMapRef.Name)
			if err != nil {
				if isNotFound(err) && isOptional(from.ConfigMapRef.Optional) {
					continue
				}
				return nil, err
			}
			for _, k := range sortedKeys(cm.Data) {
				addFromKey(&env, from.Prefix+k, cm.Data[k])
			}
		case from.SecretRef != nil:
			s, err := m.objects.secret(ctx, pod.UID, pod.Namespace, from.SecretRef.Name)
			if err != nil {
				if isNotFound(err) && isOptional(from.SecretRef.Optional) {
					continue
				}
				return nil, err
			}
			for _, k := range sortedKeys(s.Data) {
				addFromKey(&env, from.Prefix+k, string(s.Data[k]))
			}
		}
	}
	lookup := func(name string) (string, bool) {
		if v, ok := env.values[name]; ok {
			return v, true
		}
		v, ok := services.values[name]
		return v, ok
	}
	for _, ev := range c.Env {
		err = nil
		value := ev.Value
		if value != "" {
			value = expand(value, lookup)
		} else if from := ev.ValueFrom; from != nil {
			var ok bool
			switch {
			case from.FieldRef != nil:
				value, err = envFieldValue(pod, from.FieldRef)
			case from.ResourceFieldRef != nil:
				target := c
				if n := from.ResourceFieldRef.ContainerName; n != "" && n != c.Name {
					if target = findContainer(pod, n); target == nil {
						err = fmt.Errorf("no container %q", n)
					}
				}
				if err == nil {
					value, err = resourceValue(ctx, m.nodes, target, from.ResourceFieldRef)
				}
			case from.ConfigMapKeyRef != nil:
				ref := from.ConfigMapKeyRef
				var cm *v1.ConfigMap
				cm, err = m.objects.configMap(ctx, pod.UID, pod.Namespace, ref.Name)
				if err != nil {
					if isNotFound(err) && isOptional(ref.Optional) {
						continue
					}
					return nil, err
				}
				if value, ok = cm.Data[ref.Key]; !ok {
					if isOptional(ref.Optional) {
						continue
					}
					return nil, fmt.Errorf("configmap %q has no key %q (env %q)", ref.Name, ref.Key, ev.Name)
				}
			case from.SecretKeyRef != nil:
				ref := from.SecretKeyRef
				var s *v1.Secret
				s, err = m.objects.secret(ctx, pod.UID, pod.Namespace, ref.Name)
				if err != nil {
					if isNotFound(err) && isOptional(ref.Optional) {
						continue
					}
					return nil, err
				}
				var data []byte
				if data, ok = s.Data[ref.Key]; !ok {
					if isOptional(ref.Optional) {
						continue
					}
					return nil, fmt.Errorf("secret %q has no key %q (env %q)", ref.Name, ref.Key, ev.Name)
				}
				value = string(data)
			default:
				err = errors.New("unsupported valueFrom")
			}
			if err != nil {
				return nil, fmt.Errorf("env %q: %w", ev.Name, err)
			}
		}
		env.set(ev.Name, value)
	}

	out := make([]cri.EnvVar, 0, len(env.names)+len(services.names))
	for _, n := range env.names {
		out = append(out, cri.EnvVar{Name: n, Value: env.values[n]})
	}
	for _, n := range services.names {
		if _, ok := env.values[n]; !ok {
			out = append(out, cri.EnvVar{Name: n, Value: services.values[n]})
		}
	}
	return out, nil
}

func isNotFound(err error) bool {
	var nf *notFoundError
	return errors.As(err, &nf)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// addFromKey adds an envFrom key, skipping names no environment can hold.
func addFromKey(env *orderedEnv, name, value string) {
	if name == "" || strings.ContainsAny(name, "=\x00") {
		return
	}
	env.set(name, value)
}

// serviceEnv computes the service link variables of pod, sorted by name.
func (m *Manager) serviceEnv(ctx context.Context, pod *v1.Pod) (orderedEnv, error) {
	chosen := map[string]*v1.Service{}
	// The API server's own service is always linked (in-cluster clients
	// find it through KUBERNETES_SERVICE_HOST and _PORT).
	def, err := m.objects.services(ctx, "default")
	if err != nil {
		return orderedEnv{}, err
	}
	for _, s := range def {
		if s.Name == "kubernetes" {
			chosen[s.Name] = s
		}
	}
	if pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks {
		svcs, err := m.objects.services(ctx, pod.Namespace)
		if err != nil {
			return orderedEnv{}, err
		}
		for _, s := range svcs {
			chosen[s.Name] = s
		}
	}
	var env orderedEnv
	for _, name := range sortedKeys(chosen) {
		addServiceVars(&env, chosen[name])
	}
	sort.Strings(env.names)
	return env, nil
}

// envName turns a service or port name into a variable name part.
func envName(s string) string {
	return strings.ToUpper(strings.ReplaceAll(s, "-", "_"))
}

// addServiceVars adds the variables of one service: FOO_SERVICE_HOST,
// FOO_SERVICE_PORT, FOO_SERVICE_PORT_<PORTNAME>, and the docker-link ones
// (FOO_PORT, FOO_PORT_80_TCP, …_PROTO, …_PORT, …_ADDR). Headless services
// and services without a cluster IP or ports have none.
func addServiceVars(env *orderedEnv, s *v1.Service) {
	ip := s.Spec.ClusterIP
	if ip == "" || ip == v1.ClusterIPNone || len(s.Spec.Ports) == 0 {
		return
	}
	prefix := envName(s.Name)
	env.set(prefix+"_SERVICE_HOST", ip)
	env.set(prefix+"_SERVICE_PORT", strconv.Itoa(int(s.Spec.Ports[0].Port)))
	for _, p := range s.Spec.Ports {
		if p.Name != "" {
			env.set(prefix+"_SERVICE_PORT_"+envName(p.Name), strconv.Itoa(int(p.Port)))
		}
	}
	for i, p := range s.Spec.Ports {
		proto := strings.ToLower(string(p.Protocol))
		if proto == "" {
			proto = "tcp"
		}
		port := strconv.Itoa(int(p.Port))
		url := proto + "://" + net.JoinHostPort(ip, port)
		if i == 0 {
			env.set(prefix+"_PORT", url)
		}
		pp := prefix + "_PORT_" + port + "_" + strings.ToUpper(proto)
		env.set(pp, url)
		env.set(pp+"_PROTO", proto)
		env.set(pp+"_PORT", port)
		env.set(pp+"_ADDR", ip)
	}
}
