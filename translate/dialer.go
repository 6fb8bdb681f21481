package translate

import (
	"context"
	"fmt"

	"github.com/ftpgate/ftpgate/policy"
)

// SchemeDialer dials each upstream with the dialer for its scheme: "sftp"
// with SFTP, "ftps" and "ftpes" with FTPS. A nil dialer, and any other
// scheme, fail with ErrUnsupported without touching the network. It holds
// no state of its own and may be shared by many sessions if its dialers
// may.
type SchemeDialer struct {
	SFTP Dialer // usually *SFTPDialer
	FTPS Dialer // usually *FTPSDialer
}

var _ Dialer = SchemeDialer{}

// Dial implements Dialer.
func (d SchemeDialer) Dial(ctx context.Context, up policy.Upstream, password Password) (Upstream, error) {
	var next Dialer
	switch up.Scheme {
	case "sftp":
		next = d.SFTP
	case "ftps", "ftpes":
		next = d.FTPS
	}
	if next == nil {
		return nil, fmt.Errorf("translate: no dialer for scheme %q: %w", up.Scheme, ErrUnsupported)
	}
	return next.Dial(ctx, up, password)
}
