package proxy

import (
	"bufio"
	"io"
	"net/textproto"
)

func newBufReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

func newTextReader(r io.Reader) *textproto.Reader { return textproto.NewReader(bufio.NewReader(r)) }
