package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecretString(t *testing.T) {
	tests := []struct {
		name string
		s    Secret
		want string
	}{
		{"zero", Secret{}, "none"},
		{"env", Secret{Env: "PAY_PW"}, "env:PAY_PW"},
		{"file", Secret{File: "/run/secrets/pay"}, "file:/run/secrets/pay"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.s.String(); got != tc.want {
				t.Errorf("String() = %q; want %q", got, tc.want)
			}
			if got := fmt.Sprint(tc.s); got != tc.want {
				t.Errorf("fmt.Sprint = %q; want %q", got, tc.want)
			}
			if got, want := tc.s.IsZero(), tc.want == "none"; got != want {
				t.Errorf("IsZero() = %v; want %v", got, want)
			}
		})
	}
}

func TestSecretResolve(t *testing.T) {
	const value = "correct horse battery staple"
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	env := map[string]string{"PAY_PW": value, "EMPTY": ""}
	getenv := func(k string) string { return env[k] }

	tests := []struct {
		name    string
		s       Secret
		want    string
		wantErr string // a piece of the error; "" for success
		is      error  // an error the result must wrap, or nil
	}{
		{name: "env", s: Secret{Env: "PAY_PW"}, want: value},
		{name: "env unset", s: Secret{Env: "NOPE"}, wantErr: "env:NOPE"},
		{name: "env empty", s: Secret{Env: "EMPTY"}, wantErr: "unset or empty"},
		{name: "file", s: Secret{File: write("plain", value)}, want: value},
		{name: "file with a trailing newline", s: Secret{File: write("nl", value+"\n")}, want: value},
		{name: "file with a trailing CRLF", s: Secret{File: write("crlf", value+"\r\n")}, want: value},
		{name: "file loses only one newline", s: Secret{File: write("nlnl", value+"\n\n")}, want: value + "\n"},
		{name: "file keeps other whitespace", s: Secret{File: write("sp", " "+value+" \n")}, want: " " + value + " "},
		{name: "file missing", s: Secret{File: filepath.Join(dir, "missing")}, wantErr: filepath.Join(dir, "missing"), is: fs.ErrNotExist},
		{name: "file empty", s: Secret{File: write("empty", "\n")}, wantErr: "is empty"},
		{name: "file too large", s: Secret{File: write("big", strings.Repeat(value, maxSecretBytes/len(value)+1))}, wantErr: "larger than"},
		{name: "a directory", s: Secret{File: dir}, wantErr: dir},
		{name: "both set", s: Secret{Env: "PAY_PW", File: write("both", value)}, wantErr: "exactly one"},
		{name: "zero", s: Secret{}, wantErr: "no env or file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.s.Resolve(getenv)
			if tc.wantErr == "" {
				if err != nil || got != tc.want {
					t.Fatalf("Resolve() = %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Resolve() = %q, nil; want an error containing %q", got, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Resolve() error %q; want it to contain %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "horse") {
				t.Errorf("Resolve() error %q holds part of the secret", err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("Resolve() error %v; want it to wrap %v", err, tc.is)
			}
			if got != "" {
				t.Errorf("Resolve() returned %q with an error; want \"\"", got)
			}
		})
	}
}

func TestSecretResolveDefaultsToOSEnvironment(t *testing.T) {
	t.Setenv("FTPGATE_POLICY_TEST_PW", "from the environment")
	got, err := Secret{Env: "FTPGATE_POLICY_TEST_PW"}.Resolve(nil)
	if err != nil || got != "from the environment" {
		t.Errorf("Resolve(nil) = %q, %v; want the process environment's value", got, err)
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	// Resolve a secret, then print everything that refers to it in every
	// way a log line might: the value must not appear.
	const value = "s3cr3t-value-xyz"
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	if err := os.WriteFile(file, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PW": value}
	secrets := []Secret{{Env: "PW"}, {File: file}}
	for _, s := range secrets {
		v, err := s.Resolve(func(k string) string { return env[k] })
		if err != nil || v != value {
			t.Fatalf("%v.Resolve() = %q, %v; want the value", s, v, err)
		}
		up := Upstream{Scheme: "sftp", Host: "h", Port: 22, User: "u", Password: s, KeyPassphrase: s, KeyFile: "/k"}
		for _, out := range []string{
			s.String(), fmt.Sprint(s), fmt.Sprintf("%v %+v %s", s, s, s),
			up.String(), fmt.Sprint(up), fmt.Sprintf("%v", up),
		} {
			if strings.Contains(out, value) {
				t.Errorf("printing %v gave %q, which holds the secret", s, out)
			}
		}
	}
}

func TestUpstreamString(t *testing.T) {
	tests := []struct {
		name string
		up   Upstream
		want string
	}{
		{"full", Upstream{Scheme: "sftp", Host: "sftp.partner.test", Port: 2222, User: "payuser", Dir: "/inbound/pay",
			Password: Secret{Env: "PAY_PW"}, KeyFile: "/etc/ftpgate/keys/pay"}, "sftp://payuser@sftp.partner.test:2222/inbound/pay"},
		{"no user or dir", Upstream{Scheme: "sftp", Host: "h", Port: 22}, "sftp://h:22"},
		{"IPv6", Upstream{Scheme: "sftp", Host: "2001:db8::5", Port: 22, User: "b", Dir: "/out"}, "sftp://b@[2001:db8::5]:22/out"},
		{"escapes", Upstream{Scheme: "sftp", Host: "h", Port: 22, User: "a b@c", Dir: "/pay roll"}, "sftp://a%20b%40c@h:22/pay%20roll"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.up.String(); got != tc.want {
				t.Errorf("String() = %q; want %q", got, tc.want)
			}
		})
	}
}
