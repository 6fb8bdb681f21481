//go:build !unix

package proxy

import (
	"errors"
	"net"
)

var (
	errEMFILE       = errors.New("EMFILE")
	errENFILE       = errors.New("ENFILE")
	errECONNABORTED = errors.New("ECONNABORTED")
)

func setOOBInline(net.Conn) {}
