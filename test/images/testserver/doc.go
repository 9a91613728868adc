// Command testserver is the process of the skiff-test/testserver:1 image
// that end-to-end and runtime tests run in pods. It must stay a static
// binary (CGO_ENABLED=0) using only the standard library.
//
// HTTP on $PORT (default 8080):
//
//	/              the hostname
//	/healthz       "ok"; 500 once /fail-health was called
//	/fail-health   makes /healthz fail from now on
//	/env           the environment, one VAR=value a line, sorted
//	/exit?code=N   exits the process with status N after answering
//	/alloc?mb=N    allocates and touches N MiB and keeps it (OOM tests)
//	/file?path=P   the content of file P (mounted volumes, termination logs)
//	/admission/deny-forbidden
//	               a validating admission webhook (AdmissionReview v1):
//	               refuses objects whose data has the key "forbidden"
//
// HTTPS on $TLS_PORT (flag --tls-port; none by default) serves the same
// paths with the certificate and key in --tls-cert and --tls-key.
//
// TCP on $TCP_PORT (default 9000): echoes each line back. Flags --port and
// --tcp-port override the environment; SIGTERM exits 0.
package main
