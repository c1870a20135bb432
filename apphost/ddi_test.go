package apphost_test

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/sbm-project/sbm/apphost"
	"github.com/sbm-project/sbm/attest/report"
	"github.com/sbm-project/sbm/attest/verifier"
	"github.com/sbm-project/sbm/sim"
	"github.com/sbm-project/sbm/trust"
)

// fakeDDI is a test double of the fleet service's device API
// (docs/fleet.md): the hawkBit DDI subset and the additions the updater's
// poll command uses (docs/spec/services.md), for
// one device and one open action at a time; an action ends when it is
// closed and its report arrived.
type fakeDDI struct {
	mu        sync.Mutex
	base, id  string
	action    int    // the open action's ID, 0 none
	version   string // the offered release
	pkg, upk  []byte
	feedbacks []string // "execution/finished" in order
	reports   []*report.Report
	refused   []string // what the double refused (wrong device, bad report)
}

func (f *fakeDDI) offer(action int, version string, pkg, upk []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.action, f.version, f.pkg, f.upk = action, version, pkg, upk
}

func (f *fakeDDI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ident, err := trust.ParseDeviceIdentity(r.TLS.PeerCertificates[0])
	ctrl := "/DEFAULT/controller/v1/" + f.id
	if err != nil || hex.EncodeToString(ident.ID) != f.id || !strings.HasPrefix(r.URL.Path, ctrl) && !strings.HasPrefix(r.URL.Path, "/artifacts/") {
		f.refused = append(f.refused, r.URL.Path)
		http.Error(w, "not this device's", http.StatusForbidden)
		return
	}
	action := fmt.Sprintf("%s/deploymentBase/%d", ctrl, f.action)
	switch p := r.URL.Path; {
	case r.Method == http.MethodGet && p == ctrl:
		links := map[string]any{}
		if f.action != 0 {
			links["deploymentBase"] = map[string]string{"href": f.base + action + "?c=-12345"}
		}
		json.NewEncoder(w).Encode(map[string]any{"config": map[string]any{"polling": map[string]string{"sleep": "00:05:00"}}, "_links": links})
	case f.action == 0:
		http.NotFound(w, r)
	case r.Method == http.MethodGet && p == action:
		json.NewEncoder(w).Encode(map[string]any{
			"id": fmt.Sprint(f.action),
			"deployment": map[string]any{"download": "forced", "update": "forced", "chunks": []any{map[string]any{
				"part": "os", "version": f.version, "name": "updater",
				"artifacts": []any{map[string]any{
					"filename": "updater-" + f.version + ".pkg", "size": len(f.pkg),
					"hashes": map[string]string{"sha256": fmt.Sprintf("%x", sha256.Sum256(f.pkg))},
					"_links": map[string]any{
						"download":      map[string]string{"href": f.base + "/artifacts/updater-" + f.version + ".pkg"},
						"download-http": map[string]string{"href": f.base + "/artifacts/updater-" + f.version + ".pkg"},
					},
				}},
			}}},
			"_links": map[string]any{
				"upk":      map[string]string{"href": f.base + action + "/upk"},
				"feedback": map[string]string{"href": f.base + action + "/feedback"},
				"reports":  map[string]string{"href": f.base + ctrl + "/reports"},
			},
		})
	case r.Method == http.MethodGet && strings.HasPrefix(p, "/artifacts/"):
		w.Write(f.pkg)
	case r.Method == http.MethodGet && p == action+"/upk":
		w.Write(f.upk)
	case r.Method == http.MethodPost && p == action+"/feedback":
		var fb struct {
			ID     string `json:"id"`
			Status struct {
				Execution string `json:"execution"`
				Result    struct {
					Finished string `json:"finished"`
				} `json:"result"`
			} `json:"status"`
		}
		if err := json.NewDecoder(r.Body).Decode(&fb); err != nil || fb.ID != fmt.Sprint(f.action) {
			http.Error(w, "bad feedback", http.StatusBadRequest)
			return
		}
		f.feedbacks = append(f.feedbacks, fb.Status.Execution+"/"+fb.Status.Result.Finished)
		w.WriteHeader(http.StatusOK)
	case r.Method == http.MethodPost && p == ctrl+"/reports":
		b, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
		rep, err := verifier.VerifyReport(b, r.TLS.PeerCertificates[0])
		if err != nil {
			f.refused = append(f.refused, "report: "+err.Error())
			http.Error(w, "bad report", http.StatusBadRequest)
			return
		}
		f.reports = append(f.reports, rep)
		if n := len(f.feedbacks); n > 0 && strings.HasPrefix(f.feedbacks[n-1], "closed/") {
			f.action = 0 // closed and reported: done
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(w, r)
	}
}

// state returns copies of what the double recorded.
func (f *fakeDDI) state() ([]string, []*report.Report, []string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.feedbacks...), append([]*report.Report(nil), f.reports...), append([]string(nil), f.refused...), f.action
}

// TestRealSBMPollDDI: the updater on the real SBM polls the service
// (hawkBit DDI over mTLS with the SBM-held key) at every boot: it installs
// the offered release from the published package and its own UPK, and
// after the reboot closes the action with success and a signed report
// naming the installed package; a release it cannot install (a UPK bound
// to another package) is closed with failure and a report naming the
// refused package and the SBM's code.
func TestRealSBMPollDDI(t *testing.T) {
	if testing.Short() {
		t.Skip("provisions a device")
	}
	c := newContext(t, trust.SuiteP256)
	f := &fakeDDI{}
	srv := httptest.NewUnstartedServer(f)
	pool := x509.NewCertPool()
	pool.AddCert(c.DeviceCACertificate())
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	defer srv.Close()
	f.base = srv.URL
	opts := &apphost.Options{Cache: apphost.TestCache, ServiceURL: srv.URL, ServiceRoots: roots(srv),
		Args: []string{"poll " + srv.URL}}
	v := newRealDeviceOf(t, sim.FirmwareWithApps(nil, opts), c)
	f.id = hex.EncodeToString(v.prov.ID)

	updater := apphost.BuiltApp("updater")
	p2, u2 := v.pack(updater, "2.0.0", 2)
	pub2, err := p2.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	f.offer(1, "2.0.0", pub2, u2)
	v.program(updater, "1.0.0", 1)
	// Boot 1.0.0: poll, download, install; boot 2.0.0: poll, close.
	waitMatch(t, &v.out, regexp.MustCompile(`application 2\.0\.0 on SBM[\s\S]*poll: report sent[\s\S]*ready`))
	fbs, reps, refused, open := f.state()
	if strings.Join(fbs, " ") != "proceeding/none closed/success" || open != 0 || len(refused) != 0 {
		t.Fatalf("feedback %v, action open %d, refused %v", fbs, open, refused)
	}
	d2 := sha256.Sum256(p2.Manifest)
	if len(reps) != 1 || !reps[0].Updated || reps[0].Result != 0 || reps[0].Package != d2 || reps[0].App.Version != "2.0.0" {
		t.Fatalf("reports %+v", reps)
	}

	// A release whose UPK is bound to another package: refused by the SBM
	// after the reset, reported as a failure.
	p3, _ := v.pack(updater, "3.0.0", 3)
	pub3, err := p3.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	f.offer(2, "3.0.0", pub3, u2)
	v.send("poll " + srv.URL)
	waitMatch(t, &v.out, regexp.MustCompile(`feedback closed failure[\s\S]*poll: report sent \(\d+ bytes\)\n[\s\S]*ready`))
	fbs, reps, refused, open = f.state()
	if strings.Join(fbs, " ") != "proceeding/none closed/success proceeding/none closed/failure" || open != 0 || len(refused) != 0 {
		t.Fatalf("feedback %v, action open %d, refused %v", fbs, open, refused)
	}
	d3 := sha256.Sum256(p3.Manifest)
	r := reps[len(reps)-1]
	if len(reps) != 2 || r.Updated || r.Result != 11 || !r.HasPackage || r.Package != d3 || r.App.Version != "2.0.0" ||
		r.Sequence <= reps[0].Sequence {
		t.Fatalf("failure report %+v", r)
	}
	// Nothing more to do.
	v.send("poll " + srv.URL)
	waitFor(t, &v.out, "poll: nothing to do (sleep 00:05:00)")
}
