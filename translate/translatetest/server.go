// Package translatetest provides an in-process SSH/SFTP server for tests
// and for "ftpgate demo": real SSH (x/crypto/ssh) and real SFTP (pkg/sftp's
// server) over a directory, on 127.0.0.1 and a random port, with a
// throwaway host key. Like net/http/httptest, it is ordinary code so that
// both tests and the demo command can use it.
package translatetest

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// Server is a running SFTP server.
type Server struct {
	Addr        string        // 127.0.0.1:port
	Host        string        // 127.0.0.1
	Port        int           // the random port
	HostKey     ssh.PublicKey // the throwaway host key
	Fingerprint string        // HostKey's SHA256 fingerprint, for pinning
	Root        string        // the directory served; sessions start here

	cfg   *ssh.ServerConfig
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{} // guarded by mu
	done  bool                  // guarded by mu
}

// Options configure NewServer. Users maps login names to passwords;
// AuthorizedKeys are accepted for any user.
type Options struct {
	Users          map[string]string
	AuthorizedKeys []ssh.PublicKey
}

// NewServer starts an SFTP server over root. Paths are the operating
// system's (pkg/sftp's server is not confined to root); sessions start in
// root, so relative names stay inside it.
func NewServer(root string, opt Options) (*Server, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	users := make(map[string]string, len(opt.Users))
	for u, p := range opt.Users {
		users[u] = p
	}
	keys := append([]ssh.PublicKey(nil), opt.AuthorizedKeys...)
	cfg := &ssh.ServerConfig{
		PasswordCallback: func(c ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			want, ok := users[c.User()]
			if ok && subtle.ConstantTimeCompare([]byte(want), pw) == 1 {
				return nil, nil
			}
			return nil, errors.New("password rejected")
		},
		PublicKeyCallback: func(c ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			for _, k := range keys {
				if subtle.ConstantTimeCompare(k.Marshal(), key.Marshal()) == 1 {
					return nil, nil
				}
			}
			return nil, errors.New("key rejected")
		},
		ServerVersion: "SSH-2.0-ftpgate-translatetest",
	}
	cfg.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ta := ln.Addr().(*net.TCPAddr)
	s := &Server{
		Addr:        ln.Addr().String(),
		Host:        ta.IP.String(),
		Port:        ta.Port,
		HostKey:     signer.PublicKey(),
		Fingerprint: ssh.FingerprintSHA256(signer.PublicKey()),
		Root:        root,
		cfg:         cfg,
		ln:          ln,
		conns:       make(map[net.Conn]struct{}),
	}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// KnownHostsLine is the known_hosts line for this server.
func (s *Server) KnownHostsLine() string {
	return fmt.Sprintf("[%s]:%d %s", s.Host, s.Port, string(ssh.MarshalAuthorizedKey(s.HostKey)))
}

// Close stops the server and closes every connection.
func (s *Server) Close() error {
	s.mu.Lock()
	s.done = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

// DropConnections closes every open connection but keeps listening: a
// partner whose network broke, for fault tests.
func (s *Server) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

// Connections reports how many SSH connections are open: tests use it to
// show that no upstream connection was made.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.done {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serveConn(c)
	}
}

func (s *Server) serveConn(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	sc, chans, reqs, err := ssh.NewServerConn(c, s.cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	var wg sync.WaitGroup
	defer wg.Wait()
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only session channels")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveChannel(ch, creqs)
		}()
	}
}

func (s *Server) serveChannel(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		ok := req.Type == "subsystem" && len(req.Payload) > 4 && string(req.Payload[4:]) == "sftp"
		req.Reply(ok, nil)
		if !ok {
			continue
		}
		go ssh.DiscardRequests(reqs)
		srv, err := sftp.NewServer(ch, sftp.WithServerWorkingDirectory(s.Root))
		if err != nil {
			return
		}
		if err := srv.Serve(); err != nil && !errors.Is(err, io.EOF) {
			srv.Close()
		}
		return
	}
}
