// Package csrsigning is the CSR signing controller: it issues the
// certificates of approved CertificateSigningRequests for the cluster CA's
// built-in signers, as upstream's csrsigning controller does:
//
//	kubernetes.io/kube-apiserver-client-kubelet  node agents' client certificates
//	kubernetes.io/kube-apiserver-client          any client certificate
//	kubernetes.io/kubelet-serving                node agents' serving certificates
//
// Reads: certificatesigningrequests (shared informer) and the CA through a
// [Signer] ([FileSigner] reads internal/pki's DIR/pki/ca.crt and ca.key).
//
// Writes: certificatesigningrequests/status only: status.certificate (PEM)
// for an approved, valid request; a Failed condition (reason
// SignerValidationFailure) for an approved request whose shape does not
// fit its signer (see [Validate]).
//
// Never: it never signs a request that is not Approved, is Denied or
// Failed, already holds a certificate, or names another signer (those are
// left for other signers); never approves or denies; never issues a
// certificate outliving the CA, longer than [MaxDuration], or with CA
// rights.
//
// Certificates run from 5 minutes before now (clock skew, as upstream) for
// spec.expirationSeconds (at least [MinDuration]; [MaxDuration] when unset
// or larger), truncated to the CA's NotAfter.
//
// # Usage
//
//	signer, err := csrsigning.FileSigner(filepath.Join(dataDir, "pki", "ca.crt"), filepath.Join(dataDir, "pki", "ca.key"))
//	c := csrsigning.New(deps, signer) // registers the CSR informer on deps.Informers
//	deps.Informers.StartWithContext(ctx)
//	err = c.Run(ctx, workers) // blocks until ctx is done
package csrsigning
