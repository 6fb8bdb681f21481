// Package deploy_test checks the deployment files offline, with Go alone:
// the Kubernetes manifests (decoded strictly into the k8s.io/api types and
// checked against ftpgate's own rules), the container definitions (the
// Dockerfile and deploy/build-image.sh must describe the same image) and
// the systemd units. Nothing here needs a cluster, a container engine or
// systemd; deploy/build-image.sh and deploy/systemd/verify.sh do the checks
// that need those.
package deploy_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/ftpgate/ftpgate/policy"
)

// kinds maps "apiVersion kind" to a new value of the API type a manifest
// document of that kind is decoded into. A kind not listed is an error, so
// a typo in apiVersion or kind cannot slip through undecoded.
var kinds = map[string]func() any{
	"apps/v1 Deployment":                 func() any { return new(appsv1.Deployment) },
	"v1 Service":                         func() any { return new(corev1.Service) },
	"v1 ConfigMap":                       func() any { return new(corev1.ConfigMap) },
	"v1 Pod":                             func() any { return new(corev1.Pod) },
	"networking.k8s.io/v1 NetworkPolicy": func() any { return new(networkingv1.NetworkPolicy) },
	"policy/v1 PodDisruptionBudget":      func() any { return new(policyv1.PodDisruptionBudget) },
}

// Defaults of the ftpgate settings the checks below depend on, as the
// README's configuration reference gives them.
const (
	defaultDrain       = 60 * time.Second
	defaultAdminListen = "127.0.0.1:9180"
	defaultListen      = ":2121"
	defaultPolicy      = "/etc/ftpgate/policy.yaml"
	defaultGracePeriod = 30 // seconds, Kubernetes' default
)

// doc is one YAML document of a manifest file.
type doc struct {
	where string // "k8s/gateway.yaml:12", the document's first line
	body  []byte
}

// splitDocuments splits a YAML stream at "---" lines. Block scalars in our
// manifests are indented, so a "---" at the start of a line always
// separates documents.
func splitDocuments(name string, data []byte) []doc {
	var docs []doc
	var cur bytes.Buffer
	start := 1
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if text == "---" || strings.HasPrefix(text, "--- ") {
			docs = append(docs, doc{where: fmt.Sprintf("%s:%d", name, start), body: slices.Clone(cur.Bytes())})
			cur.Reset()
			start = line + 1
			continue
		}
		cur.WriteString(text)
		cur.WriteByte('\n')
	}
	return append(docs, doc{where: fmt.Sprintf("%s:%d", name, start), body: cur.Bytes()})
}

// decode decodes one document strictly, the way the API server does with
// fieldValidation=Strict: an unknown field anywhere, a key given twice or a
// value of the wrong type is an error, and field names are matched with
// their case (sigs.k8s.io/yaml's UnmarshalStrict ends in encoding/json,
// which would take readOnlyRootFileSystem for readOnlyRootFilesystem; the
// API server drops such a field, and the container would quietly run with
// a writable root). A kind not in kinds is an error too. An empty document
// (comments only) gives nil.
func decode(body []byte) (any, error) {
	js, err := yaml.YAMLToJSONStrict(body)
	if err != nil {
		return nil, err
	}
	if string(js) == "null" {
		return nil, nil
	}
	var tm metav1.TypeMeta
	if err := json.Unmarshal(js, &tm); err != nil {
		return nil, err
	}
	if tm.APIVersion == "" || tm.Kind == "" {
		return nil, fmt.Errorf("no apiVersion or kind")
	}
	newObj, ok := kinds[tm.APIVersion+" "+tm.Kind]
	if !ok {
		return nil, fmt.Errorf("apiVersion %q kind %q is not a kind these checks know", tm.APIVersion, tm.Kind)
	}
	obj := newObj()
	strict, err := kjson.UnmarshalStrict(js, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	if err := errors.Join(strict...); err != nil {
		return nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	return obj, nil
}

// manifests is every object in deploy/k8s/*.yaml, by type.
type manifests struct {
	deployments []*appsv1.Deployment
	services    []*corev1.Service
	configMaps  []*corev1.ConfigMap
	pods        []*corev1.Pod
	netpols     []*networkingv1.NetworkPolicy
	pdbs        []*policyv1.PodDisruptionBudget
	where       map[any]string    // object -> file:line, for messages
	defined     map[string]string // "Kind/name" -> file:line
}

func loadManifests(t *testing.T) *manifests {
	t.Helper()
	files, err := filepath.Glob("k8s/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in k8s/*.yaml (err %v)", err)
	}
	m := &manifests{where: map[any]string{}, defined: map[string]string{}}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range splitDocuments(f, data) {
			obj, err := decode(d.body)
			if err != nil {
				t.Errorf("%s: %v", d.where, err)
				continue
			}
			if obj == nil {
				continue
			}
			m.add(t, obj, d.where)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return m
}

func (m *manifests) add(t *testing.T, obj any, where string) {
	t.Helper()
	m.where[obj] = where
	var meta *metav1.ObjectMeta
	var kind string
	switch o := obj.(type) {
	case *appsv1.Deployment:
		m.deployments, meta, kind = append(m.deployments, o), &o.ObjectMeta, "Deployment"
	case *corev1.Service:
		m.services, meta, kind = append(m.services, o), &o.ObjectMeta, "Service"
	case *corev1.ConfigMap:
		m.configMaps, meta, kind = append(m.configMaps, o), &o.ObjectMeta, "ConfigMap"
	case *corev1.Pod:
		m.pods, meta, kind = append(m.pods, o), &o.ObjectMeta, "Pod"
	case *networkingv1.NetworkPolicy:
		m.netpols, meta, kind = append(m.netpols, o), &o.ObjectMeta, "NetworkPolicy"
	case *policyv1.PodDisruptionBudget:
		m.pdbs, meta, kind = append(m.pdbs, o), &o.ObjectMeta, "PodDisruptionBudget"
	}
	for _, msg := range validation.IsDNS1123Subdomain(meta.Name) {
		t.Errorf("%s: %s name %q: %s", where, kind, meta.Name, msg)
	}
	if meta.Namespace != "" {
		t.Errorf("%s: %s %s sets namespace %q; leave it to kubectl -n", where, kind, meta.Name, meta.Namespace)
	}
	key := kind + "/" + meta.Name
	if prev, dup := m.defined[key]; dup {
		t.Errorf("%s: %s is already defined at %s", where, key, prev)
	}
	m.defined[key] = where
}

// workload is a pod spec to check, from a Deployment's template or a Pod.
type workload struct {
	name   string // "Deployment ftpgate"
	where  string
	labels map[string]string
	spec   *corev1.PodSpec
	// replicas is the Deployment's replica count; 1 for a Pod.
	replicas int32
}

func (m *manifests) workloads() []workload {
	var ws []workload
	for _, d := range m.deployments {
		r := int32(1)
		if d.Spec.Replicas != nil {
			r = *d.Spec.Replicas
		}
		ws = append(ws, workload{"Deployment " + d.Name, m.where[d], d.Spec.Template.Labels, &d.Spec.Template.Spec, r})
	}
	for _, p := range m.pods {
		ws = append(ws, workload{"Pod " + p.Name, m.where[p], p.Labels, &p.Spec, 1})
	}
	return ws
}

// ftpgate returns the container named ftpgate, among the containers and
// the (sidecar) init containers.
func (w workload) ftpgate() *corev1.Container {
	for _, cs := range [][]corev1.Container{w.spec.Containers, w.spec.InitContainers} {
		for i := range cs {
			if cs[i].Name == "ftpgate" {
				return &cs[i]
			}
		}
	}
	return nil
}

func (w workload) allContainers() []*corev1.Container {
	var out []*corev1.Container
	for i := range w.spec.InitContainers {
		out = append(out, &w.spec.InitContainers[i])
	}
	for i := range w.spec.Containers {
		out = append(out, &w.spec.Containers[i])
	}
	return out
}

// envValue returns the literal value of an environment variable, whether
// it is set at all, and whether it comes from elsewhere (valueFrom).
func envValue(c *corev1.Container, name string) (value string, set, from bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true, e.ValueFrom != nil
		}
	}
	return "", false, false
}

func envOr(c *corev1.Container, name, def string) string {
	if v, ok, _ := envValue(c, name); ok {
		return v
	}
	return def
}

// portRange is FTPGATE_PASV_PORTS parsed: "lo-hi" or one port.
type portRange struct{ lo, hi int32 }

func parsePortRange(s string) (portRange, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		hi = lo
	}
	a, err1 := strconv.ParseInt(strings.TrimSpace(lo), 10, 32)
	b, err2 := strconv.ParseInt(strings.TrimSpace(hi), 10, 32)
	if err1 != nil || err2 != nil || a < 1 || b > 65535 || a > b {
		return portRange{}, fmt.Errorf("%q is not a port range like 50000-50009", s)
	}
	return portRange{int32(a), int32(b)}, nil
}

func (r portRange) contains(p int32) bool { return r.lo <= p && p <= r.hi }
func (r portRange) size() int32           { return r.hi - r.lo + 1 }

// listenPort returns the port of a host:port listen address.
func listenPort(addr string) (host string, port int32, err error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.ParseInt(p, 10, 32)
	if err != nil || n < 1 || n > 65535 {
		return "", 0, fmt.Errorf("%q: bad port", addr)
	}
	return h, int32(n), nil
}

// resolvePort returns the number a probe's or Service's port refers to in
// c: a number as is, a name through c's ports.
func resolvePort(c *corev1.Container, p intstr.IntOrString) (int32, bool) {
	if p.Type == intstr.Int {
		return p.IntVal, true
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

func TestManifestsDecodeStrictly(t *testing.T) {
	m := loadManifests(t)
	for kind, n := range map[string]int{
		"Deployment": len(m.deployments), "Service": len(m.services), "ConfigMap": len(m.configMaps),
		"Pod": len(m.pods), "NetworkPolicy": len(m.netpols), "PodDisruptionBudget": len(m.pdbs),
	} {
		if n == 0 {
			t.Errorf("no %s in k8s/*.yaml", kind)
		}
	}
}

// TestDecoderIsStrict proves that decode refuses what the API server would
// drop silently or refuse, so that TestManifestsDecodeStrictly means
// something.
func TestDecoderIsStrict(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string // part of the error
	}{
		{"unknown field deep inside", `apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
    - name: c
      image: i
      securityContext: {readOnlyRootFileSystem: true}
`, "unknown field"},
		{"unknown top-level field", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndatas: {a: b}\n", "unknown field"},
		{"duplicate key", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\ndata: {c: d}\n", "already set"},
		{"field name in the wrong case", "apiVersion: v1\nkind: ConfigMap\nmetadata: {Name: c}\n", "unknown field"},
		{"wrong type", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {replicas: two}\n", "replicas"},
		{"unknown kind", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n", "not a kind"},
		{"wrong apiVersion", "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: d}\n", "not a kind"},
		{"no kind", "metadata: {name: x}\n", "no apiVersion"},
		{"no apiVersion", "kind: Pod\nmetadata: {name: x}\n", "no apiVersion"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decode([]byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("decode: got error %v; want one containing %q", err, tc.want)
			}
		})
	}
	if obj, err := decode([]byte("# only a comment\n")); obj != nil || err != nil {
		t.Errorf("decode of an empty document: got %v, %v; want nil, nil", obj, err)
	}
}

func TestSplitDocuments(t *testing.T) {
	data := "# head\n---\na: 1\n---\nb: |\n  ---\n  x\n--- # trailing\nc: 3\n"
	docs := splitDocuments("f.yaml", []byte(data))
	var got []string
	for _, d := range docs {
		got = append(got, d.where+" "+strings.TrimSpace(string(d.body)))
	}
	want := []string{"f.yaml:1 # head", "f.yaml:3 a: 1", "f.yaml:5 b: |\n  ---\n  x", "f.yaml:9 c: 3"}
	if !slices.Equal(got, want) {
		t.Errorf("splitDocuments: got %q; want %q", got, want)
	}
}

// TestFtpgateContainers checks every pod that runs ftpgate: probes on the
// admin endpoint, a non-root read-only container, a grace period longer
// than the drain, and the files ftpgate reads and writes on the right
// kind of volume.
func TestFtpgateContainers(t *testing.T) {
	m := loadManifests(t)
	known := knownVariables(t)
	found := 0
	for _, w := range m.workloads() {
		t.Run(w.name, func(t *testing.T) {
			for _, c := range w.allContainers() {
				checkHardened(t, w, c)
			}
			c := w.ftpgate()
			if c == nil {
				return
			}
			found++
			for _, e := range c.Env {
				if strings.HasPrefix(e.Name, "FTPGATE_") && !known[e.Name] {
					t.Errorf("%s: %s sets %s, which ftpgate does not read (cmd/ftpgate has no such setting)", w.where, w.name, e.Name)
				}
			}
			checkProbes(t, w, c)
			checkGrace(t, w, c)
			checkListeners(t, w, c)
			checkFiles(t, m, w, c)
		})
	}
	if found == 0 {
		t.Error("no container named ftpgate in k8s/*.yaml")
	}
}

func checkHardened(t *testing.T, w workload, c *corev1.Container) {
	t.Helper()
	psc := w.spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	sc := c.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	at := fmt.Sprintf("%s: %s container %s", w.where, w.name, c.Name)
	nonRoot := psc.RunAsNonRoot
	if sc.RunAsNonRoot != nil {
		nonRoot = sc.RunAsNonRoot
	}
	if nonRoot == nil || !*nonRoot {
		t.Errorf("%s: runAsNonRoot is not true", at)
	}
	uid := psc.RunAsUser
	if sc.RunAsUser != nil {
		uid = sc.RunAsUser
	}
	if uid != nil && *uid == 0 {
		t.Errorf("%s: runAsUser is 0", at)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: readOnlyRootFilesystem is not true", at)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: allowPrivilegeEscalation is not false", at)
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Errorf("%s: privileged", at)
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("%s: capabilities do not drop ALL", at)
	} else if len(sc.Capabilities.Add) > 0 {
		t.Errorf("%s: adds capabilities %v", at, sc.Capabilities.Add)
	}
	seccomp := psc.SeccompProfile
	if sc.SeccompProfile != nil {
		seccomp = sc.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: seccompProfile is not RuntimeDefault", at)
	}
	if c.Resources.Limits.Memory().IsZero() {
		t.Errorf("%s: no memory limit", at)
	}
	for _, p := range c.Ports {
		for _, msg := range validation.IsValidPortName(p.Name) {
			t.Errorf("%s: port name %q: %s", at, p.Name, msg)
		}
		if p.HostPort != 0 {
			t.Errorf("%s: hostPort %d (forbidden by the restricted Pod Security level)", at, p.HostPort)
		}
	}
}

// adminPort returns the port of FTPGATE_ADMIN_LISTEN and fails when the
// kubelet could not reach it (a loopback address).
func adminPort(t *testing.T, w workload, c *corev1.Container) int32 {
	t.Helper()
	addr := envOr(c, "FTPGATE_ADMIN_LISTEN", defaultAdminListen)
	host, port, err := listenPort(addr)
	if err != nil {
		t.Fatalf("%s: %s: FTPGATE_ADMIN_LISTEN: %v", w.where, w.name, err)
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		t.Errorf("%s: %s: FTPGATE_ADMIN_LISTEN=%s is loopback: the kubelet's probes cannot reach it; use 0.0.0.0:%d", w.where, w.name, addr, port)
	}
	return port
}

func checkProbes(t *testing.T, w workload, c *corev1.Container) {
	t.Helper()
	admin := adminPort(t, w, c)
	probe := func(kind string, p *corev1.Probe, paths ...string) {
		if p == nil {
			if kind != "startupProbe" {
				t.Errorf("%s: %s: ftpgate has no %s", w.where, w.name, kind)
			}
			return
		}
		if p.HTTPGet == nil {
			t.Errorf("%s: %s: %s is not an httpGet (the image has no shell for exec probes)", w.where, w.name, kind)
			return
		}
		if !slices.Contains(paths, p.HTTPGet.Path) {
			t.Errorf("%s: %s: %s path %q; want %s", w.where, w.name, kind, p.HTTPGet.Path, strings.Join(paths, " or "))
		}
		if port, ok := resolvePort(c, p.HTTPGet.Port); !ok || port != admin {
			t.Errorf("%s: %s: %s port %s (%d); want the admin port %d of FTPGATE_ADMIN_LISTEN", w.where, w.name, kind, p.HTTPGet.Port.String(), port, admin)
		}
	}
	probe("livenessProbe", c.LivenessProbe, "/livez")
	probe("readinessProbe", c.ReadinessProbe, "/readyz")
	probe("startupProbe", c.StartupProbe, "/livez", "/readyz")
}

func checkGrace(t *testing.T, w workload, c *corev1.Container) {
	t.Helper()
	drain := defaultDrain
	if v, ok, _ := envValue(c, "FTPGATE_DRAIN_TIMEOUT"); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("%s: %s: FTPGATE_DRAIN_TIMEOUT: %v", w.where, w.name, err)
		}
		drain = d
	}
	var preStop time.Duration
	if l := c.Lifecycle; l != nil && l.PreStop != nil && l.PreStop.Sleep != nil {
		preStop = time.Duration(l.PreStop.Sleep.Seconds) * time.Second
	}
	grace := time.Duration(defaultGracePeriod) * time.Second
	if g := w.spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	if grace <= preStop+drain {
		t.Errorf("%s: %s: terminationGracePeriodSeconds %v is not more than the preStop sleep %v plus FTPGATE_DRAIN_TIMEOUT %v: transfers would be killed mid-drain",
			w.where, w.name, grace, preStop, drain)
	}
}

// checkListeners checks the FTP listener and the passive range against the
// container's ports.
func checkListeners(t *testing.T, w workload, c *corev1.Container) {
	t.Helper()
	listen := envOr(c, "FTPGATE_LISTEN", defaultListen)
	_, port, err := listenPort(listen)
	if err != nil {
		t.Fatalf("%s: %s: FTPGATE_LISTEN: %v", w.where, w.name, err)
	}
	for _, cp := range c.Ports {
		if cp.Name == "ftp" && cp.ContainerPort != port {
			t.Errorf("%s: %s: port ftp is %d; FTPGATE_LISTEN=%s", w.where, w.name, cp.ContainerPort, listen)
		}
	}
	pasv, ok, _ := envValue(c, "FTPGATE_PASV_PORTS")
	if !ok {
		t.Errorf("%s: %s: FTPGATE_PASV_PORTS is not set: passive ports would be random and no Service or NetworkPolicy could admit them", w.where, w.name)
		return
	}
	r, err := parsePortRange(pasv)
	if err != nil {
		t.Fatalf("%s: %s: FTPGATE_PASV_PORTS: %v", w.where, w.name, err)
	}
	if r.size() > 100 {
		t.Errorf("%s: %s: FTPGATE_PASV_PORTS=%s is %d ports; Kubernetes lists ports one by one, keep it small", w.where, w.name, pasv, r.size())
	}
	addr, set, from := envValue(c, "FTPGATE_PASV_ADDRESS")
	switch {
	case !set:
		t.Errorf("%s: %s: FTPGATE_PASV_ADDRESS is not set", w.where, w.name)
	case from:
		i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "FTPGATE_PASV_ADDRESS" })
		ref := c.Env[i].ValueFrom.FieldRef
		if ref == nil || (ref.FieldPath != "status.podIP" && ref.FieldPath != "status.hostIP") {
			t.Errorf("%s: %s: FTPGATE_PASV_ADDRESS must be this pod's address (fieldRef status.podIP or status.hostIP)", w.where, w.name)
		}
	case net.ParseIP(addr) == nil || net.ParseIP(addr).To4() == nil:
		t.Errorf("%s: %s: FTPGATE_PASV_ADDRESS=%q is not an IPv4 address", w.where, w.name, addr)
	}
	// Passive container ports, when listed, are the whole range.
	var listed []int32
	for _, cp := range c.Ports {
		if cp.ContainerPort != port && cp.Name != "admin" {
			if !r.contains(cp.ContainerPort) {
				t.Errorf("%s: %s: container port %s (%d) is neither the FTP, the admin nor a passive port (%s)", w.where, w.name, cp.Name, cp.ContainerPort, pasv)
			}
			listed = append(listed, cp.ContainerPort)
		}
	}
	if len(listed) > 0 && int32(len(listed)) != r.size() {
		t.Errorf("%s: %s: %d passive container ports listed; FTPGATE_PASV_PORTS=%s has %d", w.where, w.name, len(listed), pasv, r.size())
	}
}

// mountFor returns the volume mount and volume that hold path in c.
func mountFor(w workload, c *corev1.Container, p string) (*corev1.VolumeMount, *corev1.Volume) {
	var best *corev1.VolumeMount
	for i := range c.VolumeMounts {
		vm := &c.VolumeMounts[i]
		if (p == vm.MountPath || strings.HasPrefix(p, strings.TrimSuffix(vm.MountPath, "/")+"/")) &&
			(best == nil || len(vm.MountPath) > len(best.MountPath)) {
			best = vm
		}
	}
	if best == nil {
		return nil, nil
	}
	for i := range w.spec.Volumes {
		if w.spec.Volumes[i].Name == best.Name {
			return best, &w.spec.Volumes[i]
		}
	}
	return best, nil
}

// checkFiles checks that the policy, the audit key and the audit file sit
// on volumes of the right kind, that the policy in its ConfigMap loads, and
// that every file the policy names is mounted.
func checkFiles(t *testing.T, m *manifests, w workload, c *corev1.Container) {
	t.Helper()
	for _, vm := range c.VolumeMounts {
		if !slices.ContainsFunc(w.spec.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name }) {
			t.Errorf("%s: %s: volume mount %s names no volume", w.where, w.name, vm.Name)
		}
	}

	if f, ok, _ := envValue(c, "FTPGATE_AUDIT_FILE"); ok {
		vm, v := mountFor(w, c, f)
		switch {
		case vm == nil || v == nil:
			t.Errorf("%s: %s: FTPGATE_AUDIT_FILE=%s is on the read-only root file system", w.where, w.name, f)
		case vm.ReadOnly || (v.EmptyDir == nil && v.PersistentVolumeClaim == nil && v.Ephemeral == nil):
			t.Errorf("%s: %s: FTPGATE_AUDIT_FILE=%s is on volume %s, which is not a writable emptyDir or PVC", w.where, w.name, f, vm.Name)
		}
	}
	if f, ok, _ := envValue(c, "FTPGATE_AUDIT_KEY_FILE"); ok {
		if _, v := mountFor(w, c, f); v == nil || (v.Secret == nil && v.Projected == nil && v.CSI == nil) {
			t.Errorf("%s: %s: FTPGATE_AUDIT_KEY_FILE=%s is not on a Secret volume", w.where, w.name, f)
		}
	}

	pol := envOr(c, "FTPGATE_POLICY", defaultPolicy)
	vm, v := mountFor(w, c, pol)
	if vm == nil || v == nil || v.ConfigMap == nil {
		t.Errorf("%s: %s: FTPGATE_POLICY=%s is not on a ConfigMap volume", w.where, w.name, pol)
		return
	}
	if vm.SubPath != "" || vm.SubPathExpr != "" {
		t.Errorf("%s: %s: the policy volume is mounted with subPath, so ConfigMap updates never reach ftpgate", w.where, w.name)
	}
	if len(v.ConfigMap.Items) > 0 {
		t.Errorf("%s: %s: the policy ConfigMap volume maps items; mount it whole so its keys are its file names", w.where, w.name)
	}
	cm := m.configMap(v.ConfigMap.Name)
	if cm == nil {
		t.Errorf("%s: %s: ConfigMap %s (the policy) is not in k8s/*.yaml", w.where, w.name, v.ConfigMap.Name)
		return
	}
	key := strings.TrimPrefix(pol, strings.TrimSuffix(vm.MountPath, "/")+"/")
	src, ok := cm.Data[key]
	if !ok {
		t.Errorf("%s: %s: ConfigMap %s has no key %s (FTPGATE_POLICY=%s)", w.where, w.name, cm.Name, key, pol)
		return
	}
	p, err := policy.Load(strings.NewReader(src), fmt.Sprintf("%s (ConfigMap %s, %s)", m.where[cm], cm.Name, key))
	if err != nil {
		t.Errorf("the example policy does not load:\n%v", err)
		return
	}
	if len(p.Routes()) == 0 {
		t.Errorf("%s: ConfigMap %s: the policy has no routes", m.where[cm], cm.Name)
	}
	for _, r := range p.Routes() {
		u := r.Upstream
		for what, f := range map[string]string{
			"known_hosts": u.KnownHosts, "upstream_key": u.KeyFile,
			"upstream_password": u.Password.File, "upstream_key_passphrase": u.KeyPassphrase.File,
		} {
			if f == "" {
				continue
			}
			fvm, fv := mountFor(w, c, f)
			switch {
			case fvm == nil || fv == nil:
				t.Errorf("%s: %s: route %s: %s %s is on no volume", w.where, w.name, r.Name, what, f)
			case fv.ConfigMap != nil:
				k := strings.TrimPrefix(f, strings.TrimSuffix(fvm.MountPath, "/")+"/")
				if fcm := m.configMap(fv.ConfigMap.Name); fcm != nil && fcm.Data[k] == "" {
					t.Errorf("%s: %s: route %s: %s %s: ConfigMap %s has no key %s", w.where, w.name, r.Name, what, f, fcm.Name, k)
				}
				if what != "known_hosts" {
					t.Errorf("%s: %s: route %s: %s %s is in a ConfigMap; secrets belong in a Secret", w.where, w.name, r.Name, what, f)
				}
			case fv.Secret == nil && fv.Projected == nil && fv.CSI == nil && what != "known_hosts":
				t.Errorf("%s: %s: route %s: %s %s is not on a Secret volume", w.where, w.name, r.Name, what, f)
			}
		}
	}
}

func (m *manifests) configMap(name string) *corev1.ConfigMap {
	for _, cm := range m.configMaps {
		if cm.Name == name {
			return cm
		}
	}
	return nil
}

func selects(t *testing.T, sel *metav1.LabelSelector, podLabels map[string]string) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Errorf("bad label selector %v: %v", sel, err)
		return false
	}
	return !s.Empty() && s.Matches(labels.Set(podLabels))
}

// TestServices checks that each Service selects a workload, that every
// target port is a port of its ftpgate container, and that the passive
// ports are the whole FTPGATE_PASV_PORTS range, each with its own number.
func TestServices(t *testing.T) {
	m := loadManifests(t)
	for _, s := range m.services {
		t.Run(s.Name, func(t *testing.T) {
			at := m.where[s] + ": Service " + s.Name
			var w *workload
			for _, cand := range m.workloads() {
				if len(s.Spec.Selector) > 0 && labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(cand.labels)) {
					if w != nil {
						t.Errorf("%s: selects both %s and %s", at, w.name, cand.name)
					}
					w = &cand
				}
			}
			if w == nil {
				t.Fatalf("%s: selects no workload in k8s/*.yaml", at)
			}
			c := w.ftpgate()
			if c == nil {
				t.Fatalf("%s: %s has no ftpgate container", at, w.name)
			}
			_, ftpPort, err := listenPort(envOr(c, "FTPGATE_LISTEN", defaultListen))
			if err != nil {
				t.Fatal(err)
			}
			admin := adminPort(t, *w, c)
			r, err := parsePortRange(envOr(c, "FTPGATE_PASV_PORTS", ""))
			if err != nil {
				t.Fatalf("%s: FTPGATE_PASV_PORTS: %v", w.where, err)
			}
			passive := map[int32]bool{}
			for _, p := range s.Spec.Ports {
				for _, msg := range validation.IsValidPortName(p.Name) {
					t.Errorf("%s: port name %q: %s", at, p.Name, msg)
				}
				target, ok := resolvePort(c, p.TargetPort)
				if p.TargetPort.Type == intstr.Int && p.TargetPort.IntVal == 0 {
					target, ok = p.Port, true // targetPort defaults to port
				}
				if !ok {
					t.Errorf("%s: port %s: targetPort %s is not a port of the ftpgate container", at, p.Name, p.TargetPort.String())
					continue
				}
				switch {
				case target == ftpPort, target == admin:
				case r.contains(target):
					if p.Port != target {
						t.Errorf("%s: passive port %s: port %d != targetPort %d; the 227 reply names the port ftpgate listens on", at, p.Name, p.Port, target)
					}
					passive[target] = true
				default:
					t.Errorf("%s: port %s: target %d is not the FTP port %d, the admin port %d or in FTPGATE_PASV_PORTS %d-%d",
						at, p.Name, target, ftpPort, admin, r.lo, r.hi)
				}
			}
			if len(passive) > 0 && int32(len(passive)) != r.size() {
				t.Errorf("%s: lists %d of the %d passive ports %d-%d: PASV replies would name ports the Service does not carry", at, len(passive), r.size(), r.lo, r.hi)
			}
			if s.Spec.Type == corev1.ServiceTypeLoadBalancer || s.Spec.Type == corev1.ServiceTypeNodePort {
				if s.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
					t.Errorf("%s: externalTrafficPolicy is not Local: ftpgate would see node addresses, not clients, and refuse data connections", at)
				}
			}
		})
	}
}

// netpolAllows reports whether a rule's ports admit port on c.
func netpolAllows(c *corev1.Container, ports []networkingv1.NetworkPolicyPort, port int32, proto corev1.Protocol) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		pp := corev1.ProtocolTCP
		if p.Protocol != nil {
			pp = *p.Protocol
		}
		if pp != proto {
			continue
		}
		if p.Port == nil {
			return true
		}
		lo, ok := resolvePort(c, *p.Port)
		if !ok {
			continue
		}
		hi := lo
		if p.EndPort != nil {
			hi = *p.EndPort
		}
		if lo <= port && port <= hi {
			return true
		}
	}
	return false
}

// TestNetworkPolicies checks that the gateway's policy admits FTP and the
// passive range from outside the monitoring namespace, the admin port from
// the monitoring namespace, and DNS out.
func TestNetworkPolicies(t *testing.T) {
	m := loadManifests(t)
	for _, np := range m.netpols {
		t.Run(np.Name, func(t *testing.T) {
			at := m.where[np] + ": NetworkPolicy " + np.Name
			var ws []workload
			for _, w := range m.workloads() {
				if selects(t, &np.Spec.PodSelector, w.labels) {
					ws = append(ws, w)
				}
			}
			if len(ws) == 0 {
				t.Fatalf("%s: selects no workload in k8s/*.yaml", at)
			}
			if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
				t.Errorf("%s: policyTypes %v; want Ingress and Egress", at, np.Spec.PolicyTypes)
			}
			for _, w := range ws {
				c := w.ftpgate()
				if c == nil {
					continue
				}
				_, ftpPort, _ := listenPort(envOr(c, "FTPGATE_LISTEN", defaultListen))
				admin := adminPort(t, w, c)
				r, err := parsePortRange(envOr(c, "FTPGATE_PASV_PORTS", ""))
				if err != nil {
					t.Fatalf("%s: FTPGATE_PASV_PORTS: %v", w.where, err)
				}
				fromMonitoring := func(rule networkingv1.NetworkPolicyIngressRule) bool {
					for _, peer := range rule.From {
						if peer.NamespaceSelector != nil && peer.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] == "monitoring" {
							return true
						}
					}
					return false
				}
				allowed := func(port int32, monitoring bool) bool {
					for _, rule := range np.Spec.Ingress {
						if fromMonitoring(rule) == monitoring && netpolAllows(c, rule.Ports, port, corev1.ProtocolTCP) {
							return true
						}
					}
					return false
				}
				if !allowed(ftpPort, false) {
					t.Errorf("%s: no ingress rule admits the FTP port %d from the batch network", at, ftpPort)
				}
				for p := r.lo; p <= r.hi; p++ {
					if !allowed(p, false) {
						t.Errorf("%s: no ingress rule admits passive port %d from the batch network", at, p)
					}
				}
				if !allowed(admin, true) {
					t.Errorf("%s: no ingress rule admits the admin port %d from the monitoring namespace", at, admin)
				}
				for _, proto := range []corev1.Protocol{corev1.ProtocolUDP, corev1.ProtocolTCP} {
					if !slices.ContainsFunc(np.Spec.Egress, func(e networkingv1.NetworkPolicyEgressRule) bool {
						return netpolAllows(c, e.Ports, 53, proto)
					}) {
						t.Errorf("%s: no egress rule allows DNS over %s", at, proto)
					}
				}
			}
		})
	}
}

func TestPodDisruptionBudgets(t *testing.T) {
	m := loadManifests(t)
	for _, pdb := range m.pdbs {
		at := m.where[pdb] + ": PodDisruptionBudget " + pdb.Name
		var d *appsv1.Deployment
		for _, cand := range m.deployments {
			if selects(t, pdb.Spec.Selector, cand.Spec.Template.Labels) {
				d = cand
			}
		}
		if d == nil {
			t.Errorf("%s: selects no Deployment", at)
			continue
		}
		replicas := int32(1)
		if d.Spec.Replicas != nil {
			replicas = *d.Spec.Replicas
		}
		if replicas < 2 {
			t.Errorf("%s: Deployment %s has %d replica(s): a budget cannot keep one up during a drain", at, d.Name, replicas)
		}
		switch {
		case pdb.Spec.MinAvailable != nil && pdb.Spec.MinAvailable.Type == intstr.Int:
			if pdb.Spec.MinAvailable.IntVal >= replicas || pdb.Spec.MinAvailable.IntVal < 1 {
				t.Errorf("%s: minAvailable %d with %d replicas: node drains would block, or nothing is protected", at, pdb.Spec.MinAvailable.IntVal, replicas)
			}
		case pdb.Spec.MaxUnavailable != nil && pdb.Spec.MaxUnavailable.Type == intstr.Int:
			if pdb.Spec.MaxUnavailable.IntVal < 1 || pdb.Spec.MaxUnavailable.IntVal >= replicas {
				t.Errorf("%s: maxUnavailable %d with %d replicas", at, pdb.Spec.MaxUnavailable.IntVal, replicas)
			}
		default:
			t.Errorf("%s: set minAvailable or maxUnavailable as a number", at)
		}
	}
}

// TestSidecarTalksToLoopback checks the sidecar example: ftpgate listens
// on loopback only, and the batch container's FTP step uses that address.
func TestSidecarTalksToLoopback(t *testing.T) {
	m := loadManifests(t)
	for _, p := range m.pods {
		w := workload{"Pod " + p.Name, m.where[p], p.Labels, &p.Spec, 1}
		c := w.ftpgate()
		if c == nil {
			continue
		}
		listen := envOr(c, "FTPGATE_LISTEN", defaultListen)
		host, port, err := listenPort(listen)
		if err != nil {
			t.Fatal(err)
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			t.Errorf("%s: sidecar ftpgate listens on %s; want loopback only", w.where, listen)
		}
		if i := slices.IndexFunc(p.Spec.InitContainers, func(ic corev1.Container) bool { return ic.Name == "ftpgate" }); i >= 0 {
			if rp := p.Spec.InitContainers[i].RestartPolicy; rp == nil || *rp != corev1.ContainerRestartPolicyAlways {
				t.Errorf("%s: ftpgate is an init container without restartPolicy: Always, so the batch container would never start", w.where)
			}
		}
		target := regexp.MustCompile(`ftp://(127\.0\.0\.1|localhost):` + strconv.Itoa(int(port)) + `\b`)
		n := 0
		for _, bc := range p.Spec.Containers {
			if bc.Name != "ftpgate" && target.MatchString(strings.Join(append(slices.Clone(bc.Command), bc.Args...), " ")) {
				n++
			}
		}
		if n == 0 {
			t.Errorf("%s: no container's FTP step goes to ftp://127.0.0.1:%d", w.where, port)
		}
	}
}

// knownVariables returns the FTPGATE_* settings ftpgate reads: the env tags
// of the configuration structs in cmd/ftpgate.
func knownVariables(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob("../cmd/ftpgate/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("cannot find ../cmd/ftpgate/*.go: %v", err)
	}
	tag := regexp.MustCompile(`env:"([A-Z0-9_]+)`)
	known := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range tag.FindAllSubmatch(src, -1) {
			known["FTPGATE_"+string(m[1])] = true
		}
	}
	if !known["FTPGATE_LISTEN"] || !known["FTPGATE_DRAIN_TIMEOUT"] {
		t.Fatalf("found no FTPGATE_LISTEN or FTPGATE_DRAIN_TIMEOUT env tag in ../cmd/ftpgate: %v", known)
	}
	return known
}

// ftpgateVariables finds the FTPGATE_* names mentioned in text.
func ftpgateVariables(text string) []string {
	return regexp.MustCompile(`\bFTPGATE_[A-Z0-9_]+`).FindAllString(text, -1)
}
