package proxy

import "time"

// Observer receives the events that metrics are made of. Labels passed to
// it are low-cardinality by construction (route names from the policy,
// fixed words for kinds and results); never a user name or a path. Every
// method must be cheap and must not block: it is called on the session's
// goroutines.
type Observer interface {
	SessionStarted()
	// SessionEnded reports the end of a session: result is "ok" after a
	// login, "refused" when no login succeeded.
	SessionEnded(result string)
	// LoginFailed reports a refused login: reason is "policy",
	// "password", "partner" (the partner refused the credentials),
	// "hostkey" or "unavailable".
	LoginFailed(route, reason string)
	// Decision reports a policy decision: action is "allow" or "deny".
	Decision(route, action string)
	// UpstreamDialed reports the time a login's upstream dial took.
	UpstreamDialed(route, kind string, d time.Duration, ok bool)
	// TransferDone reports a finished transfer: direction is "retrieve",
	// "store", "append" or "list"; result "ok", "failed" or "aborted".
	TransferDone(route, kind, direction, result string, clientBytes int64, d time.Duration)
	// TransferRefused reports a transfer refused because the audit trail
	// is unavailable.
	TransferRefused(route string)
}

type nopObserver struct{}

func (nopObserver) SessionStarted()                                                   {}
func (nopObserver) SessionEnded(string)                                               {}
func (nopObserver) LoginFailed(string, string)                                        {}
func (nopObserver) Decision(string, string)                                           {}
func (nopObserver) UpstreamDialed(string, string, time.Duration, bool)                {}
func (nopObserver) TransferDone(string, string, string, string, int64, time.Duration) {}
func (nopObserver) TransferRefused(string)                                            {}

func (srv *Server) observer() Observer {
	if srv.Observer != nil {
		return srv.Observer
	}
	return nopObserver{}
}
