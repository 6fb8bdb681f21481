package proxy

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/ftpgate/ftpgate/translate"
)

// BenchmarkTransfer moves a file through the proxy and the in-process
// SFTP partner on loopback, both directions, and reports throughput and
// the heap in use at the end of each run (which must not grow with the
// file size: the data path streams).
//
//	go test ./proxy -run '^$' -bench Transfer -benchtime 5x
func BenchmarkTransfer(b *testing.B) {
	for _, size := range []int{64 << 20, 256 << 20} {
		benchTransfer(b, size, "", false)
	}
}

// BenchmarkTransferHash measures what the SHA-256 of every transfer costs:
// the same 256 MiB transfers with the hash on and off.
func BenchmarkTransferHash(b *testing.B) {
	benchTransfer(b, 256<<20, "hash-on/", false)
	benchTransfer(b, 256<<20, "hash-off/", true)
}

func benchTransfer(b *testing.B, size int, prefix string, noHash bool) {
	{
		p := startProxy(b, proxyOpts{mutate: func(s *Server) { s.DisableTransferHash = noHash }})
		c := dialFTP(b, p.Addr)
		c.login("demo", clientPass)
		c.expect("TYPE I", 200)
		src := filepath.Join(p.Root, "src.bin")
		f, _ := os.Create(src)
		io.CopyN(f, zeroReader{}, int64(size))
		f.Close()

		b.Run(fmt.Sprintf("%sRETR/%dMiB", prefix, size>>20), func(b *testing.B) {
			c.t = b
			b.SetBytes(int64(size))
			for b.Loop() {
				conn := c.prepare(modeEPSV)
				c.expect("RETR src.bin", 150)
				n, _ := io.Copy(io.Discard, conn())
				if code, _ := c.read(); code != 226 || n != int64(size) {
					b.Fatalf("RETR: %d bytes, reply %d", n, code)
				}
			}
			reportHeap(b)
		})
		b.Run(fmt.Sprintf("%sSTOR/%dMiB", prefix, size>>20), func(b *testing.B) {
			c.t = b
			b.SetBytes(int64(size))
			for b.Loop() {
				conn := c.prepare(modeEPSV)
				c.expect("STOR dst.bin", 150)
				dc := conn()
				io.CopyN(dc, zeroReader{}, int64(size))
				dc.Close()
				if code, _ := c.read(); code != 226 {
					b.Fatalf("STOR: reply %d", code)
				}
			}
			reportHeap(b)
		})
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func reportHeap(b *testing.B) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	b.ReportMetric(float64(m.HeapInuse)/(1<<20), "heap-MiB")
}

// BenchmarkFreshSessionSmallFile is a batch job's pattern: a new FTP
// session per 4 KiB file (connect, login, TYPE I, EPSV, STOR, QUIT), with
// and without the upstream pool. ns/op is the time per file.
func BenchmarkFreshSessionSmallFile(b *testing.B) {
	for _, pooled := range []bool{false, true} {
		name := "direct"
		if pooled {
			name = "pooled"
		}
		b.Run(name, func(b *testing.B) {
			p := startProxy(b, proxyOpts{mutate: func(s *Server) {
				if pooled {
					pool := &translate.Pool{Dialer: s.Dialer.(*translate.SFTPDialer)}
					b.Cleanup(func() { pool.Close() })
					s.Dialer = pool
				}
			}})
			data := make([]byte, 4096)
			i := 0
			for b.Loop() {
				c := dialFTP(b, p.Addr)
				c.login("demo", clientPass)
				c.expect("TYPE I", 200)
				i++
				c.stor("STOR", fmt.Sprintf("small-%d.bin", i), data, modeEPSV)
				c.expect("QUIT", 221)
				c.conn.Close()
			}
		})
	}
}
