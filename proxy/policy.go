package proxy

import (
	"errors"
	"path"
	"strings"

	"github.com/ftpgate/ftpgate/policy"
)

// The policy decides a session's controls once, at login; the session
// asks the Decision before each command. The answers are pure, so asking
// costs a map lookup or a string compare.

// policyRefuses asks the session's decision about a command and, for
// translated sessions, about the upstream path it names; on a refusal it
// sets *r to the reply the decision chose and logs the rule.
func (s *session) policyRefuses(verb, arg string, r *reply) bool {
	if verb == "SITE" {
		// The FILETYPE mode is remembered even when the SITE itself is
		// refused: the z/OS client ignores the refusal of a typed SITE
		// and would go on to store the JCL as a plain file.
		if ft, ok := siteFiletype(arg); ok {
			s.filetype = ft
		}
	}
	err := s.decision.Command(verb, arg)
	if err == nil && s.forwarder() == nil {
		if p, ok := s.policyPath(verb, arg); ok {
			err = s.decision.Path(verb, p)
		}
	}
	if err == nil {
		return false
	}
	var de *policy.DenyError
	code, reason := codeFileUnavailable, err.Error()
	if errors.As(err, &de) {
		if de.Code != 0 {
			code = de.Code
		}
		reason = de.Reason
	}
	s.log.Warn().Str("cmd", verb).Str("rule", s.decision.Rule).Str("reason", reason).Msg("command refused by policy")
	*r = rep(code, "Refused by policy rule "+s.decision.Rule+".")
	return true
}

// policyPath is the upstream path a command acts on, for the path
// controls of a translated (SFTP) session. Pass-through partners name
// their own files (MVS data sets), so their arguments are not paths here.
func (s *session) policyPath(verb, arg string) (string, bool) {
	switch verb {
	case "RETR", "STOR", "APPE", "DELE", "RMD", "XRMD", "MKD", "XMKD", "RNFR", "RNTO",
		"SIZE", "MDTM", "CWD", "XCWD", "MLST", "MLSD":
		return s.resolve(arg), true
	case "CDUP", "XCUP":
		return path.Dir(s.cwd), true
	case "STOU":
		return s.cwd, true
	case "LIST", "NLST", "STAT":
		a := stripListFlags(arg)
		if verb == "STAT" && a == "" {
			return "", false
		}
		p := s.resolve(a)
		if hasGlob(path.Base(p)) {
			p = path.Dir(p)
		}
		return p, true
	case "MFMT":
		if _, name, ok := strings.Cut(arg, " "); ok {
			return s.resolve(name), true
		}
	case "SITE":
		f := strings.Fields(arg)
		if len(f) >= 3 && strings.EqualFold(f[0], "CHMOD") {
			return s.resolve(strings.Join(f[2:], " ")), true
		}
	}
	return "", false
}

// errTooLarge stops an upload that passed the rule's maximum file size.
var errTooLarge = errors.New("proxy: upload exceeds the maximum file size of the policy rule")

// limitReader fails once more than max bytes were read, so an upload that
// grows past the rule's limit is aborted (and, written to a temporary
// name, never appears).
type limitReader struct {
	r   interface{ Read([]byte) (int, error) }
	max int64
	n   int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.n += int64(n)
	if l.n > l.max {
		return n, errTooLarge
	}
	return n, err
}
