package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/vmcu"
)

// Scenario names accepted in TortureOptions.Scenarios (docs/power-cut.md).
const (
	// ScenarioUART is first programming over the UART: a provisioned device
	// with no application; the host sends a package with the real wire
	// client to the SBM's wire.Session.
	ScenarioUART = "uart-program"
	// ScenarioStaging is an update from the staging slot: application v1
	// writes v2's package into staging and calls RequestUpdate (needs
	// sbm.Services; skipped while the SBM has none).
	ScenarioStaging = "staging-update"
	// ScenarioRecovery is an install of v2 over v1 through a recovery
	// session (the wire.Target path: staging writes, Finish, install).
	ScenarioRecovery = "recovery-install"
	// ScenarioCommits cuts only the secure-storage operations (signature
	// table, security counter, install-pending marker) of two successive
	// updates of a small application, v1 → v2 → v3, at every one of them.
	ScenarioCommits = "commits"
)

// ScenarioNames lists the scenarios in the order Torture runs them.
var ScenarioNames = []string{ScenarioUART, ScenarioStaging, ScenarioRecovery, ScenarioCommits}

// TortureOptions configures Torture. The zero value runs the reduced
// sweep of every scenario on the "small" board with an 8 KiB application.
type TortureOptions struct {
	// Board is a built-in board name or board file; default "small".
	Board string
	// Size is the application size in bytes; default 8 KiB.
	Size int
	// Seed selects the device, the torn outcomes, the reduced sample and
	// the extra cuts; the same seed gives the same cuts.
	Seed uint64
	// Exhaustive cuts before and during every operation instead of a
	// sample.
	Exhaustive bool
	// Scenarios selects scenarios by name (ScenarioNames); empty means all.
	Scenarios []string
	// Log receives progress lines and failures; nil discards them.
	Log io.Writer
	// MaxCuts is the most further cuts made while a run recovers (each run
	// draws 0..MaxCuts from its seed); default 5, negative means none.
	MaxCuts int
	// At, if positive, runs only that cut point (to reproduce a failure).
	At int
	// Torn makes the At cut torn instead of clean.
	Torn bool
	// TornSeed selects the torn outcome of the At cut.
	TornSeed uint64

	// wrapFlash, if set, wraps the SBM's flash: tests inject broken
	// schemes with it to show that the sweep can fail.
	wrapFlash func(hal.Flash) hal.Flash
}

// TortureReport is the result of Torture.
type TortureReport struct {
	Board string
	Size  int
	Seed  uint64
	// Exhaustive reports whether every operation was cut.
	Exhaustive bool
	Scenarios  []*ScenarioReport
	// Passed and Failed count runs (cut points × clean/torn) over all
	// scenarios.
	Passed, Failed int
	Duration       time.Duration
}

// ScenarioReport is the result of one scenario.
type ScenarioReport struct {
	Name string
	// Ops is T, the number of flash operations of the uninterrupted
	// scenario (those eligible as cut points: for ScenarioCommits, the
	// secure-storage ones).
	Ops int
	// CutPoints is how many distinct operations were cut.
	CutPoints int
	// Runs is how many cut runs were made (clean and torn).
	Runs           int
	Passed, Failed int
	// ExtraCuts counts the further cuts that fired during recoveries.
	ExtraCuts int
	// Resumed counts runs whose first cut left an install pending.
	Resumed int
	// Skipped, if not empty, says why the scenario did not run.
	Skipped  string
	Failures []*TortureFailure
	Duration time.Duration
}

// TortureFailure is one failed run, with what reproduces it.
type TortureFailure struct {
	Scenario string
	// At is the operation cut (1-based).
	At int
	// Torn and TornSeed say how: before the operation, or during it with
	// that seed.
	Torn     bool
	TornSeed uint64
	// Extra are the further cuts armed during recovery.
	Extra  []vmcu.PowerCut
	Reason string
}

// Error describes the failure and how to reproduce it.
func (f *TortureFailure) Error() string {
	how := "clean"
	if f.Torn {
		how = fmt.Sprintf("torn seed %d", f.TornSeed)
	}
	return fmt.Sprintf("%s: cut at operation %d (%s): %s", f.Scenario, f.At, how, f.Reason)
}

// Repro returns the command-line flags that rerun just this cut point
// (with the board, size and seed of the report).
func (f *TortureFailure) Repro() string {
	s := fmt.Sprintf("--scenario %s --at %d", f.Scenario, f.At)
	if f.Torn {
		s += fmt.Sprintf(" --torn-seed %d", f.TornSeed)
	}
	return s
}

// cutPoint is one run: the first cut.
type cutPoint struct {
	at       int
	torn     bool
	tornSeed uint64
}

// Torture sweeps power cuts over the SBM's flows on an in-memory virtual
// device running the real SBM (docs/power-cut.md). For each scenario it
// records the T flash operations of an uninterrupted run, then for each
// chosen operation i cuts power before it (clean) and during it (torn),
// makes further random cuts while the device recovers, and finally checks
// that an uninterrupted boot runs the complete old or new application
// with a consistent signature table and counter — the new one if the
// update had been authenticated — and that the flow can then be completed.
// It returns an error only when the sweep cannot be set up; failed runs
// are in the report.
func Torture(ctx context.Context, opts TortureOptions) (*TortureReport, error) {
	if opts.Board == "" {
		opts.Board = "small"
	}
	if opts.Size == 0 {
		opts.Size = 8 << 10
	}
	if opts.Size < 0 {
		return nil, errors.New("torture: negative size")
	}
	if opts.MaxCuts == 0 {
		opts.MaxCuts = 5
	}
	names := opts.Scenarios
	if len(names) == 0 {
		names = ScenarioNames
	}
	for _, n := range names {
		if !knownScenario(n) {
			return nil, fmt.Errorf("torture: unknown scenario %q (have %s)", n, strings.Join(ScenarioNames, ", "))
		}
	}
	b, err := vmcu.LoadBoard(opts.Board)
	if err != nil {
		return nil, err
	}
	logf := func(format string, a ...any) {
		if opts.Log != nil {
			fmt.Fprintf(opts.Log, format+"\n", a...)
		}
	}
	start := time.Now()
	dir, err := os.MkdirTemp("", "sbm-torture-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	c, err := trust.Init(filepath.Join(dir, "context"), &trust.InitOptions{Now: tortureNow})
	if err != nil {
		return nil, err
	}
	env := &tortureEnv{opts: &opts, ctx: c, board: b, logf: logf}
	if env.prov, err = provisionDevice(c, b, opts.Seed, tortureNow(), nil); err != nil {
		return nil, fmt.Errorf("torture: provisioning the device: %w", err)
	}
	rep := &TortureReport{Board: b.Name, Size: opts.Size, Seed: opts.Seed, Exhaustive: opts.Exhaustive}
	logf("torture: board %s, application %d bytes, seed %d, %s sweep", b.Name, opts.Size, opts.Seed, map[bool]string{true: "exhaustive", false: "reduced"}[opts.Exhaustive])
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		sr, err := env.runScenario(ctx, n)
		if err != nil {
			return rep, fmt.Errorf("torture: %s: %w", n, err)
		}
		rep.Scenarios = append(rep.Scenarios, sr)
		rep.Passed += sr.Passed
		rep.Failed += sr.Failed
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

func knownScenario(n string) bool {
	for _, s := range ScenarioNames {
		if s == n {
			return true
		}
	}
	return false
}

// tortureNow is the fixed clock of a torture run (contexts, packages,
// UPKs, the device's time floor), so that runs are reproducible.
func tortureNow() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }

// tortureEnv is what the scenarios of one Torture call share.
type tortureEnv struct {
	opts  *TortureOptions
	ctx   *trust.Context
	board *vmcu.Board
	prov  *provisioned
	logf  func(string, ...any)
}

// runScenario prepares scenario name, records its operations and runs
// every chosen cut point.
func (e *tortureEnv) runScenario(ctx context.Context, name string) (*ScenarioReport, error) {
	t0 := time.Now()
	sr := &ScenarioReport{Name: name}
	sc, skip, err := e.prepare(name)
	if err != nil {
		return nil, err
	}
	if skip != "" {
		sr.Skipped = skip
		e.logf("%s: skipped: %s", name, skip)
		return sr, nil
	}
	// The uninterrupted run: count the operations and check it works.
	r := e.rig(sc.base.Clone())
	rec := r.d.Record()
	if err := sc.run(r); err != nil {
		return nil, fmt.Errorf("uninterrupted run: %w", err)
	}
	ops := rec.Ops()
	r.d.StopRecording()
	if err := sc.check(r, len(sc.apps)-1, true); err != nil {
		return nil, fmt.Errorf("uninterrupted run: %w", err)
	}
	var eligible []int // 1-based op numbers that may be cut
	for i, op := range ops {
		if sc.filter == nil || sc.filter(op) {
			eligible = append(eligible, i+1)
		}
	}
	sr.Ops = len(eligible)
	points := e.choose(name, ops, eligible, sc)
	cuts := map[int]bool{}
	for _, p := range points {
		cuts[p.at] = true
	}
	sr.CutPoints = len(cuts)
	e.logf("%s: %d flash operations (%d eligible), %d cut points, %d runs", name, len(ops), len(eligible), len(cuts), len(points))
	for k, p := range points {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		f, extra, resumed := e.runCut(sc, name, len(ops), p)
		sr.Runs++
		sr.ExtraCuts += extra
		if resumed {
			sr.Resumed++
		}
		if f != nil {
			sr.Failed++
			sr.Failures = append(sr.Failures, f)
			e.logf("FAIL %s\n     reproduce: %s", f.Error(), f.Repro())
		} else {
			sr.Passed++
		}
		if (k+1)%50 == 0 {
			e.logf("%s: %d/%d runs, %d failed", name, k+1, len(points), sr.Failed)
		}
	}
	sr.Duration = time.Since(t0)
	e.logf("%s: %d runs: %d passed, %d failed (%d resumed an install, %d further cuts) in %.1f s",
		name, sr.Runs, sr.Passed, sr.Failed, sr.Resumed, sr.ExtraCuts, sr.Duration.Seconds())
	return sr, nil
}

// rig returns a rig on d with the options' flash wrapper.
func (e *tortureEnv) rig(d *vmcu.Device) *rig { return &rig{d: d, wrap: e.opts.wrapFlash} }

// seedFor derives a deterministic seed from the torture seed and parts.
func seedFor(seed uint64, parts ...any) uint64 {
	h := uint64(14695981039346656037) ^ seed
	for _, b := range []byte(fmt.Sprint(parts...)) {
		h ^= uint64(b)
		h *= 1099511628211
	}
	return h
}

// choose returns the cut runs: every eligible operation when exhaustive;
// else every k-th one plus every operation near a secure-storage
// operation (the commit windows) and the first and last ones, chosen
// with an offset drawn from the seed.
func (e *tortureEnv) choose(name string, ops []vmcu.Op, eligible []int, sc *scenario) []cutPoint {
	o := e.opts
	tornSeeds := func(at int, n int) []cutPoint {
		var out []cutPoint
		for j := range n {
			out = append(out, cutPoint{at: at, torn: true, tornSeed: seedFor(o.Seed, name, "torn", at, j) % 1000000})
		}
		return out
	}
	if o.At > 0 {
		return []cutPoint{{at: o.At, torn: o.Torn, tornSeed: o.TornSeed}}
	}
	var pick []int
	nTorn := 2
	if o.Exhaustive || sc.all {
		pick = eligible
		if sc.all && !o.Exhaustive {
			nTorn = 1
		}
	} else {
		nTorn = 1
		set := map[int]bool{}
		const budget = 32
		k := max(1, len(eligible)/budget)
		off := int(seedFor(o.Seed, name, "offset") % uint64(k))
		for j, at := range eligible {
			if j%k == off || j < 2 || j >= len(eligible)-2 {
				set[at] = true
			}
		}
		for _, at := range eligible {
			op := ops[at-1]
			if op.Kind == vmcu.OpFuseProgram {
				set[at] = true // the anti-rollback fuse write after a commit
			}
			if inSecure(e.board, op) {
				for d := -1; d <= 1; d++ {
					if at+d >= 1 && at+d <= len(ops) {
						set[at+d] = true
					}
				}
			}
		}
		for at := range set {
			pick = append(pick, at)
		}
		sort.Ints(pick)
	}
	var out []cutPoint
	for _, at := range pick {
		out = append(out, cutPoint{at: at})
		out = append(out, tornSeeds(at, nTorn)...)
	}
	return out
}

// inSecure reports whether op changes the secure-storage region.
func inSecure(b *vmcu.Board, op vmcu.Op) bool {
	if op.Kind == vmcu.OpFuseProgram {
		return false
	}
	r, ok := b.Geometry.Region(hal.RegionSecure)
	return ok && r.Overlaps(op.Addr, max(op.Len, 1))
}

// runCut runs one cut point on a fresh clone and checks the outcome.
// It returns the failure (nil if the run passed), the number of further
// cuts that fired and whether the first cut left an install pending.
func (e *tortureEnv) runCut(sc *scenario, name string, nops int, p cutPoint) (f *TortureFailure, extraFired int, resumed bool) {
	f = &TortureFailure{Scenario: name, At: p.at, Torn: p.torn, TornSeed: p.tornSeed}
	fail := func(format string, a ...any) (*TortureFailure, int, bool) {
		f.Reason = fmt.Sprintf(format, a...)
		return f, extraFired, resumed
	}
	r := e.rig(sc.base.Clone())
	if err := r.d.ArmPowerCut(vmcu.PowerCut{At: uint64(p.at), Torn: p.torn, Seed: p.tornSeed}); err != nil {
		return fail("arming the cut: %v", err)
	}
	err := sc.run(r)
	r.d.DisarmPowerCut()
	switch {
	case errors.Is(err, errPowerLost):
	case err == nil:
		return fail("the cut did not fire (the flow has fewer operations than recorded)")
	default:
		return fail("interrupted run: %v", err)
	}
	// The highest application index the device has committed to: an
	// install pending for the next one, or one installed.
	auth := 0
	observe := func() error {
		st, err := r.state()
		if err != nil {
			return err
		}
		k := sc.index(st)
		if k < 0 {
			return fmt.Errorf("the signature table names an unknown application %+v", st.App)
		}
		if st.InstallPending || st.UpdateRequested {
			k++ // authenticated, or requested: the next version must win
		}
		auth = max(auth, k)
		return nil
	}
	if err := observe(); err != nil {
		return fail("%v", err)
	}
	if st, _ := r.state(); st != nil && st.InstallPending {
		resumed = true
	}
	// Further cuts while the device recovers (resume, retry).
	rng := rand.New(rand.NewPCG(seedFor(e.opts.Seed, name, p.at, p.torn, p.tornSeed), 1))
	extra := 0
	if e.opts.MaxCuts > 0 {
		extra = rng.IntN(e.opts.MaxCuts + 1)
	}
	for range extra {
		c := vmcu.PowerCut{At: uint64(1 + rng.IntN(max(nops, 1))), Torn: rng.IntN(2) == 0, Seed: rng.Uint64() % 1000000}
		f.Extra = append(f.Extra, c)
		r.d.ArmPowerCut(c)
		err := sc.run(r)
		r.d.DisarmPowerCut()
		if err == nil {
			break // recovered before the cut
		}
		if !errors.Is(err, errPowerLost) {
			return fail("recovery with further cuts %v: %v", f.Extra, err)
		}
		extraFired++
		if err := observe(); err != nil {
			return fail("%v", err)
		}
	}
	// An uninterrupted boot: the complete old or new application.
	if err := r.bootToApp(false, false); err != nil {
		return fail("final boot: %v", err)
	}
	if err := sc.check(r, auth, false); err != nil {
		return fail("after the cuts %v: %v", f.Extra, err)
	}
	// The flow can be completed (programming re-run, update retried), and
	// then the newest application runs.
	if err := sc.run(r); err != nil {
		return fail("completing the flow after the cuts: %v", err)
	}
	if err := r.bootToApp(false, false); err != nil {
		return fail("boot after completing: %v", err)
	}
	if err := sc.check(r, len(sc.apps)-1, true); err != nil {
		return fail("after completing the flow: %v", err)
	}
	return nil, extraFired, resumed
}
