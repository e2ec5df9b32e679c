// SPDX-License-Identifier: Apache-2.0

// Command stepca-test is the shortcert test harness's copy of step-ca.
// Debian 12 ships the step-ca 0.19.0 sources (golang-github-smallstep-certificates-dev)
// but neither a step-ca nor a step binary, so this program provides the two things
// the integration tests need: "serve" runs a real, unmodified step-ca 0.19.0 from a
// ca.json, and "mkprov" creates a JWK provisioner exactly as the step CLI does
// (EC P-256 key, kid = RFC 7638 SHA-256 thumbprint, encryptedKey = PBES2-HS256+A128KW /
// A256GCM JWE of the private JWK, all via go.step.sm/crypto/jose). Build it with
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o stepca-test .
//
// Passwords are only ever read from files, never from argv or the environment.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"

	"github.com/smallstep/certificates/authority/config"
	"github.com/smallstep/certificates/ca"
	"go.step.sm/crypto/jose"
)

func usage() {
	fmt.Fprintf(os.Stderr, `usage:
  stepca-test serve  -config ca.json [-password-file F]
  stepca-test mkprov -name NAME -password-file F -out DIR
`)
	os.Exit(2)
}

// readPassword reads a password file, dropping trailing CR/LF like `step --password-file`.
func readPassword(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return bytes.TrimRight(b, "\r\n"), nil
}

// serve runs step-ca 0.19.0 in the foreground until SIGINT/SIGTERM (clean
// shutdown, the badger DB is closed) and reloads ca.json on SIGHUP.
func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	cfgPath := fs.String("config", "ca.json", "path to ca.json")
	passFile := fs.String("password-file", "", "file with the password of the intermediate key (optional)")
	fs.Parse(args)

	cfg, err := config.LoadConfiguration(*cfgPath)
	if err != nil {
		return err
	}
	opts := []ca.Option{ca.WithConfigFile(*cfgPath)}
	if *passFile != "" {
		pw, err := readPassword(*passFile)
		if err != nil {
			return err
		}
		opts = append(opts, ca.WithPassword(pw))
	}
	srv, err := ca.New(cfg, opts...)
	if err != nil {
		return err
	}
	go ca.StopReloaderHandler(srv)
	if err := srv.Run(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// provisioner is the JWK provisioner object as it appears in ca.json.
type provisioner struct {
	Type         string           `json:"type"`
	Name         string           `json:"name"`
	Key          *jose.JSONWebKey `json:"key"`
	EncryptedKey string           `json:"encryptedKey"`
}

// mkprov writes DIR/prov.json and DIR/jwk-priv.json (0600).
func mkprov(args []string) error {
	fs := flag.NewFlagSet("mkprov", flag.ExitOnError)
	name := fs.String("name", "", "provisioner name (the token's iss)")
	passFile := fs.String("password-file", "", "file with the password for encryptedKey")
	out := fs.String("out", "", "output directory")
	fs.Parse(args)
	if *name == "" || *passFile == "" || *out == "" {
		usage()
	}
	pw, err := readPassword(*passFile)
	if err != nil {
		return err
	}
	if len(pw) == 0 {
		return errors.New("empty password")
	}

	// Same steps as jose.GenerateDefaultKeyPair (what `step ca provisioner add
	// --create` uses), but we also keep the private JWK for the tests.
	priv, err := jose.GenerateJWK("EC", "P-256", "ES256", "sig", "", 0)
	if err != nil {
		return err
	}
	if priv.KeyID, err = jose.Thumbprint(priv); err != nil {
		return err
	}
	jwe, err := jose.EncryptJWK(priv, pw)
	if err != nil {
		return err
	}
	enc, err := jwe.CompactSerialize()
	if err != nil {
		return err
	}
	pub := priv.Public()

	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	pj, err := json.MarshalIndent(provisioner{Type: "JWK", Name: *name, Key: &pub, EncryptedKey: enc}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*out, "prov.json"), append(pj, '\n'), 0o644); err != nil {
		return err
	}
	kj, err := json.Marshal(priv)
	if err != nil {
		return err
	}
	kp := filepath.Join(*out, "jwk-priv.json")
	os.Remove(kp) // so that the 0600 mode below applies to a fresh file
	if err := os.WriteFile(kp, append(kj, '\n'), 0o600); err != nil {
		return err
	}
	fmt.Println(priv.KeyID)
	return nil
}

func main() {
	log.SetFlags(log.LstdFlags)
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "mkprov":
		err = mkprov(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		log.Fatalf("stepca-test %s: %v", os.Args[1], err)
	}
}
