package pki

import (
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// KubeconfigName is the name of the cluster, user and context that
// WriteKubeconfig writes.
const KubeconfigName = "skiff"

// WriteKubeconfig writes a kubeconfig at path (mode 0600) with one cluster,
// user and context, all named "skiff", that reaches serverURL trusting caPEM
// and authenticates with the client certificate certPEM/keyPEM. The
// credentials are embedded, so the file works wherever it is copied. The
// write is atomic: a reader polling for path never sees a partial file.
func WriteKubeconfig(path, serverURL string, caPEM, certPEM, keyPEM []byte) error {
	cfg := clientcmdapi.NewConfig()
	cluster := clientcmdapi.NewCluster()
	cluster.Server = serverURL
	cluster.CertificateAuthorityData = caPEM
	cfg.Clusters[KubeconfigName] = cluster

	user := clientcmdapi.NewAuthInfo()
	user.ClientCertificateData = certPEM
	user.ClientKeyData = keyPEM
	cfg.AuthInfos[KubeconfigName] = user

	kctx := clientcmdapi.NewContext()
	kctx.Cluster = KubeconfigName
	kctx.AuthInfo = KubeconfigName
	cfg.Contexts[KubeconfigName] = kctx
	cfg.CurrentContext = KubeconfigName

	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	// clientcmd.WriteToFile is not atomic; write a private temporary file
	// with it and rename that into place.
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	tmpName := tmp.Name()
	if err := tmp.Close(); err != nil {
		_ = os.Remove(tmpName)
		return fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	if err := clientcmd.WriteToFile(*cfg, tmpName); err != nil {
		_ = os.Remove(tmpName)
		return fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	if err := os.Chmod(tmpName, 0o600); err != nil {
		_ = os.Remove(tmpName)
		return fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	if err := os.Rename(tmpName, path); err != nil {
		_ = os.Remove(tmpName)
		return fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	return nil
}
