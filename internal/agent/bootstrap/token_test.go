package bootstrap

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestJoinToken(t *testing.T) {
	hash := "sha256:" + strings.Repeat("ab", 32)
	tok := "abcdef.0123456789abcdef"
	join, err := FormatJoinToken(tok, hash)
	if err != nil {
		t.Fatal(err)
	}
	if want := "K10" + strings.Repeat("ab", 32) + "::" + tok; join != want {
		t.Fatalf("FormatJoinToken = %q, want %q", join, want)
	}
	tests := []struct {
		name, in          string
		wantTok, wantHash string
		wantErr           bool
	}{
		{name: "join token", in: join, wantTok: tok, wantHash: hash},
		{name: "surrounding whitespace", in: " " + join + "\n", wantTok: tok, wantHash: hash},
		{name: "plain token", in: tok, wantTok: tok},
		{name: "short hash", in: "K10abcd::" + tok, wantErr: true},
		{name: "upper-case token", in: "ABCDEF.0123456789abcdef", wantErr: true},
		{name: "single colon", in: "K10" + strings.Repeat("ab", 32) + ":" + tok, wantErr: true},
		{name: "empty", in: "", wantErr: true},
		{name: "k3s user:password", in: "K10" + strings.Repeat("ab", 32) + "::server:secret", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotTok, gotHash, err := ParseJoinToken(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrBadToken) {
					t.Fatalf("ParseJoinToken(%q) error = %v, want ErrBadToken", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseJoinToken(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff([]string{tt.wantTok, tt.wantHash}, []string{gotTok, gotHash}); diff != "" {
				t.Errorf("ParseJoinToken(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
	if _, err := FormatJoinToken("nope", hash); err == nil {
		t.Error("FormatJoinToken accepted a malformed token")
	}
	if _, err := FormatJoinToken(tok, "md5:00"); err == nil {
		t.Error("FormatJoinToken accepted a malformed hash")
	}
}

func TestResolveToken(t *testing.T) {
	hash := "sha256:" + strings.Repeat("ab", 32)
	other := "sha256:" + strings.Repeat("cd", 32)
	tok := "abcdef.0123456789abcdef"
	join := "K10" + strings.Repeat("ab", 32) + "::" + tok
	tests := []struct {
		name, token, hash string
		wantHash          string
		wantErr           string
	}{
		{name: "join token", token: join, wantHash: hash},
		{name: "join token and same hash", token: join, hash: strings.ToUpper(hash[:7]) + hash[7:], wantErr: "does not start"},
		{name: "join token and equal hash", token: join, hash: hash, wantHash: hash},
		{name: "join token and other hash", token: join, hash: other, wantErr: "differs"},
		{name: "plain token and hash", token: tok, hash: other, wantHash: other},
		{name: "plain token without hash", token: tok, wantErr: "needs --ca-cert-hash"},
		{name: "bad hash", token: tok, hash: "sha256:zz", wantErr: "64 hex"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotTok, gotHash, err := ResolveToken(tt.token, tt.hash)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ResolveToken error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if gotTok != tok || gotHash != tt.wantHash {
				t.Errorf("ResolveToken = %q, %q; want %q, %q", gotTok, gotHash, tok, tt.wantHash)
			}
		})
	}
}
