package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sbm-project/sbm/server/auditlog"
	"github.com/sbm-project/sbm/server/store"
	"github.com/sbm-project/sbm/server/store/postgres"
	"github.com/sbm-project/sbm/server/store/sqlite"
	"github.com/sbm-project/sbm/trust"
)

// The crash sweep runs the service as a child process (this test binary,
// in crashHelper) that kills itself with SIGKILL at one step of a
// certification, then checks what the store and the log say.

const crashHelperEnv = "SBM_SERVER_CRASH_HELPER"

// crashHelper serves until killed: context in $SBM_CRASH_CTX, store
// $SBM_CRASH_DB (a directory: SQLite; a URL: PostgreSQL), SIGKILL at step
// $SBM_CRASH_KILL (if set); it writes its address to $SBM_CRASH_ADDR.
func crashHelper() int {
	ctx := context.Background()
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "crash helper:", err); return 3 }
	c, err := trust.Open(os.Getenv("SBM_CRASH_CTX"), nil)
	if err != nil {
		return fail(err)
	}
	var st store.Store
	if db := os.Getenv("SBM_CRASH_DB"); strings.HasPrefix(db, "postgres") || strings.Contains(db, "host=") {
		st, err = postgres.Open(ctx, db)
	} else {
		st, err = sqlite.Open(ctx, db)
	}
	if err != nil {
		return fail(err)
	}
	kill := os.Getenv("SBM_CRASH_KILL")
	srv, err := New(Config{Context: c, Store: st, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)), Hook: func(step string) {
		if step == kill {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}})
	if err != nil {
		return fail(err)
	}
	tc, err := srv.TLSConfig([]string{"127.0.0.1"})
	if err != nil {
		return fail(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	addr := os.Getenv("SBM_CRASH_ADDR")
	if err := os.WriteFile(addr+".tmp", []byte(ln.Addr().String()), 0o644); err != nil {
		return fail(err)
	}
	if err := os.Rename(addr+".tmp", addr); err != nil {
		return fail(err)
	}
	if err := srv.Serve(ctx, ln, tc); err != nil {
		return fail(err)
	}
	return 0
}

// child is one run of the service process.
type child struct {
	cmd  *exec.Cmd
	url  string
	logs *bytes.Buffer
}

func startChild(t *testing.T, ctxDir, db, kill string) *child {
	t.Helper()
	addr := filepath.Join(t.TempDir(), "addr")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashHelperEnv+"=1", "SBM_CRASH_CTX="+ctxDir, "SBM_CRASH_DB="+db,
		"SBM_CRASH_KILL="+kill, "SBM_CRASH_ADDR="+addr)
	logs := &bytes.Buffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(addr)
		if err == nil {
			return &child{cmd: cmd, url: "https://" + string(b), logs: logs}
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the service did not start: %s", logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitKilled waits for the child to die of SIGKILL.
func (ch *child) waitKilled(t *testing.T) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- ch.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		ch.cmd.Process.Kill()
		<-done
		t.Fatalf("the service was not killed at its step: %s", ch.logs)
	}
	ws, ok := ch.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the service ended with %v, not SIGKILL: %s", ch.cmd.ProcessState, ch.logs)
	}
}

func (ch *child) stop() {
	ch.cmd.Process.Kill()
	ch.cmd.Wait()
}

// disconnectAfterSend is a station that dies right after sending its
// request: it writes the request and closes the connection unread.
func disconnectAfterSend(t *testing.T, url string, cred *trust.ServiceCredential, req *CertifyRequest) {
	t.Helper()
	body, _ := json.Marshal(req)
	conn, err := tls.Dial("tcp", strings.TrimPrefix(url, "https://"), &tls.Config{
		MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, Certificates: []tls.Certificate{cred.TLSCertificate()}})
	if err != nil {
		t.Fatal(err)
	}
	hr, _ := http.NewRequest(http.MethodPost, url+"/v1/station/certify", bytes.NewReader(body))
	hr.Header.Set("Content-Type", "application/json")
	w := bufio.NewWriter(conn)
	if err := hr.Write(w); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	conn.Close()
}

// TestCrashSweep kills the service (SIGKILL) at every step of a
// certification, and a station right after it sent its request, each
// followed by the station's retry or by the device abandoned; then the
// counts stay within the order, every certified device is in the log
// (which audits), a retry returns the certificate the service recorded,
// and the abandoned units are spoiled by the stale sweep.
func TestCrashSweep(t *testing.T) {
	for _, e := range []string{"sqlite", "postgres"} {
		t.Run(e, func(t *testing.T) {
			ctxDir := filepath.Join(t.TempDir(), "ctx")
			c, err := trust.Init(ctxDir, nil)
			if err != nil {
				t.Fatal(err)
			}
			db := filepath.Join(t.TempDir(), "data")
			var st store.Store
			if e == "postgres" {
				db = pgURL(t)
				st = openPostgres(t, db)
			} else {
				if st, err = sqlite.Open(context.Background(), db); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
			}
			stCred := newStation(t, c, "line-a")
			type scenario struct{ kill, then string }
			var scenarios []scenario
			for _, step := range []string{HookReserved, HookSigned, HookCommitted, HookResponding, "station-disconnect", "station-lost-answer"} {
				for _, then := range []string{"retry", "abandon"} {
					scenarios = append(scenarios, scenario{step, then})
				}
			}
			const quota = 12 // more than the scenarios: the sweep is not about exhaustion
			ch := startChild(t, ctxDir, db, "")
			f := &fixture{ctx: c, store: st, url: ch.url}
			id := stationOrder(t, f, quota, stCred)
			ch.stop()

			ctx := context.Background()
			devices := make([]*testDevice, len(scenarios))
			returned := map[string][]byte{}
			for i, sc := range scenarios {
				dev := newTestDevice(t, c, i)
				devices[i] = dev
				kill := sc.kill
				if strings.HasPrefix(kill, "station-") {
					kill = ""
				}
				ch := startChild(t, ctxDir, db, kill)
				cl := f.stationAt(t, ch.url, stCred)
				switch sc.kill {
				case "station-disconnect":
					disconnectAfterSend(t, ch.url, stCred, &CertifyRequest{Order: id, CSR: dev.csr(t)})
					time.Sleep(50 * time.Millisecond)
					ch.stop()
				case "station-lost-answer":
					// The station dies after the answer, before the device
					// got its certificate.
					if _, err := cl.Certify(ctx, &CertifyRequest{Order: id, CSR: dev.csr(t)}); err != nil {
						t.Fatal(err)
					}
					ch.stop()
				default:
					if _, err := cl.Certify(ctx, &CertifyRequest{Order: id, CSR: dev.csr(t)}); err == nil {
						t.Fatalf("%v: the station got an answer from a service killed at %s", sc, sc.kill)
					}
					ch.waitKilled(t)
				}
				if sc.then == "abandon" {
					continue
				}
				ch = startChild(t, ctxDir, db, "")
				resp, err := f.stationAt(t, ch.url, stCred).Certify(ctx, &CertifyRequest{Order: id, CSR: dev.csr(t)})
				ch.stop()
				if err != nil {
					t.Fatalf("%v: retry: %v", sc, err)
				}
				wantRetry := sc.kill == HookCommitted || sc.kill == HookResponding || sc.kill == "station-lost-answer"
				if wantRetry && !resp.Retry {
					t.Fatalf("%v: the retry got a new certificate for a device certified before the crash", sc)
				}
				returned[dev.hexID()] = resp.Certificate
			}

			// The abandoned units left reserved are spoiled.
			srv, err := New(Config{Context: c, Store: st})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := srv.SpoilStale(ctx, 0); err != nil {
				t.Fatal(err)
			}
			cnt, err := st.Counter(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if cnt.Used+cnt.Spoiled > quota || cnt.Used != cnt.Certified {
				t.Fatalf("counter %+v", cnt)
			}
			// The log audits, with the order's quota, and agrees with the store.
			l, err := srv.readLog()
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := l.Export(ctx, &buf); err != nil {
				t.Fatal(err)
			}
			var oid auditlog.OrderID
			copy(oid[:], mustHex(t, id))
			rep, err := auditlog.Audit(&buf, mustLogKey(t, c).Public(), map[auditlog.OrderID]uint64{oid: quota})
			if err != nil {
				t.Fatalf("audit after the sweep: %v", err)
			}
			o := rep.Orders[oid]
			if int64(o.Certified) != cnt.Certified || int64(o.Spoiled) != cnt.Spoiled {
				t.Fatalf("the log says %d certified %d spoiled, the store %+v", o.Certified, o.Spoiled, cnt)
			}
			certified := 0
			for i, dev := range devices {
				d, err := st.Device(ctx, dev.hexID())
				if errors.Is(err, store.ErrNotFound) {
					if _, inLog := rep.Devices[dev.hexID()]; inLog {
						t.Fatalf("%v: device in the log without a record", scenarios[i])
					}
					res, err := st.Reservation(ctx, dev.hexID())
					if err == nil && res.State != store.Spoiled {
						t.Fatalf("%v: uncertified device's unit is %s", scenarios[i], res.State)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				certified++
				if at, ok := rep.Devices[dev.hexID()]; !ok || at != d.LogIndex || rep.CertificateDigests[dev.hexID()] != sha256.Sum256(d.Certificate) {
					t.Fatalf("%v: certified device not in the log as recorded", scenarios[i])
				}
				if got, ok := returned[dev.hexID()]; ok && !bytes.Equal(got, d.Certificate) {
					t.Fatalf("%v: the station holds another certificate than the service recorded", scenarios[i])
				}
			}
			if int64(certified) != cnt.Certified {
				t.Fatalf("%d device records, %d certified", certified, cnt.Certified)
			}
			// Every retry certified its device; the abandoned ones after the
			// commit stay certified; those before it are spoiled.
			if certified < 9 || cnt.Spoiled < 2 {
				t.Fatalf("certified %d, spoiled %d: want ≥ 9 and ≥ 2", certified, cnt.Spoiled)
			}
			t.Logf("%d scenarios: %d certified, %d spoiled, %d log entries", len(scenarios), certified, cnt.Spoiled, rep.Size)
		})
	}
}

// stationAt returns a station client of the service at url.
func (f *fixture) stationAt(t *testing.T, url string, cred *trust.ServiceCredential) *Client {
	t.Helper()
	cl, err := NewStationClient(url, cred)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}
