package policy

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// ftpsPolicy holds every FTPS key. Line numbers matter: the test checks
// Route.Line.
const ftpsPolicy = `version: 1
known_hosts: /etc/ftpgate/known_hosts
routes:
  - name: ledger
    user: LEDGER
    password_bcrypt: "HASH"
    upstream: ftpes://ledger@ftp.partner.test/in
    upstream_password: {env: LEDGER_PW}
    tls_ca_file: /etc/ftpgate/partner-ca.pem
    tls_cert_sha256: ["PIN1", "PIN1", "PIN2"]
    tls_min_version: "1.2"
    tls_ciphers: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256]
    tls_client_cert: /etc/ftpgate/tls/client.pem
    tls_client_key: /etc/ftpgate/tls/client.key
    tls_server_name: ftp.partner.test
    passive_use_reply_address: true
  - user: mvs
    upstream: ftps://[2001:db8::21]
    tls_min_version: 1.3
  - user: plain
    upstream: FTPES://files.partner.test:2121
  - user: ip
    upstream: ftps://10.1.2.3:9990
    tls_server_name: 10.1.2.3
`

func TestLoadFTPSRoutes(t *testing.T) {
	text := fixture(t, ftpsPolicy)
	p, err := Load(strings.NewReader(text), "ftps.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	hash := text[strings.Index(text, "$2a$"):]
	hash = hash[:strings.IndexByte(hash, '"')]
	want := []Route{
		{
			Name: "ledger", User: "LEDGER", Auth: AuthLocal, PasswordBcrypt: hash, Line: 4,
			Upstream: Upstream{
				Scheme: "ftpes", Host: "ftp.partner.test", Port: 21, User: "ledger", Dir: "/in",
				Password:      Secret{Env: "LEDGER_PW"},
				TLSCAFile:     "/etc/ftpgate/partner-ca.pem",
				TLSCertSHA256: []string{testPin1, testPin2}, // the repeated pin once
				TLSMinVersion: tls.VersionTLS12,
				TLSCiphers: []uint16{
					tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
					tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
				},
				TLSClientCert:          "/etc/ftpgate/tls/client.pem",
				TLSClientKey:           "/etc/ftpgate/tls/client.key",
				TLSServerName:          "ftp.partner.test",
				PassiveUseReplyAddress: true,
			},
		},
		{
			// The top-level known_hosts is not applied to FTPS routes.
			Name: "mvs", User: "mvs", Auth: AuthPassthrough, Line: 17,
			Upstream: Upstream{Scheme: "ftps", Host: "2001:db8::21", Port: 990, TLSMinVersion: tls.VersionTLS13},
		},
		{
			Name: "plain", User: "plain", Auth: AuthPassthrough, Line: 20,
			Upstream: Upstream{Scheme: "ftpes", Host: "files.partner.test", Port: 2121},
		},
		{
			Name: "ip", User: "ip", Auth: AuthPassthrough, Line: 22,
			Upstream: Upstream{Scheme: "ftps", Host: "10.1.2.3", Port: 9990, TLSServerName: "10.1.2.3"},
		},
	}
	got := p.Routes()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Routes():\ngot  %+v\nwant %+v", got, want)
	}
	for _, r := range got {
		if !r.Upstream.IsFTPS() {
			t.Errorf("route %q: IsFTPS() = false; want true", r.Name)
		}
	}

	d := p.Login(LoginRequest{User: "plain"})
	if !d.Allow || d.Upstream.User != "plain" || d.Upstream.Scheme != "ftpes" {
		t.Errorf("Login(plain) = %+v; want allowed to ftpes with the client's user name", d)
	}
}

func TestFTPSRouteSlicesAreCopies(t *testing.T) {
	p := mustLoad(t, ftpsPolicy)
	rs := p.Routes()
	rs[0].Upstream.TLSCertSHA256[0] = "changed"
	rs[0].Upstream.TLSCiphers[0] = 1
	d := p.Login(LoginRequest{User: "ledger"})
	d.Upstream.TLSCertSHA256[1] = "changed"
	d.Route.Upstream.TLSCiphers[1] = 2
	up := p.Routes()[0].Upstream
	if up.TLSCertSHA256[0] != testPin1 || up.TLSCertSHA256[1] != testPin2 ||
		up.TLSCiphers[0] != tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 ||
		up.TLSCiphers[1] != tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 {
		t.Errorf("Routes() after changing copies: pins %q, ciphers %x; want them unchanged", up.TLSCertSHA256, up.TLSCiphers)
	}
}

func TestUpstreamIsFTPS(t *testing.T) {
	for scheme, want := range map[string]bool{"sftp": false, "ftps": true, "ftpes": true, "ftp": false, "": false} {
		if got := (Upstream{Scheme: scheme}).IsFTPS(); got != want {
			t.Errorf("Upstream{Scheme: %q}.IsFTPS() = %v; want %v", scheme, got, want)
		}
	}
}

// ftpsLoadErrorTests lists invalid FTPS routes with every message Load
// must give, in the form of loadErrorTests.
var ftpsLoadErrorTests = []struct {
	name string
	text string
	want []wantErr
}{
	{
		name: "plain ftp upstream refused with the reason",
		text: "version: 1\nknown_hosts: /k\nroutes:\n  - user: a\n    upstream: ftp://h\n",
		want: []wantErr{{5, "ftpgate never carries a session in clear text; use ftpes://"}},
	},
	{
		name: "ftps URL with a bad port needs no host-key source",
		text: "version: 1\nroutes:\n  - user: a\n    upstream: ftps://h:99999\n",
		want: []wantErr{{4, `port "99999" is out of range`}},
	},
	{
		name: "ftps URL with a password",
		text: "version: 1\nroutes:\n  - user: a\n    upstream: ftpes://u:hunter2@h\n",
		want: []wantErr{{4, "the URL must not hold a password"}},
	},
	{
		name: "auth local ftps needs upstream_password, not a key",
		text: `version: 1
routes:
  - user: a
    password_bcrypt: "HASH"
    upstream: ftpes://u@h
    upstream_key: /k
    upstream_key_passphrase: {env: KP}
`,
		want: []wantErr{
			{3, `route "a": auth local needs upstream_password to log in at the FTPS partner`},
			{6, `route "a": upstream_key applies to sftp upstreams only`},
		},
	},
	{
		name: "auth local ftps without a partner user names the scheme",
		text: "version: 1\nroutes:\n  - user: a\n    password_bcrypt: \"HASH\"\n    upstream: ftps://h\n    upstream_password: {env: P}\n",
		want: []wantErr{{5, "needs the partner user in the upstream URL (ftps://user@host/...)"}},
	},
	{
		name: "passthrough ftps with upstream_key",
		text: "version: 1\nroutes:\n  - user: a\n    upstream: ftps://h\n    upstream_key: /k\n",
		want: []wantErr{{5, "upstream_key applies to sftp upstreams only"}},
	},
	{
		name: "passphrase without key on ftps",
		text: "version: 1\nroutes:\n  - user: a\n    upstream: ftps://h\n    upstream_key_passphrase: {env: KP}\n",
		want: []wantErr{{5, "upstream_key_passphrase applies to sftp upstreams only"}},
	},
	{
		name: "SSH keys on an ftps route",
		text: `version: 1
routes:
  - user: a
    upstream: ftpes://h
    known_hosts: /k
    host_key_sha256: [PIN1]
    use_fstat: true
    concurrent_reads: false
`,
		want: []wantErr{
			{5, "known_hosts applies to sftp upstreams only; an FTPS partner's certificate is checked against tls_ca_file"},
			{6, "host_key_sha256 applies to sftp upstreams only"},
			{7, "use_fstat applies to sftp upstreams only"},
			{8, "concurrent_reads applies to sftp upstreams only"},
		},
	},
	{
		name: "TLS keys on an sftp route",
		text: `version: 1
known_hosts: /k
routes:
  - user: a
    upstream: sftp://h
    tls_ca_file: /ca
    tls_cert_sha256: [PIN1]
    tls_min_version: "1.3"
    tls_ciphers: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]
    tls_client_cert: /c
    tls_client_key: /k
    tls_server_name: h
    passive_use_reply_address: true
`,
		want: []wantErr{
			{6, `route "a": tls_ca_file applies to ftps:// and ftpes:// upstreams only`},
			{7, "tls_cert_sha256 applies to ftps:// and ftpes:// upstreams only"},
			{8, "tls_min_version applies to ftps:// and ftpes:// upstreams only"},
			{9, "tls_ciphers applies to ftps:// and ftpes:// upstreams only"},
			{10, "tls_client_cert applies to ftps:// and ftpes:// upstreams only"},
			{11, "tls_client_key applies to ftps:// and ftpes:// upstreams only"},
			{12, "tls_server_name applies to ftps:// and ftpes:// upstreams only"},
			{13, "passive_use_reply_address applies to ftps:// and ftpes:// upstreams only"},
		},
	},
	{
		name: "bad TLS values",
		text: `version: 1
routes:
  - user: a
    upstream: ftps://h
    tls_ca_file: ""
    tls_cert_sha256: ["SHA256:short", "md5:00", [x]]
    tls_min_version: "1.1"
    tls_server_name: "h st"
`,
		want: []wantErr{
			{5, "tls_ca_file is empty"},
			{6, "want a string, got a list"},
			{6, `tls_cert_sha256 "SHA256:short" is not a SHA-256 certificate fingerprint`},
			{6, `tls_cert_sha256 "md5:00" is not a SHA-256 certificate fingerprint`},
			{7, "tls_min_version 1.1 is not allowed; the lowest is 1.2"},
			{8, `tls_server_name "h st" is not a host name or IP address`},
		},
	},
	{
		name: "tls_min_version not a version",
		text: "version: 1\nroutes:\n  - user: a\n    upstream: ftps://h\n    tls_min_version: TLS13\n",
		want: []wantErr{{5, `tls_min_version "TLS13" is not valid; want "1.2" or "1.3"`}},
	},
	{
		name: "cipher names",
		text: `version: 1
routes:
  - user: a
    upstream: ftps://h
    tls_ciphers:
      - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
      - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
      - TLS_AES_128_GCM_SHA256
      - TLS_RSA_WITH_RC4_128_SHA
      - ECDHE-RSA-AES128-GCM-SHA256
`,
		want: []wantErr{
			{7, `tls_ciphers: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" is given twice (first at line 6)`},
			{8, `"TLS_AES_128_GCM_SHA256" is a TLS 1.3 suite`},
			{9, `"TLS_RSA_WITH_RC4_128_SHA" is insecure and not allowed`},
			{10, `"ECDHE-RSA-AES128-GCM-SHA256" is not a known cipher suite name`},
		},
	},
	{
		name: "ciphers with TLS 1.3 minimum",
		text: "version: 1\nroutes:\n  - user: a\n    upstream: ftps://h\n    tls_min_version: \"1.3\"\n    tls_ciphers: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n",
		want: []wantErr{{6, "tls_ciphers chooses TLS 1.2 suites, and tls_min_version 1.3 never uses them"}},
	},
	{
		name: "empty cipher list",
		text: "version: 1\nroutes:\n  - user: a\n    upstream: ftps://h\n    tls_ciphers: []\n",
		want: []wantErr{{5, "tls_ciphers is empty"}},
	},
	{
		name: "client certificate without key",
		text: "version: 1\nroutes:\n  - user: a\n    upstream: ftps://h\n    tls_client_cert: /c\n",
		want: []wantErr{{5, "tls_client_cert is set but tls_client_key is not; give both or neither"}},
	},
	{
		name: "client key without certificate",
		text: "version: 1\nroutes:\n  - user: a\n    upstream: ftps://h\n    tls_client_key: /k\n",
		want: []wantErr{{5, "tls_client_key is set but tls_client_cert is not"}},
	},
	{
		name: "passive_use_reply_address not a bool",
		text: "version: 1\nroutes:\n  - user: a\n    upstream: ftps://h\n    passive_use_reply_address: sometimes\n",
		want: []wantErr{{5, `want true or false, got "sometimes"`}},
	},
}

func TestLoadFTPSErrors(t *testing.T) {
	for _, tc := range ftpsLoadErrorTests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Load(strings.NewReader(fixture(t, tc.text)), "p.yaml")
			if err == nil {
				t.Fatalf("Load succeeded with routes %+v; want errors %v", p.Routes(), tc.want)
			}
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("Load error %T %v; want *LoadError", err, err)
			}
			if len(le.Errs) != len(tc.want) {
				t.Errorf("got %d errors; want %d:\n%v", len(le.Errs), len(tc.want), err)
			}
			for i, w := range tc.want {
				if i >= len(le.Errs) {
					break
				}
				got := le.Errs[i]
				if got.File != "p.yaml" || got.Line != w.line || !strings.Contains(got.Msg, w.msg) {
					t.Errorf("error %d: got %q; want p.yaml:%d: ...%s...", i, got.Error(), w.line, w.msg)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q holds the password from the URL", err)
			}
		})
	}
}

func TestNormalizeCertPin(t *testing.T) {
	sum := sha256.Sum256([]byte("certificate"))
	b64 := base64.RawStdEncoding.EncodeToString(sum[:])
	want := "SHA256:" + b64
	colons := strings.ToUpper(hex.EncodeToString(sum[:]))
	var withColons []string
	for i := 0; i < len(colons); i += 2 {
		withColons = append(withColons, colons[i:i+2])
	}
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"ssh form", want, true},
		{"padded base64", want + "=", true},
		{"bare base64", b64, true},
		{"lower-case hex", hex.EncodeToString(sum[:]), true},
		{"openssl output", "sha256 Fingerprint=" + strings.Join(withColons, ":"), true},
		{"hex with SHA256 prefix", "SHA256:" + strings.Join(withColons, ":"), true},
		{"too short", "SHA256:" + b64[:40], false},
		{"hex too short", hex.EncodeToString(sum[:31]), false},
		{"not base64", "SHA256:" + strings.Repeat("!", 43), false},
		{"empty", "", false},
		{"sha1 length", strings.Repeat("ab", 20), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := normalizeCertPin(tc.in)
			if ok != tc.ok || ok && got != want {
				t.Errorf("normalizeCertPin(%q) = %q, %v; want %q, %v", tc.in, got, ok, want, tc.ok)
			}
		})
	}
}

func TestCipherSuiteID(t *testing.T) {
	for _, cs := range tls.CipherSuites() {
		id, msg := cipherSuiteID(cs.Name)
		tls12 := false
		for _, v := range cs.SupportedVersions {
			tls12 = tls12 || v == tls.VersionTLS12
		}
		if tls12 && (id != cs.ID || msg != "") {
			t.Errorf("cipherSuiteID(%q) = %#x, %q; want %#x", cs.Name, id, msg, cs.ID)
		}
		if !tls12 && msg == "" {
			t.Errorf("cipherSuiteID(%q) accepted a TLS 1.3 suite", cs.Name)
		}
	}
	for _, cs := range tls.InsecureCipherSuites() {
		if _, msg := cipherSuiteID(cs.Name); !strings.Contains(msg, "insecure") {
			t.Errorf("cipherSuiteID(%q) = %q; want it refused as insecure", cs.Name, msg)
		}
	}
}

func TestCheckFilesFTPS(t *testing.T) {
	dir := t.TempDir()
	cert := filepath.Join(dir, "client.pem")
	if err := os.WriteFile(cert, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	text := `version: 1
routes:
  - user: a
    upstream: ftps://h
    tls_ca_file: ` + filepath.Join(dir, "missing-ca.pem") + `
    tls_client_cert: ` + cert + `
    tls_client_key: ` + dir + `
`
	errs := mustLoad(t, text).CheckFiles()
	if len(errs) != 2 {
		t.Fatalf("CheckFiles() = %v; want 2 errors", errs)
	}
	for i, w := range []struct {
		line int
		msg  string
	}{{5, "tls_ca_file " + filepath.Join(dir, "missing-ca.pem")}, {7, "tls_client_key " + dir + ": is a directory"}} {
		var fe *FieldError
		if !errors.As(errs[i], &fe) || fe.Line != w.line || !strings.Contains(fe.Msg, w.msg) {
			t.Errorf("CheckFiles()[%d] = %v; want line %d, %q", i, errs[i], w.line, w.msg)
		}
	}
}
