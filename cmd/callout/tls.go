package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strconv"
)

// serverTLS loads the certificate and key named by the environment variables
// certVar and keyVar (PEM files). It returns nil when neither is set: the
// listener then speaks plain TCP.
func serverTLS(e *env, certVar, keyVar string) (*tls.Config, error) {
	cert, key := e.getenv(certVar), e.getenv(keyVar)
	if cert == "" && key == "" {
		return nil, nil
	}
	if cert == "" || key == "" {
		return nil, fmt.Errorf("%s and %s go together: set both or neither", certVar, keyVar)
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", certVar, keyVar, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// certPool reads the PEM certificates of file, for trusting a private CA.
func certPool(what, file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: %s holds no PEM certificate", what, file)
	}
	return pool, nil
}

// mllpTLS is the MLLP listener's TLS: CALLOUT_MLLP_TLS_CERT and
// CALLOUT_MLLP_TLS_KEY, and with CALLOUT_MLLP_CLIENT_CA a client
// certificate issued by that CA required of every sender.
func mllpTLS(e *env) (*tls.Config, error) {
	cfg, err := serverTLS(e, "CALLOUT_MLLP_TLS_CERT", "CALLOUT_MLLP_TLS_KEY")
	if err != nil {
		return nil, err
	}
	ca := e.getenv("CALLOUT_MLLP_CLIENT_CA")
	if ca == "" {
		return cfg, nil
	}
	if cfg == nil {
		return nil, fmt.Errorf("CALLOUT_MLLP_CLIENT_CA needs CALLOUT_MLLP_TLS_CERT and CALLOUT_MLLP_TLS_KEY: client certificates are checked in a TLS handshake")
	}
	if cfg.ClientCAs, err = certPool("CALLOUT_MLLP_CLIENT_CA", ca); err != nil {
		return nil, err
	}
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	return cfg, nil
}

// positiveEnv reads a positive integer from the environment, def when unset.
func positiveEnv(e *env, name string, def int) (int, error) {
	v := e.getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s=%q is not a positive whole number", name, v)
	}
	return n, nil
}
