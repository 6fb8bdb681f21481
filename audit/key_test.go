package audit

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeyFromFile(t *testing.T) {
	dir := t.TempDir()
	const material = "0123456789abcdef0123"
	tests := []struct {
		name    string
		content string
		wantLen int
		wantErr error
	}{
		{"raw", material, len(material), nil},
		{"trailing newline trimmed", material + "\n", len(material), nil},
		{"trailing CRLF trimmed", material + "\r\n", len(material), nil},
		{"only one newline trimmed", material + "\n\n", len(material) + 1, nil},
		{"binary kept", "\x00\x01\xff" + material, len(material) + 3, nil},
		{"too short", "kq7z\n", 0, ErrShortKey},
		{"empty", "", 0, ErrShortKey},
		{"exactly the minimum", strings.Repeat("k", MinKeyBytes) + "\n", MinKeyBytes, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			k, err := KeyFromFile(p)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("got error %v; want %v", err, tc.wantErr)
			}
			if len(k.b) != tc.wantLen {
				t.Errorf("got %d key bytes; want %d", len(k.b), tc.wantLen)
			}
			if err != nil && strings.Contains(err.Error(), strings.TrimSpace(tc.content)) && tc.content != "" {
				t.Errorf("the error shows the key material: %v", err)
			}
		})
	}
	if _, err := KeyFromFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: got %v; want fs.ErrNotExist", err)
	}
	big := filepath.Join(dir, "big")
	os.WriteFile(big, make([]byte, maxKeyFileBytes+1), 0o600)
	if _, err := KeyFromFile(big); err == nil {
		t.Errorf("oversized file: got nil error; want one")
	}
}

func TestKeyRedacted(t *testing.T) {
	material := "super-secret-key-material"
	k, err := NewKey([]byte(material))
	if err != nil {
		t.Fatal(err)
	}
	opt := Options{Key: k}
	js, err := json.Marshal(struct{ Key Key }{k})
	if err != nil || string(js) != `{"Key":{}}` {
		t.Errorf("json.Marshal: got %s, %v; want {\"Key\":{}}", js, err)
	}
	outputs := []string{
		k.String(), k.GoString(),
		fmt.Sprintf("%v %s %x %X %q %d %+v %#v", k, k, k, k, k, k, k, k),
		fmt.Sprintf("%+v %#v", opt, opt),
		string(js),
	}
	for _, out := range outputs {
		for _, leak := range []string{material, hex.EncodeToString([]byte(material)), "115 117 112"} {
			if strings.Contains(strings.ToLower(out), strings.ToLower(leak)) {
				t.Errorf("key material in %q", out)
			}
		}
	}
	if got := k.String(); got != "audit.Key(redacted)" {
		t.Errorf("String: got %q; want audit.Key(redacted)", got)
	}
	if got := (Key{}).String(); got != "audit.Key(none)" {
		t.Errorf("zero String: got %q; want audit.Key(none)", got)
	}
	// NewKey copies: changing the caller's slice does not change the key.
	b := []byte(material)
	k2, _ := NewKey(b)
	b[0] = 'X'
	if k2.b[0] != 's' {
		t.Errorf("NewKey kept the caller's slice")
	}
}
