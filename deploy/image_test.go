package deploy_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// imageSpec is what an image definition says about the final image.
type imageSpec struct {
	user, stopSignal string
	entrypoint       []string
	ports            []string
	env              map[string]string
	labels           []string // label keys
}

// dockerfileSpec reads the final stage of a Dockerfile: USER, ENTRYPOINT
// (exec form), EXPOSE, ENV, STOPSIGNAL and LABEL keys.
func dockerfileSpec(t *testing.T, src string) imageSpec {
	t.Helper()
	// Join continuation lines, drop comments, keep the last stage.
	var instrs []string
	var cur strings.Builder
	for _, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		instrs = append(instrs, cur.String())
		cur.Reset()
	}
	last := -1
	for i, in := range instrs {
		if strings.HasPrefix(strings.ToUpper(in), "FROM ") {
			last = i
		}
	}
	if last < 0 {
		t.Fatal("Dockerfile: no FROM")
	}
	if f := strings.Fields(instrs[last]); len(f) < 2 || f[1] != "scratch" {
		t.Errorf("Dockerfile: the final stage is %q; want FROM scratch", instrs[last])
	}
	spec := imageSpec{env: map[string]string{}}
	for _, in := range instrs[last+1:] {
		verb, rest, _ := strings.Cut(in, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(verb) {
		case "USER":
			spec.user = rest
		case "STOPSIGNAL":
			spec.stopSignal = rest
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &spec.entrypoint); err != nil {
				t.Errorf("Dockerfile: ENTRYPOINT %s is not in exec (JSON) form: %v", rest, err)
			}
		case "EXPOSE":
			spec.ports = append(spec.ports, strings.Fields(rest)...)
		case "ENV":
			for _, kv := range strings.Fields(rest) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.Errorf("Dockerfile: ENV %q: use the KEY=value form", kv)
				}
				spec.env[k] = v
			}
		case "LABEL":
			for _, m := range regexp.MustCompile(`([a-z0-9.]+)=`).FindAllStringSubmatch(rest, -1) {
				spec.labels = append(spec.labels, m[1])
			}
		}
	}
	return spec
}

// scriptSpec reads the IMAGE_* declarations and the label list of
// build-image.sh.
func scriptSpec(t *testing.T, src string) imageSpec {
	t.Helper()
	get := func(name string) string {
		m := regexp.MustCompile(`(?m)^` + name + `=(?:'([^']*)'|\(([^)]*)\))$`).FindStringSubmatch(src)
		if m == nil {
			t.Fatalf("build-image.sh: no %s='...' or %s=(...) line", name, name)
		}
		return m[1] + m[2]
	}
	spec := imageSpec{
		user:       get("IMAGE_USER"),
		stopSignal: get("IMAGE_STOPSIGNAL"),
		ports:      strings.Fields(get("IMAGE_PORTS")),
		env:        map[string]string{},
	}
	if err := json.Unmarshal([]byte(get("IMAGE_ENTRYPOINT")), &spec.entrypoint); err != nil {
		t.Errorf("build-image.sh: IMAGE_ENTRYPOINT: %v", err)
	}
	for _, kv := range strings.Fields(get("IMAGE_ENV")) {
		k, v, _ := strings.Cut(kv, "=")
		spec.env[k] = v
	}
	for _, m := range regexp.MustCompile(`(?m)^\s+"(org\.opencontainers\.image\.[a-z.]+)=`).FindAllStringSubmatch(src, -1) {
		spec.labels = append(spec.labels, m[1])
	}
	return spec
}

// TestImageDefinitionsAgree keeps deploy/container/Dockerfile and
// deploy/build-image.sh describing the same image.
func TestImageDefinitionsAgree(t *testing.T) {
	df, err := os.ReadFile(filepath.Join("container", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	sh, err := os.ReadFile("build-image.sh")
	if err != nil {
		t.Fatal(err)
	}
	d, s := dockerfileSpec(t, string(df)), scriptSpec(t, string(sh))
	if d.user != s.user {
		t.Errorf("USER: Dockerfile %q, build-image.sh %q", d.user, s.user)
	}
	if d.user != "65532:65532" {
		t.Errorf("USER %q; want the non-root 65532:65532", d.user)
	}
	if !slices.Equal(d.entrypoint, s.entrypoint) || !slices.Equal(d.entrypoint, []string{"/ftpgate", "serve"}) {
		t.Errorf("ENTRYPOINT: Dockerfile %q, build-image.sh %q; want [/ftpgate serve]", d.entrypoint, s.entrypoint)
	}
	if d.stopSignal != s.stopSignal || d.stopSignal != "SIGTERM" {
		t.Errorf("STOPSIGNAL: Dockerfile %q, build-image.sh %q; want SIGTERM (ftpgate drains on it)", d.stopSignal, s.stopSignal)
	}
	slices.Sort(d.ports)
	slices.Sort(s.ports)
	if !slices.Equal(d.ports, s.ports) {
		t.Errorf("EXPOSE: Dockerfile %q, build-image.sh %q", d.ports, s.ports)
	}
	if len(d.env) != len(s.env) {
		t.Errorf("ENV: Dockerfile %v, build-image.sh %v", d.env, s.env)
	}
	for k, v := range d.env {
		if s.env[k] != v {
			t.Errorf("ENV %s: Dockerfile %q, build-image.sh %q", k, v, s.env[k])
		}
	}
	if d.env["FTPGATE_ADMIN_LISTEN"] == "" || strings.HasPrefix(d.env["FTPGATE_ADMIN_LISTEN"], "127.") {
		t.Errorf("ENV FTPGATE_ADMIN_LISTEN=%q: in a container the admin endpoint must listen on all addresses", d.env["FTPGATE_ADMIN_LISTEN"])
	}
	// Every port the image's settings name is exposed.
	exposed := strings.Join(d.ports, " ")
	for _, k := range []string{"FTPGATE_LISTEN", "FTPGATE_ADMIN_LISTEN"} {
		_, port, err := listenPort(d.env[k])
		if err != nil {
			t.Errorf("ENV %s: %v", k, err)
			continue
		}
		if !slices.Contains(d.ports, strconv.Itoa(int(port))) {
			t.Errorf("ENV %s=%s: port %d is not in EXPOSE %s", k, d.env[k], port, exposed)
		}
	}
	if pasv := d.env["FTPGATE_PASV_PORTS"]; !slices.Contains(d.ports, pasv) {
		t.Errorf("ENV FTPGATE_PASV_PORTS=%s is not exposed as such (EXPOSE %s)", pasv, exposed)
	}
	slices.Sort(d.labels)
	slices.Sort(s.labels)
	if !slices.Equal(d.labels, s.labels) {
		t.Errorf("LABEL keys: Dockerfile %q, build-image.sh %q", d.labels, s.labels)
	}
	for _, want := range []string{"org.opencontainers.image.source", "org.opencontainers.image.version", "org.opencontainers.image.revision"} {
		if !slices.Contains(d.labels, want) {
			t.Errorf("Dockerfile: no LABEL %s", want)
		}
	}
}

// TestDeployFilesNameRealSettings checks every FTPGATE_* name in the
// deployment files, comments included, against the settings ftpgate
// reads, so a renamed or misspelt setting cannot linger in a manifest, a
// unit or an example.
func TestDeployFilesNameRealSettings(t *testing.T) {
	known := knownVariables(t)
	// The scripts' own knobs share the prefix but are not ftpgate's.
	own := regexp.MustCompile(`^FTPGATE_IMAGE_`)
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p == "jcl" || d.Name() == "out" || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(p, ".go") {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(src), "\n") {
			for _, v := range ftpgateVariables(line) {
				if !known[v] && !own.MatchString(v) {
					t.Errorf("%s:%d: %s is not a setting ftpgate reads (no env tag in cmd/ftpgate)", p, i+1, v)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
