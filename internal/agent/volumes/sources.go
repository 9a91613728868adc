package volumes

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	v1 "k8s.io/api/core/v1"
)

// defaultFileMode is the mode of projected files when the volume sets no
// defaultMode (the API server defaults it to the same value).
const defaultFileMode fs.FileMode = 0o644

func fileMode(item *int32, def *int32) fs.FileMode {
	switch {
	case item != nil:
		return fs.FileMode(*item) & fs.ModePerm
	case def != nil:
		return fs.FileMode(*def) & fs.ModePerm
	}
	return defaultFileMode
}

func isOptional(o *bool) bool { return o != nil && *o }

// keyData is the content of a config map or secret by key.
type keyData func(key string) ([]byte, bool)

// addKeys adds the keys of an object to p: every key when items is empty,
// else each item at its path. what names the object in errors
// (`configmap "x"`).
func addKeys(p payload, what string, keys []string, get keyData, items []v1.KeyToPath, optional bool, defMode *int32) error {
	if len(items) == 0 {
		for _, k := range keys {
			data, _ := get(k)
			p[k] = file{Data: data, Mode: fileMode(nil, defMode)}
		}
		return nil
	}
	for _, it := range items {
		data, ok := get(it.Key)
		if !ok {
			if optional {
				continue
			}
			return fmt.Errorf("%s has no key %q", what, it.Key)
		}
		if err := validatePayloadPath(it.Path); err != nil {
			return fmt.Errorf("key %q: %w", it.Key, err)
		}
		p[it.Path] = file{Data: data, Mode: fileMode(it.Mode, defMode)}
	}
	return nil
}

// configMapPayload adds config map name's keys to p. A missing optional
// config map adds nothing.
func (m *Manager) configMapPayload(ctx context.Context, p payload, pod *v1.Pod, name string, items []v1.KeyToPath, optional bool, defMode *int32) error {
	cm, err := m.objects.configMap(ctx, pod.UID, pod.Namespace, name)
	if err != nil {
		var nf *notFoundError
		if errors.As(err, &nf) && optional {
			return nil
		}
		return err
	}
	keys := make([]string, 0, len(cm.Data)+len(cm.BinaryData))
	for k := range cm.Data {
		keys = append(keys, k)
	}
	for k := range cm.BinaryData {
		keys = append(keys, k)
	}
	get := func(k string) ([]byte, bool) {
		if v, ok := cm.Data[k]; ok {
			return []byte(v), true
		}
		v, ok := cm.BinaryData[k]
		return v, ok
	}
	return addKeys(p, fmt.Sprintf("configmap %q", name), keys, get, items, optional, defMode)
}

// secretPayload adds secret name's keys to p. A missing optional secret
// adds nothing.
func (m *Manager) secretPayload(ctx context.Context, p payload, pod *v1.Pod, name string, items []v1.KeyToPath, optional bool, defMode *int32) error {
	s, err := m.objects.secret(ctx, pod.UID, pod.Namespace, name)
	if err != nil {
		var nf *notFoundError
		if errors.As(err, &nf) && optional {
			return nil
		}
		return err
	}
	keys := make([]string, 0, len(s.Data))
	for k := range s.Data {
		keys = append(keys, k)
	}
	get := func(k string) ([]byte, bool) {
		v, ok := s.Data[k]
		return v, ok
	}
	return addKeys(p, fmt.Sprintf("secret %q", name), keys, get, items, optional, defMode)
}

// downwardPayload adds downward API items to p.
func (m *Manager) downwardPayload(ctx context.Context, p payload, pod *v1.Pod, items []v1.DownwardAPIVolumeFile, defMode *int32) error {
	for _, it := range items {
		if err := validatePayloadPath(it.Path); err != nil {
			return err
		}
		var value string
		var err error
		switch {
		case it.FieldRef != nil:
			value, err = volumeFieldValue(pod, it.FieldRef)
		case it.ResourceFieldRef != nil:
			c := findContainer(pod, it.ResourceFieldRef.ContainerName)
			if c == nil {
				return fmt.Errorf("item %q: no container %q", it.Path, it.ResourceFieldRef.ContainerName)
			}
			value, err = resourceValue(ctx, m.nodes, c, it.ResourceFieldRef)
		default:
			return fmt.Errorf("item %q has neither fieldRef nor resourceFieldRef", it.Path)
		}
		if err != nil {
			return fmt.Errorf("item %q: %w", it.Path, err)
		}
		p[it.Path] = file{Data: []byte(value), Mode: fileMode(it.Mode, defMode)}
	}
	return nil
}

// projectedPayload builds a projected volume's payload.
func (m *Manager) projectedPayload(ctx context.Context, pod *v1.Pod, volName string, src *v1.ProjectedVolumeSource) (payload, error) {
	p := payload{}
	for i, s := range src.Sources {
		var err error
		switch {
		case s.ConfigMap != nil:
			err = m.configMapPayload(ctx, p, pod, s.ConfigMap.Name, s.ConfigMap.Items, isOptional(s.ConfigMap.Optional), src.DefaultMode)
		case s.Secret != nil:
			err = m.secretPayload(ctx, p, pod, s.Secret.Name, s.Secret.Items, isOptional(s.Secret.Optional), src.DefaultMode)
		case s.DownwardAPI != nil:
			err = m.downwardPayload(ctx, p, pod, s.DownwardAPI.Items, src.DefaultMode)
		case s.ServiceAccountToken != nil:
			var tok string
			tok, err = m.tokens.token(ctx, pod, volName, s.ServiceAccountToken)
			if err == nil {
				if verr := validatePayloadPath(s.ServiceAccountToken.Path); verr != nil {
					return nil, verr
				}
				p[s.ServiceAccountToken.Path] = file{Data: []byte(tok), Mode: fileMode(nil, src.DefaultMode)}
			}
		case s.ClusterTrustBundle != nil:
			err = fmt.Errorf("source %d: clusterTrustBundle sources are not supported", i)
		default:
			err = fmt.Errorf("source %d is empty", i)
		}
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}
