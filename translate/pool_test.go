package translate_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ftpgate/ftpgate/policy"
	"github.com/ftpgate/ftpgate/translate"
	"github.com/ftpgate/ftpgate/translate/translatetest"
)

func poolDial(t *testing.T, p *translate.Pool, _ *translatetest.Server, up policy.Upstream, pw string) (translate.Upstream, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return p.Dial(ctx, up, translate.Password(pw))
}

func waitConns(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPoolSharesOneConnection(t *testing.T) {
	s := startSFTP(t)
	p := &translate.Pool{Dialer: &translate.SFTPDialer{}}
	defer p.Close()
	up := upstreamFor(s)
	os.WriteFile(filepath.Join(s.Root, "f"), []byte("x"), 0o644)
	var sessions []translate.Upstream
	for i := 0; i < 5; i++ {
		u, err := poolDial(t, p, s, up, partnerPW)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		sessions = append(sessions, u)
	}
	if n := s.Connections(); n != 1 {
		t.Fatalf("5 sessions made %d SSH connections; want 1", n)
	}
	for i, u := range sessions {
		if _, err := u.Stat(context.Background(), filepath.Join(s.Root, "f")); err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
	}
	// Closing one session leaves the others working.
	sessions[0].Close()
	if _, err := sessions[1].Stat(context.Background(), s.Root); err != nil {
		t.Fatalf("after closing a sibling: %v", err)
	}
	for _, u := range sessions[1:] {
		u.Close()
	}
	if conns, ch := p.Stats(); conns != 1 || ch != 0 {
		t.Fatalf("stats after closing all: %d conns, %d channels; want 1, 0", conns, ch)
	}
}

func TestPoolNeverReusesForAnotherPassword(t *testing.T) {
	s := startSFTP(t)
	p := &translate.Pool{Dialer: &translate.SFTPDialer{}}
	defer p.Close()
	up := upstreamFor(s)
	good, err := poolDial(t, p, s, up, partnerPW)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	_, err = poolDial(t, p, s, up, "wrong-"+partnerPW)
	if !errors.Is(err, translate.ErrAuth) {
		t.Fatalf("wrong password with a pooled connection open: %v; want ErrAuth", err)
	}
	if conns, _ := p.Stats(); conns != 1 {
		t.Fatalf("%d pooled connections; want only the good one", conns)
	}
}

func TestPoolCapsAndWaits(t *testing.T) {
	s := startSFTP(t)
	p := &translate.Pool{Dialer: &translate.SFTPDialer{}, MaxChannelsPerConn: 2, MaxConnsPerKey: 2}
	defer p.Close()
	up := upstreamFor(s)
	var held []translate.Upstream
	for i := 0; i < 4; i++ {
		u, err := poolDial(t, p, s, up, partnerPW)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, u)
	}
	if conns, ch := p.Stats(); conns != 2 || ch != 4 {
		t.Fatalf("4 sessions, 2 per connection: %d conns, %d channels", conns, ch)
	}
	// A fifth waits for a free channel.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, err := p.Dial(ctx, up, translate.Password(partnerPW))
	cancel()
	if err == nil {
		t.Fatal("a fifth session got a channel beyond the caps")
	}
	got := make(chan error, 1)
	go func() {
		u, err := poolDial(t, p, s, up, partnerPW)
		if err == nil {
			defer u.Close()
		}
		got <- err
	}()
	time.Sleep(20 * time.Millisecond)
	held[0].Close()
	if err := <-got; err != nil {
		t.Fatalf("waiting session after a release: %v", err)
	}
	for _, u := range held[1:] {
		u.Close()
	}
}

func TestPoolConcurrentDialsSingleflight(t *testing.T) {
	s := startSFTP(t)
	p := &translate.Pool{Dialer: &translate.SFTPDialer{}}
	defer p.Close()
	up := upstreamFor(s)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	sessions := make(chan translate.Upstream, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u, err := poolDial(t, p, s, up, partnerPW)
			if err != nil {
				errs <- err
				return
			}
			sessions <- u
		}()
	}
	wg.Wait()
	close(errs)
	close(sessions)
	for err := range errs {
		t.Fatal(err)
	}
	if n := s.Connections(); n != 2 {
		t.Errorf("20 concurrent sessions at 10 channels each made %d connections; want 2", n)
	}
	for u := range sessions {
		u.Close()
	}
}

func TestPoolExpiresIdleAndRecoversFromDrops(t *testing.T) {
	s := startSFTP(t)
	p := &translate.Pool{Dialer: &translate.SFTPDialer{}, IdleTimeout: 50 * time.Millisecond}
	defer p.Close()
	up := upstreamFor(s)
	u, err := poolDial(t, p, s, up, partnerPW)
	if err != nil {
		t.Fatal(err)
	}
	u.Close()
	waitConns(t, "idle connection closed", func() bool { c, _ := p.Stats(); return c == 0 && s.Connections() == 0 })

	u, err = poolDial(t, p, s, up, partnerPW)
	if err != nil {
		t.Fatal(err)
	}
	s.DropConnections()
	if _, err := u.Stat(context.Background(), s.Root); !errors.Is(err, translate.ErrConnLost) {
		t.Fatalf("after the partner dropped us: %v; want ErrConnLost", err)
	}
	u.Close()
	waitConns(t, "dead connection removed", func() bool { c, _ := p.Stats(); return c == 0 })
	u, err = poolDial(t, p, s, up, partnerPW)
	if err != nil {
		t.Fatalf("dial after a drop: %v", err)
	}
	defer u.Close()
	if _, err := u.Stat(context.Background(), s.Root); err != nil {
		t.Fatalf("fresh session after a drop: %v", err)
	}
}
