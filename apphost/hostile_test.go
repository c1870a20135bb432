package apphost

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/sbm-project/sbm/hal"
)

// TestHostile runs the hostile application, which calls every service
// with bad pointers, lengths, offsets, URLs and handles: every such call
// returns an error code, the host survives, the application runs to its
// end, and neither the flash nor the staging slot changes.
func TestHostile(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("package"))
	}))
	defer srv.Close()
	for _, withServices := range []bool{true, false} {
		t.Run(fmt.Sprintf("services=%v", withServices), func(t *testing.T) {
			v := newDevice(t, apps["hostile"])
			fake := newFake(64 << 10)
			if withServices {
				v.app.Services = fake
			}
			before := flashImage(t, v)
			res := v.run(&Options{Args: []string{srv.URL + "/pkg"}})
			if !res.ran || res.err != nil {
				t.Fatalf("Run: ran %v, err %v, stop %v\n%s", res.ran, res.err, res.stop.Reason, v.out.String())
			}
			v.waitFor("hostile: done")
			bad, good := checkHostileOutput(t, v.out.String(), withServices)
			t.Logf("%d bad calls refused, %d good calls:\n%s", bad, good, v.out.String())
			if !bytes.Equal(flashImage(t, v), before) {
				t.Error("the flash changed")
			}
			if fake.writes != 0 || fake.erases != 0 || fake.updates != 0 || fake.recovery != 0 {
				t.Errorf("services changed state: %d writes, %d erases, %d updates, %d recoveries",
					fake.writes, fake.erases, fake.updates, fake.recovery)
			}
			if !bytes.Equal(fake.staging, bytes.Repeat([]byte{0xff}, len(fake.staging))) {
				t.Error("the staging slot changed")
			}
		})
	}
}

// checkHostileOutput checks every "bad" line has a negative result and
// every "good" line a non-negative one (when the services exist), and
// that the counts match the final line.
func checkHostileOutput(t *testing.T, out string, withServices bool) (bad, good int) {
	t.Helper()
	var wantBad, wantGood int
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if f[0] == "hostile:" {
			if _, err := fmt.Sscanf(line, "hostile: done %d bad %d good", &wantBad, &wantGood); err != nil {
				t.Fatalf("final line %q: %v", line, err)
			}
			continue
		}
		if f[0] != "bad" && f[0] != "good" {
			t.Errorf("unexpected output line %q", line)
			continue
		}
		r, err := strconv.Atoi(f[len(f)-1])
		if err != nil {
			t.Errorf("line %q: %v", line, err)
			continue
		}
		switch {
		case f[0] == "bad":
			bad++
			if r >= 0 {
				t.Errorf("hostile call succeeded: %s", line)
			}
			want := hostileCode(f[1])
			switch {
			case want == 0:
			case want == CodeBadArgument && !withServices && -r == int(CodeUnavailable):
			case -r != int(want):
				t.Errorf("%s: want code %d", line, want)
			}
		default:
			good++
			if withServices && r < 0 {
				t.Errorf("well-formed call failed: %s", line)
			}
		}
	}
	if bad != wantBad || good != wantGood || bad < 40 {
		t.Errorf("saw %d bad and %d good calls, the application made %d and %d", bad, good, wantBad, wantGood)
	}
	return bad, good
}

// flashImage reads the whole flash at SBM privilege.
func flashImage(t *testing.T, v *device) []byte {
	t.Helper()
	f := v.d.Flash(hal.PrivSBM)
	b := make([]byte, f.Geometry().Size)
	if err := f.Read(0, b); err != nil {
		t.Fatal(err)
	}
	return b
}

// hostileCode returns the code a hostile call must fail with, from its
// label (0: any error).
func hostileCode(label string) int32 {
	has := func(subs ...string) bool {
		for _, sub := range subs {
			if strings.Contains(label, sub) {
				return true
			}
		}
		return false
	}
	switch {
	case has("ptr-out", "len-huge", "len-neg", "-out", "nonce-neg"):
		return CodeBadPointer
	case has("denied"):
		return CodeDenied
	case has("handle", "too-many", "twice"):
		return CodeBadHandle
	case has("refused"):
		return CodeNetwork
	case has("off-", "straddles", "nonce-short", "nonce-long", "empty", "now-neg", "th-short", "th-long",
		"th-digest-size", "oversize", "type-ctl"):
		return CodeBadArgument
	}
	return 0
}
