package kubeletclient

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// DefaultPort is the kubelet port used when a node does not publish one.
const DefaultPort = 10250

const defaultDialTimeout = 10 * time.Second

// ErrNoAddress is returned (wrapped) when a node publishes no address the
// kubelet could be reached at.
var ErrNoAddress = errors.New("kubeletclient: node has no usable address")

// Config configures a Client.
type Config struct {
	// Nodes looks a node up by name; the API server passes a lookup on its
	// node store. Its errors are returned unchanged (an API NotFound stays
	// a NotFound). Required.
	Nodes func(ctx context.Context, name string) (*corev1.Node, error)
	// ClientCert is presented to kubelets (upstream: CN
	// kube-apiserver-kubelet-client, O system:masters). A zero value means
	// no client certificate.
	ClientCert tls.Certificate
	// RootCAs verifies kubelet serving certificates. Nil means they are not
	// verified (upstream's default: kubelets serve self-signed certs).
	RootCAs *x509.CertPool
	// DialTimeout bounds TCP connect plus TLS handshake; 0 means 10s.
	DialTimeout time.Duration
}

// Client reaches kubelets. It is safe for concurrent use.
type Client struct {
	cfg       Config
	tlsConfig *tls.Config
	dialer    *net.Dialer
	transport *http.Transport
}

// New builds a Client. It starts nothing and does no I/O.
func New(cfg Config) *Client {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = defaultDialTimeout
	}
	tc := &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    cfg.RootCAs,
		// Without RootCAs the kubelet's self-signed cert is accepted, as
		// upstream does without --kubelet-certificate-authority.
		InsecureSkipVerify: cfg.RootCAs == nil, //nolint:gosec // documented upstream default
		NextProtos:         []string{"http/1.1"},
	}
	if len(cfg.ClientCert.Certificate) > 0 {
		tc.Certificates = []tls.Certificate{cfg.ClientCert}
	}
	dialer := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	c := &Client{cfg: cfg, tlsConfig: tc, dialer: dialer}
	c.transport = &http.Transport{
		DialContext:         dialer.DialContext,
		TLSClientConfig:     tc.Clone(),
		TLSHandshakeTimeout: cfg.DialTimeout,
		MaxIdleConnsPerHost: 25,
		IdleConnTimeout:     90 * time.Second,
	}
	return c
}

// Transport returns the transport plain requests to kubelets use. Callers
// must not modify it.
func (c *Client) Transport() *http.Transport { return c.transport }

// TLSConfig returns a copy of the TLS client configuration for hand-made
// dials to kubelets.
func (c *Client) TLSConfig() *tls.Config { return c.tlsConfig.Clone() }

// URL resolves nodeName to https://<address>:<port><path>?<query>. The
// address is the node's InternalIP, else its Hostname, else its ExternalIP;
// the port is status.daemonEndpoints.kubeletEndpoint.port (10250 when
// unset). It fails with the lookup's error, or with ErrNoAddress.
func (c *Client) URL(ctx context.Context, nodeName, path string, query url.Values) (*url.URL, error) {
	if c.cfg.Nodes == nil {
		return nil, errors.New("kubeletclient: no node lookup configured")
	}
	node, err := c.cfg.Nodes(ctx, nodeName)
	if err != nil {
		return nil, err
	}
	host := nodeAddress(node)
	if host == "" {
		return nil, fmt.Errorf("node %q: %w", nodeName, ErrNoAddress)
	}
	port := int(node.Status.DaemonEndpoints.KubeletEndpoint.Port)
	if port <= 0 {
		port = DefaultPort
	}
	u := &url.URL{Scheme: "https", Host: net.JoinHostPort(host, strconv.Itoa(port)), Path: path}
	if len(query) > 0 {
		u.RawQuery = query.Encode()
	}
	return u, nil
}

// nodeAddress picks the address the kubelet is reached at, by type
// preference.
func nodeAddress(node *corev1.Node) string {
	for _, t := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeHostName, corev1.NodeExternalIP} {
		for _, a := range node.Status.Addresses {
			if a.Type == t && a.Address != "" {
				return a.Address
			}
		}
	}
	return ""
}

// Get sends GET path?query to the kubelet of nodeName. The response is
// returned whatever its status code; the caller closes its body.
// Cancelling ctx aborts the request, including a streaming body.
func (c *Client) Get(ctx context.Context, nodeName, path string, query url.Values) (*http.Response, error) {
	u, err := c.URL(ctx, nodeName, path, query)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("building kubelet request: %w", err)
	}
	resp, err := c.transport.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u.Redacted(), err)
	}
	return resp, nil
}

// Dial opens a TLS connection to u's host with the kubelet client
// configuration, bounded by ctx and Config.DialTimeout.
func (c *Client) Dial(ctx context.Context, u *url.URL) (net.Conn, error) {
	tc := c.tlsConfig.Clone()
	tc.ServerName = u.Hostname()
	d := &tls.Dialer{NetDialer: c.dialer, Config: tc}
	dctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	conn, err := d.DialContext(dctx, "tcp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("dialing kubelet %s: %w", u.Host, err)
	}
	return conn, nil
}

// Upgrade sends an HTTP/1.1 upgrade request (method, u, header; no body)
// over a new connection from Dial and reads the response head.
//
// On 101 Switching Protocols it returns the upgraded connection (reads
// first return any bytes that arrived with the response head) and the
// response; the caller owns and closes conn. On any other status conn is
// nil and resp.Body reads the kubelet's answer; closing it closes the
// connection. ctx bounds only the handshake, not the upgraded connection.
func (c *Client) Upgrade(ctx context.Context, method string, u *url.URL, header http.Header) (net.Conn, *http.Response, error) {
	conn, err := c.Dial(ctx, u)
	if err != nil {
		return nil, nil, err
	}
	// Abort the handshake when ctx ends; undone before returning conn.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	req := &http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     header.Clone(),
		Host:       u.Host,
	}
	if req.Header == nil {
		req.Header = http.Header{}
	}
	fail := func(err error) (net.Conn, *http.Response, error) {
		stop()
		_ = conn.Close()
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return nil, nil, err
	}
	if err := req.Write(conn); err != nil {
		return fail(fmt.Errorf("sending upgrade request to kubelet %s: %w", u.Host, err))
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return fail(fmt.Errorf("reading upgrade response from kubelet %s: %w", u.Host, err))
	}
	if !stop() {
		return fail(fmt.Errorf("upgrading connection to kubelet %s: %w", u.Host, ctx.Err()))
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		resp.Body = &closeBoth{ReadCloser: resp.Body, conn: conn}
		return nil, resp, nil
	}
	return &bufferedConn{Conn: conn, r: br}, resp, nil
}

// bufferedConn reads through the reader that parsed the response head, so
// that bytes sent right after it are not lost.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// CloseWrite half-closes the TLS connection when possible.
func (c *bufferedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

type closeBoth struct {
	io.ReadCloser
	conn net.Conn
}

func (c *closeBoth) Close() error {
	err := c.ReadCloser.Close()
	if cerr := c.conn.Close(); err == nil {
		err = cerr
	}
	return err
}
