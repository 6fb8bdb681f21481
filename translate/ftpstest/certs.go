package ftpstest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// CA is a throwaway certificate authority for tests.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte // the CA certificate, for tls_ca_file or a server's CA file
	key     crypto.Signer
}

// NewCA makes a CA with an ECDSA P-256 key, valid from an hour ago for a
// day.
func NewCA(name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"ftpgate tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, CertPEM: pemBlock("CERTIFICATE", der), key: key}, nil
}

// CertOptions describe a certificate for Issue.
type CertOptions struct {
	CommonName string
	DNSNames   []string
	IPs        []net.IP
	// NotBefore and NotAfter default to an hour ago and a day from now.
	NotBefore, NotAfter time.Time
	// Client makes a client certificate (ExtKeyUsageClientAuth) instead
	// of a server certificate.
	Client bool
	// RSA gives the certificate a 2048-bit RSA key instead of ECDSA
	// P-256.
	RSA bool
}

// Cert is a certificate with its key, in the forms servers and clients
// load.
type Cert struct {
	TLS     tls.Certificate
	Leaf    *x509.Certificate
	CertPEM []byte // the leaf, then the CA
	KeyPEM  []byte // PKCS #8
}

// Fingerprint is the leaf's SHA-256 in the form of tls_cert_sha256 pins:
// "SHA256:" and unpadded base64.
func (c *Cert) Fingerprint() string {
	sum := sha256.Sum256(c.Leaf.Raw)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// Issue signs a certificate.
func (ca *CA) Issue(opt CertOptions) (*Cert, error) {
	var key crypto.Signer
	var err error
	if opt.RSA {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: opt.CommonName, Organization: []string{"ftpgate tests"}},
		NotBefore:    opt.NotBefore,
		NotAfter:     opt.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		DNSNames:     opt.DNSNames,
		IPAddresses:  opt.IPs,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if opt.RSA {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	if opt.Client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Now().Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	c := &Cert{
		Leaf:    leaf,
		CertPEM: append(pemBlock("CERTIFICATE", der), ca.CertPEM...),
		KeyPEM:  pemBlock("PRIVATE KEY", pk),
	}
	c.TLS, err = tls.X509KeyPair(c.CertPEM, c.KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("ftpstest: key pair: %w", err)
	}
	return c, nil
}

// ServerCert issues a server certificate for 127.0.0.1, ::1 and localhost.
func (ca *CA) ServerCert() (*Cert, error) {
	return ca.Issue(CertOptions{
		CommonName: "localhost",
		DNSNames:   []string{"localhost"},
		IPs:        []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	})
}

// Pool returns a pool holding only the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
