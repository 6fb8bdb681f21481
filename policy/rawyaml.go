package policy

import (
	"fmt"
	"reflect"

	"go.yaml.in/yaml/v3"
)

// The raw types mirror the policy file key for key. They are decoded with
// KnownFields(true), so a key that is not listed here is an error; the
// loader then validates them into Route and userAtHostRule values.

type rawPolicy struct {
	Version        field[int]                        `yaml:"version"`
	KnownHosts     field[string]                     `yaml:"known_hosts"`
	LocalUsersFile field[string]                     `yaml:"local_users_file"`
	UserAtHost     *rawUserAtHost                    `yaml:"user_at_host"`
	Zones          *rawZones                         `yaml:"zones"`
	Groups         map[string]field[[]field[string]] `yaml:"groups"`
	Routes         []rawRoute                        `yaml:"routes"`
	Rules          []rawRule                         `yaml:"rules"`
}

type rawZones struct {
	Sources      map[string]rawSourceZone `yaml:"sources"`
	Destinations map[string]rawDestZone   `yaml:"destinations"`
}

type rawSourceZone struct {
	Networks field[[]field[string]] `yaml:"networks"`
	Users    field[[]field[string]] `yaml:"users"`
	Groups   field[[]field[string]] `yaml:"groups"`
}

type rawDestZone struct {
	Networks field[[]field[string]] `yaml:"networks"`
	Hosts    field[[]field[string]] `yaml:"hosts"`
}

type rawRule struct {
	Name   field[string]          `yaml:"name"`
	From   field[[]field[string]] `yaml:"from"`
	To     field[[]field[string]] `yaml:"to"`
	Users  field[[]field[string]] `yaml:"users"`
	Groups field[[]field[string]] `yaml:"groups"`
	Action field[string]          `yaml:"action"`

	// upgrade and warn rules only.
	Protocols            field[[]field[string]] `yaml:"protocols"`
	UserAtHostScheme     field[string]          `yaml:"user_at_host_scheme"`
	PlainFTP             field[bool]            `yaml:"plain_ftp"`
	LocalUsersFile       field[string]          `yaml:"local_users_file"`
	RequireTLS           field[bool]            `yaml:"require_tls"`
	ReadOnly             field[bool]            `yaml:"read_only"`
	AllowCommands        field[[]field[string]] `yaml:"allow_commands"`
	DenyCommands         field[[]field[string]] `yaml:"deny_commands"`
	AllowSiteFiletype    field[[]field[string]] `yaml:"allow_site_filetype"`
	AllowSiteDiagnostics field[[]field[string]] `yaml:"allow_site_diagnostics"`
	Paths                field[[]field[string]] `yaml:"paths"`
	MaxFileSize          field[string]          `yaml:"max_file_size"`
	DataPorts            *rawDataPorts          `yaml:"data_ports"`
}

type rawDataPorts struct {
	Active         field[bool]   `yaml:"active"`
	ForeignAddress field[bool]   `yaml:"foreign_address"`
	LowPorts       field[bool]   `yaml:"low_ports"`
	PassivePorts   field[string] `yaml:"passive_ports"`
}

type rawUserAtHost struct {
	Enabled         field[bool]            `yaml:"enabled"`
	Scheme          field[string]          `yaml:"scheme"`
	AllowHosts      field[[]field[string]] `yaml:"allow_hosts"`
	Port            field[int]             `yaml:"port"`
	KnownHosts      field[string]          `yaml:"known_hosts"`
	HostKeySHA256   field[[]field[string]] `yaml:"host_key_sha256"`
	UseFstat        field[bool]            `yaml:"use_fstat"`
	ConcurrentReads field[bool]            `yaml:"concurrent_reads"`
}

type rawRoute struct {
	Name                  field[string]          `yaml:"name"`
	User                  field[string]          `yaml:"user"`
	Auth                  field[string]          `yaml:"auth"`
	PasswordBcrypt        field[string]          `yaml:"password_bcrypt"`
	Upstream              field[string]          `yaml:"upstream"`
	UpstreamPassword      secretField            `yaml:"upstream_password"`
	UpstreamKey           field[string]          `yaml:"upstream_key"`
	UpstreamKeyPassphrase secretField            `yaml:"upstream_key_passphrase"`
	KnownHosts            field[string]          `yaml:"known_hosts"`
	HostKeySHA256         field[[]field[string]] `yaml:"host_key_sha256"`
	UseFstat              field[bool]            `yaml:"use_fstat"`
	ConcurrentReads       field[bool]            `yaml:"concurrent_reads"`

	// FTPS (ftps:// and ftpes://) routes only.
	TLSCAFile              field[string]          `yaml:"tls_ca_file"`
	TLSCertSHA256          field[[]field[string]] `yaml:"tls_cert_sha256"`
	TLSMinVersion          field[string]          `yaml:"tls_min_version"`
	TLSCiphers             field[[]field[string]] `yaml:"tls_ciphers"`
	TLSClientCert          field[string]          `yaml:"tls_client_cert"`
	TLSClientKey           field[string]          `yaml:"tls_client_key"`
	TLSServerName          field[string]          `yaml:"tls_server_name"`
	PassiveUseReplyAddress field[bool]            `yaml:"passive_use_reply_address"`
}

// field is a value from the policy file with the line it sits on, so that
// validation can point at it. A key given as null (or left empty, "key:")
// counts as not set: the YAML library does not call UnmarshalYAML for null.
type field[T any] struct {
	V    T
	Line int
	Set  bool // the key was present with a non-null value
	Bad  bool // the value had the wrong type; that was already reported
}

// ok reports whether the key was set to a well-typed value.
func (f *field[T]) ok() bool { return f.Set && !f.Bad }

func (f *field[T]) UnmarshalYAML(n *yaml.Node) error {
	f.Line, f.Set = n.Line, true
	want, wantKind := f.want()
	if n.Kind != wantKind {
		f.Bad = true
		return typeErrorf(n.Line, "want %s, got %s", want, describeNode(n))
	}
	if err := n.Decode(&f.V); err != nil {
		if wantKind == yaml.ScalarNode {
			f.Bad = true
			return typeErrorf(n.Line, "want %s, got %s", want, describeNode(n))
		}
		// A list: the bad items have said what is wrong and are left
		// out of f.V; the good ones are still checked. Only a list with
		// nothing good left counts as bad, so that it is not also
		// reported as empty.
		f.Bad = reflect.ValueOf(f.V).Len() == 0
		return err
	}
	return nil
}

// want describes the value a field takes and the YAML node kind it needs.
func (f *field[T]) want() (string, yaml.Kind) {
	switch any(f.V).(type) {
	case int:
		return "a whole number", yaml.ScalarNode
	case bool:
		return "true or false", yaml.ScalarNode
	case string:
		return "a string", yaml.ScalarNode
	case []field[string]:
		return "a list of strings", yaml.SequenceNode
	}
	return fmt.Sprintf("a %T", f.V), yaml.ScalarNode
}

// secretField is a secret reference, {env: NAME} or {file: PATH}, decoded
// by hand so that an unknown key inside it is an error too (the strict
// mode of the YAML library does not reach into UnmarshalYAML).
type secretField struct {
	V    Secret
	Line int
	Set  bool
	Bad  bool
}

func (f *secretField) UnmarshalYAML(n *yaml.Node) error {
	f.Line, f.Set = n.Line, true
	if n.Kind != yaml.MappingNode {
		f.Bad = true
		// Not describeNode: a password pasted here by mistake must not
		// end up in the message.
		got := "a list"
		if n.Kind == yaml.ScalarNode {
			got = "a plain value"
		}
		return typeErrorf(n.Line, "want a secret reference, {env: NAME} or {file: PATH}; got %s", got)
	}
	var errs []string
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolveAlias(n.Content[i]), resolveAlias(n.Content[i+1])
		if k == nil || v == nil || k.Kind != yaml.ScalarNode {
			errs = append(errs, fmt.Sprintf("line %d: a secret reference has the keys env or file", n.Content[i].Line))
			continue
		}
		var dst *string
		switch k.Value {
		case "env":
			dst = &f.V.Env
		case "file":
			dst = &f.V.File
		default:
			errs = append(errs, fmt.Sprintf("line %d: unknown key %q in secret reference (want env or file)", k.Line, k.Value))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			errs = append(errs, fmt.Sprintf("line %d: key %q is given twice in secret reference (first at line %d)", k.Line, k.Value, first))
			continue
		}
		seen[k.Value] = k.Line
		if v.Kind != yaml.ScalarNode || v.ShortTag() == "!!null" {
			errs = append(errs, fmt.Sprintf("line %d: %s: want a string, got %s", v.Line, k.Value, describeNode(v)))
			continue
		}
		*dst = v.Value
	}
	if len(errs) > 0 {
		f.Bad = true
		return &yaml.TypeError{Errors: errs}
	}
	return nil
}

func typeErrorf(line int, format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: ", line) + fmt.Sprintf(format, args...)}}
}
