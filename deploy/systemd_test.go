package deploy_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// unitFile is a systemd unit: for each section, its assignments in order.
type unitFile map[string][][2]string

func readUnit(t *testing.T, name string) unitFile {
	t.Helper()
	f, err := os.Open(filepath.Join("systemd", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
		case strings.HasSuffix(line, "\\"):
			t.Fatalf("%s:%d: continuation lines are not supported by this check; keep assignments on one line", name, n)
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: %q is not an assignment in a section", name, n, line)
			}
			u[section] = append(u[section], [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// all returns every value assigned to key in section, in order.
func (u unitFile) all(section, key string) []string {
	var vs []string
	for _, kv := range u[section] {
		if kv[0] == key {
			vs = append(vs, kv[1])
		}
	}
	return vs
}

// last returns the value in force for a single-valued key.
func (u unitFile) last(section, key string) (string, bool) {
	vs := u.all(section, key)
	if len(vs) == 0 {
		return "", false
	}
	return vs[len(vs)-1], true
}

// parseTimespan parses the systemd time spans the units use: "75", "75s",
// "1min 15s", "2min".
func parseTimespan(s string) (time.Duration, error) {
	units := map[string]time.Duration{
		"": time.Second, "s": time.Second, "sec": time.Second, "ms": time.Millisecond,
		"m": time.Minute, "min": time.Minute, "h": time.Hour, "hr": time.Hour,
	}
	var total time.Duration
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return 0, fmt.Errorf("empty time span")
	}
	for _, f := range fields {
		i := strings.IndexFunc(f, func(r rune) bool { return r < '0' || r > '9' })
		if i < 0 {
			i = len(f)
		}
		n, err := strconv.Atoi(f[:i])
		unit, ok := units[f[i:]]
		if err != nil || !ok {
			return 0, fmt.Errorf("%q is not a time span this check understands", s)
		}
		total += time.Duration(n) * unit
	}
	return total, nil
}

// unitEnvironment returns the variables the Environment= lines set.
func unitEnvironment(u unitFile) map[string]string {
	env := map[string]string{}
	for _, v := range u.all("Service", "Environment") {
		for _, kv := range strings.Fields(v) {
			if k, val, ok := strings.Cut(strings.Trim(kv, `"`), "="); ok {
				env[k] = val
			}
		}
	}
	return env
}

// envFileSettings returns the assignments of an EnvironmentFile (comments
// and blank lines skipped), failing on a name given twice.
func envFileSettings(t *testing.T, name string) map[string]string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("systemd", name))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for i, line := range strings.Split(string(src), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("%s:%d: %q is not VAR=value", name, i+1, line)
			continue
		}
		if _, dup := env[k]; dup {
			t.Errorf("%s:%d: %s is set twice", name, i+1, k)
		}
		env[k] = v
	}
	return env
}

func TestSystemdService(t *testing.T) {
	u := readUnit(t, "ftpgate.service")
	want := []struct{ key, value string }{
		{"Type", "exec"},
		{"ExecStart", "/usr/local/bin/ftpgate serve"},
		{"ExecReload", "/bin/kill -HUP $MAINPID"},
		{"KillSignal", "SIGTERM"},
		{"DynamicUser", "yes"},
		{"CapabilityBoundingSet", ""},
		{"AmbientCapabilities", ""},
		{"NoNewPrivileges", "yes"},
		{"ProtectSystem", "strict"},
		{"ProtectHome", "yes"},
		{"PrivateTmp", "yes"},
		{"PrivateDevices", "yes"},
		{"RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"},
		{"RestrictNamespaces", "yes"},
		{"MemoryDenyWriteExecute", "yes"},
		{"LockPersonality", "yes"},
		{"StateDirectory", "ftpgate"},
		{"LogsDirectory", "ftpgate"},
		{"ConfigurationDirectory", "ftpgate"},
		{"EnvironmentFile", "-/etc/ftpgate/ftpgate.env"},
	}
	for _, w := range want {
		if got, ok := u.last("Service", w.key); !ok || got != w.value {
			t.Errorf("ftpgate.service: %s=%q (set: %v); want %q", w.key, got, ok, w.value)
		}
	}
	if !slices.Contains(u.all("Service", "SystemCallFilter"), "@system-service") {
		t.Errorf("ftpgate.service: SystemCallFilter=@system-service is missing; got %q", u.all("Service", "SystemCallFilter"))
	}

	// The stop timeout outlasts the drain, wherever the drain is set.
	env := unitEnvironment(u)
	drain := defaultDrain
	for _, src := range []map[string]string{env, envFileSettings(t, "ftpgate.env.example")} {
		if v, ok := src["FTPGATE_DRAIN_TIMEOUT"]; ok {
			d, err := time.ParseDuration(v)
			if err != nil {
				t.Fatalf("FTPGATE_DRAIN_TIMEOUT=%q: %v", v, err)
			}
			drain = max(drain, d)
		}
	}
	ts, ok := u.last("Service", "TimeoutStopSec")
	if !ok {
		t.Fatal("ftpgate.service: no TimeoutStopSec (the default 90s hides the dependency on the drain)")
	}
	stop, err := parseTimespan(ts)
	if err != nil {
		t.Fatalf("ftpgate.service: TimeoutStopSec: %v", err)
	}
	if stop <= drain {
		t.Errorf("ftpgate.service: TimeoutStopSec=%s is not longer than FTPGATE_DRAIN_TIMEOUT %v: systemd would kill transfers mid-drain", ts, drain)
	}

	// The audit trail is written where the sandbox lets it write.
	if f := env["FTPGATE_AUDIT_FILE"]; !strings.HasPrefix(f, "/var/log/ftpgate/") {
		t.Errorf("ftpgate.service: FTPGATE_AUDIT_FILE=%q is not under LogsDirectory /var/log/ftpgate", f)
	}
	// The audit key comes from a credential, so it need not be readable by
	// the dynamic user on disk.
	if k := env["FTPGATE_AUDIT_KEY_FILE"]; k != "%d/audit.key" {
		t.Errorf("ftpgate.service: FTPGATE_AUDIT_KEY_FILE=%q; want %%d/audit.key (the credentials directory)", k)
	}
	if !slices.ContainsFunc(u.all("Service", "LoadCredential"), func(v string) bool { return strings.HasPrefix(v, "audit.key:") }) {
		t.Error("ftpgate.service: no LoadCredential=audit.key:...")
	}
}

func TestSystemdSocket(t *testing.T) {
	u := readUnit(t, "ftpgate.socket")
	listen := u.all("Socket", "ListenStream")
	if len(listen) != 1 {
		t.Fatalf("ftpgate.socket: %d ListenStream= lines; want exactly one (ftpgate takes the first socket passed as its FTP listener)", len(listen))
	}
	if !strings.HasSuffix(listen[0], "21") {
		t.Errorf("ftpgate.socket: ListenStream=%s; want port 21", listen[0])
	}
	if a, _ := u.last("Socket", "Accept"); a == "yes" || a == "true" {
		t.Error("ftpgate.socket: Accept=yes would start one ftpgate per connection; ftpgate wants the listening socket")
	}
	if s, ok := u.last("Socket", "Service"); ok && s != "ftpgate.service" {
		t.Errorf("ftpgate.socket: Service=%s; want ftpgate.service", s)
	}
	for _, k := range []string{"ListenDatagram", "ListenSequentialPacket", "ListenFIFO"} {
		if len(u.all("Socket", k)) > 0 {
			t.Errorf("ftpgate.socket: %s= would pass a socket ftpgate does not expect", k)
		}
	}
}
