package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	port := flag.String("port", envOr("PORT", "8080"), "HTTP port")
	tcpPort := flag.String("tcp-port", envOr("TCP_PORT", "9000"), "TCP echo port")
	tlsPort := flag.String("tls-port", envOr("TLS_PORT", ""), "HTTPS port (with --tls-cert and --tls-key); empty: no HTTPS")
	tlsCert := flag.String("tls-cert", envOr("TLS_CERT", ""), "HTTPS certificate file (PEM)")
	tlsKey := flag.String("tls-key", envOr("TLS_KEY", ""), "HTTPS key file (PEM)")
	flag.Parse()
	if err := run(*port, *tcpPort, tlsConfig{port: *tlsPort, cert: *tlsCert, key: *tlsKey}); err != nil {
		log.Printf("testserver: %v", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// server holds the state the handlers share.
type server struct {
	unhealthy atomic.Bool
	mu        sync.Mutex
	held      [][]byte // guarded by mu; memory kept by /alloc
}

// tlsConfig says where HTTPS is served; port "" means not at all.
type tlsConfig struct{ port, cert, key string }

func run(port, tcpPort string, tc tlsConfig) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	tcp, err := net.Listen("tcp", net.JoinHostPort("", tcpPort))
	if err != nil {
		return fmt.Errorf("listening for TCP: %w", err)
	}
	go echo(tcp)

	s := &server{}
	mux := http.NewServeMux()
	mux.HandleFunc("/", s.hostname)
	mux.HandleFunc("/healthz", s.healthz)
	mux.HandleFunc("/fail-health", s.failHealth)
	mux.HandleFunc("/env", s.env)
	mux.HandleFunc("/exit", s.exit)
	mux.HandleFunc("/alloc", s.alloc)
	mux.HandleFunc("/file", s.file)
	mux.HandleFunc("/admission/deny-forbidden", admissionDenyForbidden)
	hs := &http.Server{Addr: net.JoinHostPort("", port), Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 2)
	go func() { errc <- hs.ListenAndServe() }()
	if tc.port != "" {
		ts := &http.Server{Addr: net.JoinHostPort("", tc.port), Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- ts.ListenAndServeTLS(tc.cert, tc.key) }()
		defer ts.Close()
		log.Printf("testserver: serving HTTPS on :%s", tc.port)
	}
	log.Printf("testserver: serving HTTP on :%s and TCP echo on :%s", port, tcpPort)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Printf("testserver: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func echo(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				if len(line) > 0 {
					if _, werr := io.WriteString(c, line); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

func (s *server) hostname(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	h, err := os.Hostname()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	fmt.Fprintln(w, h)
}

func (s *server) healthz(w http.ResponseWriter, _ *http.Request) {
	if s.unhealthy.Load() {
		http.Error(w, "unhealthy", http.StatusInternalServerError)
		return
	}
	fmt.Fprintln(w, "ok")
}

func (s *server) failHealth(w http.ResponseWriter, _ *http.Request) {
	s.unhealthy.Store(true)
	fmt.Fprintln(w, "healthz will fail")
}

func (s *server) env(w http.ResponseWriter, _ *http.Request) {
	env := os.Environ()
	sort.Strings(env)
	for _, e := range env {
		fmt.Fprintln(w, e)
	}
}

func (s *server) exit(w http.ResponseWriter, r *http.Request) {
	code, err := strconv.Atoi(r.URL.Query().Get("code"))
	if err != nil {
		http.Error(w, "code must be an integer", http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "exiting with %d\n", code)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	go func() {
		time.Sleep(100 * time.Millisecond) // let the answer leave
		os.Exit(code)
	}()
}

func (s *server) alloc(w http.ResponseWriter, r *http.Request) {
	mb, err := strconv.Atoi(r.URL.Query().Get("mb"))
	if err != nil || mb < 0 {
		http.Error(w, "mb must be a non-negative integer", http.StatusBadRequest)
		return
	}
	b := make([]byte, mb<<20)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	s.mu.Lock()
	s.held = append(s.held, b)
	total := 0
	for _, h := range s.held {
		total += len(h)
	}
	s.mu.Unlock()
	fmt.Fprintf(w, "holding %d MiB\n", total>>20)
}

func (s *server) file(w http.ResponseWriter, r *http.Request) {
	b, err := os.ReadFile(r.URL.Query().Get("path"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	w.Write(b)
}

// admissionReview is the part of an admission.k8s.io/v1 AdmissionReview
// this server reads and writes (the image uses the standard library only).
type admissionReview struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Request    *struct {
		UID    string `json:"uid"`
		Object struct {
			Data map[string]string `json:"data"`
		} `json:"object"`
	} `json:"request,omitempty"`
	Response *admissionResponse `json:"response,omitempty"`
}

type admissionResponse struct {
	UID     string `json:"uid"`
	Allowed bool   `json:"allowed"`
	Status  *struct {
		Message string `json:"message"`
	} `json:"status,omitempty"`
}

// admissionDenyForbidden is a validating admission webhook: it refuses
// objects (config maps) whose data has a key "forbidden".
func admissionDenyForbidden(w http.ResponseWriter, r *http.Request) {
	var review admissionReview
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&review); err != nil || review.Request == nil {
		http.Error(w, "not an AdmissionReview", http.StatusBadRequest)
		return
	}
	resp := &admissionResponse{UID: review.Request.UID, Allowed: true}
	if _, bad := review.Request.Object.Data["forbidden"]; bad {
		resp.Allowed = false
		resp.Status = &struct {
			Message string `json:"message"`
		}{Message: "the testserver webhook refuses key forbidden"}
	}
	review.Request, review.Response = nil, resp
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(&review)
}
