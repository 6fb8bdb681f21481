package proxy

import (
	"errors"

	"github.com/ftpgate/ftpgate/translate"
)

// replyFor is the one place an upstream error becomes an FTP reply. The
// reply text is generic on purpose: the detail (which may name internal
// hosts or paths) goes to the log and the record, not to the client.
// inTransfer selects 426 rather than 421 for a lost upstream connection,
// because a failed transfer leaves the control connection open.
func replyFor(err error, inTransfer bool) reply {
	var hke *translate.HostKeyError
	switch {
	case err == nil:
		return rep(codeOK, "OK.")
	case errors.Is(err, translate.ErrNotFound):
		return rep(codeFileUnavailable, "No such file or directory.")
	case errors.Is(err, translate.ErrPermission):
		return rep(codeFileUnavailable, "Permission denied.")
	case errors.Is(err, translate.ErrExist):
		return rep(codeFileUnavailable, "File exists.")
	case errors.Is(err, translate.ErrIsDir):
		return rep(codeFileUnavailable, "Is a directory.")
	case errors.Is(err, translate.ErrNotDir):
		return rep(codeFileUnavailable, "Not a directory.")
	case errors.Is(err, translate.ErrNotEmpty):
		return rep(codeFileUnavailable, "Directory not empty.")
	case errors.Is(err, translate.ErrTooLarge):
		return rep(codeFileUnavailable, "Listing too large.")
	case errors.Is(err, translate.ErrNoSpace):
		if inTransfer {
			return rep(codeExceededStorage, "Insufficient storage space at the partner.")
		}
		return rep(codeNoSpaceTemp, "Insufficient storage space at the partner.")
	case errors.Is(err, translate.ErrUnsupported):
		return rep(codeNotImplemented, "Not supported by the partner.")
	case errors.Is(err, translate.ErrShortTransfer):
		return rep(codeTransferAborted, "Transfer incomplete: the partner sent fewer bytes than the file holds.")
	case errors.Is(err, translate.ErrConnLost), errors.Is(err, translate.ErrUnreachable), errors.As(err, &hke):
		if inTransfer {
			return rep(codeTransferAborted, "Connection to the partner lost, transfer aborted.")
		}
		return rep(codeUnavailable, "Connection to the partner lost, closing control connection.")
	case errors.Is(err, translate.ErrAuth):
		return rep(codeNotLoggedIn, "Login incorrect.")
	}
	return rep(codeLocalError, "Local error in processing.")
}

func isConnLost(err error) bool {
	return errors.Is(err, translate.ErrConnLost) || errors.Is(err, translate.ErrUnreachable)
}
