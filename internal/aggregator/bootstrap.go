package aggregator

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/skiff-dev/skiff/internal/pki"
)

// Names upstream gives the objects extension API servers read.
const (
	authConfigMap      = "extension-apiserver-authentication"
	authReaderRole     = "extension-apiserver-authentication-reader"
	authReaderBinding  = "system::extension-apiserver-authentication-reader"
	kubeSystem         = metav1.NamespaceSystem
	bootstrappingLabel = "kubernetes.io/bootstrapping"
)

// authConfigData is the config map's content: the client CA, and the
// front-proxy CA with the name and headers extension servers accept.
func (a *Aggregator) authConfigData() map[string]string {
	list := func(v ...string) string {
		b, _ := json.Marshal(v)
		return string(b)
	}
	data := map[string]string{"client-ca-file": string(a.cfg.ClientCAPEM)}
	if fp := a.cfg.FrontProxy; fp != nil {
		data["requestheader-client-ca-file"] = string(fp.CAPEM)
		data["requestheader-allowed-names"] = list(pki.FrontProxyClientUser)
		data["requestheader-username-headers"] = list("X-Remote-User")
		data["requestheader-uid-headers"] = list("X-Remote-Uid")
		data["requestheader-group-headers"] = list("X-Remote-Group")
		data["requestheader-extra-headers-prefix"] = list("X-Remote-Extra-")
	}
	return data
}

// bootstrap writes the config map (its data kept as computed here) and
// creates the reader role and binding when missing.
func (a *Aggregator) bootstrap(ctx context.Context, client kubernetes.Interface) error {
	data := a.authConfigData()
	cms := client.CoreV1().ConfigMaps(kubeSystem)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cm, err := cms.Get(ctx, authConfigMap, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = cms.Create(ctx, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: authConfigMap, Namespace: kubeSystem},
				Data:       data,
			}, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				return apierrors.NewConflict(corev1.Resource("configmaps"), authConfigMap, err)
			}
			return err
		}
		if err != nil || maps.Equal(cm.Data, data) {
			return err
		}
		cm.Data = data
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("aggregator: writing %s/%s: %w", kubeSystem, authConfigMap, err)
	}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: authReaderRole, Namespace: kubeSystem,
			Labels:      map[string]string{bootstrappingLabel: "rbac-defaults"},
			Annotations: map[string]string{"rbac.authorization.kubernetes.io/autoupdate": "true"}},
		Rules: []rbacv1.PolicyRule{{
			Verbs: []string{"get", "list", "watch"}, APIGroups: []string{""},
			Resources: []string{"configmaps"}, ResourceNames: []string{authConfigMap},
		}},
	}
	if _, err := client.RbacV1().Roles(kubeSystem).Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("aggregator: creating role %s/%s: %w", kubeSystem, authReaderRole, err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: authReaderBinding, Namespace: kubeSystem,
			Labels:      map[string]string{bootstrappingLabel: "rbac-defaults"},
			Annotations: map[string]string{"rbac.authorization.kubernetes.io/autoupdate": "true"}},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: authReaderRole},
		Subjects: []rbacv1.Subject{
			{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "system:kube-controller-manager"},
			{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "system:kube-scheduler"},
		},
	}
	if _, err := client.RbacV1().RoleBindings(kubeSystem).Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("aggregator: creating role binding %s/%s: %w", kubeSystem, authReaderBinding, err)
	}
	return nil
}
