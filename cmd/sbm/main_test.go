package main

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/sbm-project/sbm/internal/softhsm"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/vmcu"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"sbm": func() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs the CLI scripts in testdata/script. Each script is one
// user-visible scenario, including its error paths and exit codes.
func TestScripts(t *testing.T) {
	fixtures, err := filepath.Abs("../../internal/firmware/testdata")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("FIXTURES", fixtures)
			return nil
		},
		Condition: func(cond string) (bool, error) {
			if cond == "softhsm" {
				// SoftHSM2 is installed, or this is CI, where the token
				// scripts must run (and fail without it), never skip.
				return softhsm.Module() != "" || os.Getenv("CI") != "", nil
			}
			return false, errors.New("unknown condition " + cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"softhsmconf": cmdSoftHSMConf,
			"expectexit":  cmdExpectExit,
			"devicecert":  cmdDeviceCert,
			"freeport":    cmdFreePort,
			"deviceid":    cmdDeviceID,
			"flipbyte":    cmdFlipByte,
		},
	})
}

// cmdSoftHSMConf runs "softhsmconf": it writes a SoftHSM2 configuration
// with its token directory in $WORK, points SOFTHSM2_CONF at it and sets
// SOFTHSM_MODULE to the module's path, for softhsm2-util and sbm.
func cmdSoftHSMConf(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: softhsmconf")
	}
	m := softhsm.Module()
	if m == "" {
		ts.Fatalf("SoftHSM2 is not installed (apt-get install softhsm2; scripts/test.sh does it)")
	}
	tokens := ts.MkAbs("softhsm-tokens")
	ts.Check(os.MkdirAll(tokens, 0o700))
	conf := ts.MkAbs("softhsm2.conf")
	ts.Check(os.WriteFile(conf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600))
	ts.Setenv("SOFTHSM2_CONF", conf)
	ts.Setenv("SOFTHSM_MODULE", m)
}

// cmdExpectExit runs "expectexit CODE PROG ARGS..." and checks PROG's exit
// code, keeping its output for stdout/stderr checks.
func cmdExpectExit(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: expectexit CODE PROG [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("expectexit: bad code %q", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		got = ee.ExitCode()
	} else if err != nil {
		ts.Fatalf("expectexit: %v", err)
	}
	if got != want {
		ts.Fatalf("%s exited with %d, want %d", args[1], got, want)
	}
}

// cmdDeviceCert stands in for a device at provisioning: "devicecert CTX
// DEVICE_ID_HEX KA_KEY_OUT CERT_OUT" makes a device identity key and a
// key-agreement key, and has the context's device CA certify them.
func cmdDeviceCert(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 4 {
		ts.Fatalf("usage: devicecert CTX DEVICE_ID_HEX KA_KEY_OUT CERT_OUT")
	}
	c, err := trust.Open(ts.MkAbs(args[0]), nil)
	ts.Check(err)
	id, err := hex.DecodeString(args[1])
	ts.Check(err)
	idKey, err := c.Suite().GenerateSigningKey()
	ts.Check(err)
	ka, err := c.Suite().GenerateKeyAgreementKey()
	ts.Check(err)
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: args[1]}}, idKey)
	ts.Check(err)
	csr, err := x509.ParseCertificateRequest(csrDER)
	ts.Check(err)
	cert, err := c.IssueDeviceCertificate(csr, id, ka.PublicKey(), time.Now())
	ts.Check(err)
	kaPEM, err := trust.MarshalPrivateKey(ka, nil)
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[2]), kaPEM, 0o600))
	ts.Check(os.WriteFile(ts.MkAbs(args[3]), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644))
}

// cmdFreePort sets environment variable VAR to a free TCP port on 127.0.0.1:
// "freeport VAR".
func cmdFreePort(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: freeport VAR")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ts.Setenv(args[0], strconv.Itoa(port))
}

// cmdDeviceID sets environment variable VAR to the ID of the device in DIR:
// "deviceid DIR VAR".
func cmdDeviceID(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: deviceid DIR VAR")
	}
	in, err := vmcu.Inspect(ts.MkAbs(args[0]))
	ts.Check(err)
	ts.Setenv(args[1], in.ID)
}

// cmdFlipByte inverts one byte of a file: "flipbyte FILE OFFSET" (a
// negative OFFSET counts from the end).
func cmdFlipByte(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: flipbyte FILE OFFSET")
	}
	p := ts.MkAbs(args[0])
	b, err := os.ReadFile(p)
	ts.Check(err)
	off, err := strconv.Atoi(args[1])
	ts.Check(err)
	if off < 0 {
		off += len(b)
	}
	if off < 0 || off >= len(b) {
		ts.Fatalf("flipbyte: offset %s outside the %d-byte file", args[1], len(b))
	}
	b[off] ^= 0xff
	ts.Check(os.WriteFile(p, b, 0o644))
}
