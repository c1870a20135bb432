package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// schemaField is one field of the JSON the commands print with --json:
// its path (keys joined by ".", "[]" for the elements of an array), its
// JSON type ("string", "integer", "number", "boolean", "object", "array",
// optionally "|null"), the commands that print it, and whether a test run
// may miss it (it sits inside a value that is rarely present).
//
// It is the machine-readable copy of the table in docs/cli.md, which
// TestJSONSchemaDoc keeps in sync; TestJSONSchema checks the output of
// every command against it.
type schemaField struct {
	path, typ string
	commands  []string
	rare      bool
}

// Command names of the schema.
const (
	cContext  = "context show"
	cInspect  = "image inspect"
	cInfo     = "device info"
	cBoards   = "device boards"
	cTorture  = "device torture"
	cVerify   = "attest verify"
	cRequest  = "attest request"
	cProgram  = "program"
	cVersion  = "version"
	cAllBoard = "device info, device boards"
	cOrder    = "production order"
	cLoad     = "production load"
	cStatus   = "production status"
	cAudit    = "production audit"
	cPublish  = "release publish"
	cReleases = "release list"
	cOrders   = "production order, production load, production status"
	cCounted  = "production load, production status"
	cRelease  = "production order, release publish, release list"
	cRollout  = "rollout start, rollout set, rollout pause, rollout resume, rollout abort, rollout status, rollout list"
	cRollouts = "rollout list"
	cFleet    = "fleet list"
	cSimulate = "fleet simulate"
)

func cmds(s string) []string { return strings.Split(s, ", ") }

// jsonSchema lists every field. Elements of "boards[]" (device boards) are
// checked as a board object (the fields of "device boards NAME"), elements
// of "upks[]" (image inspect) as "upk" objects, elements of "orders[]"
// (production status) as an order's status (the fields of production
// load), elements of "releases[]" (release list) as "release" objects,
// elements of "rollouts[]" (rollout list) as a rollout (the fields of
// rollout status).
var jsonSchema = []schemaField{
	// Devices and boards.
	{"device_id", "string", cmds("device info, attest verify, attest request, program, provision, device new"), false},
	{"board", "string|null", cmds("device info, device boards, device torture, attest verify, provision, device new"), false},
	{"board_description", "string", cmds(cAllBoard), false},
	{"flash", "object", cmds(cAllBoard), false},
	{"flash.size", "integer", cmds(cAllBoard), false},
	{"flash.sectors", "integer", cmds(cAllBoard), false},
	{"flash.write_size", "integer", cmds(cAllBoard), false},
	{"flash.erased", "integer", cmds(cAllBoard), false},
	{"flash.location", "string", cmds(cAllBoard), false},
	{"flash.endurance", "integer", cmds(cAllBoard), false},
	{"ram_size", "integer", cmds(cAllBoard), false},
	{"regions", "array", cmds(cAllBoard), false},
	{"regions[]", "object", cmds(cAllBoard), false},
	{"regions[].name", "string", cmds(cAllBoard), false},
	{"regions[].start", "integer", cmds(cAllBoard), false},
	{"regions[].size", "integer", cmds(cAllBoard), false},
	{"sector_runs", "array", cmds(cBoards), false},
	{"sector_runs[]", "object", cmds(cBoards), false},
	{"sector_runs[].count", "integer", cmds(cBoards), false},
	{"sector_runs[].size", "integer", cmds(cBoards), false},
	{"boards", "array", cmds(cBoards), false},
	{"boards[]", "object", cmds(cBoards), false},
	{"locks", "object", cmds(cInfo), false},
	{"locks.debug", "boolean", cmds(cInfo), false},
	{"locks.sbm_write_protect", "boolean", cmds(cInfo), false},
	{"locks.secure_hidden", "boolean", cmds(cInfo), false},
	{"locks.word", "integer", cmds(cInfo), false},
	{"root_key_hash", "string|null", cmds(cInfo), false},
	{"counters", "array", cmds(cInfo), false},
	{"counters[]", "integer", cmds(cInfo), false},
	{"wear", "object", cmds(cInfo), false},
	{"wear.total_erases", "integer", cmds(cInfo), false},
	{"wear.max_erases", "integer", cmds(cInfo), false},
	{"wear.max_sector", "integer", cmds(cInfo), false},
	{"wear.worn_out", "array", cmds(cInfo), false},
	{"wear.worn_out[]", "integer", cmds(cInfo), true},
	{"bad_sectors", "array", cmds(cInfo), false},
	{"bad_sectors[]", "integer", cmds(cInfo), false},
	{"power_cut", "object|null", cmds(cInfo), false},
	{"power_cut.at", "integer", cmds(cInfo), false},
	{"power_cut.torn", "boolean", cmds(cInfo), false},
	{"power_cut.seed", "integer|null", cmds(cInfo), false},
	{"running", "boolean", cmds(cInfo), false},

	// The SBM's state, and the SBM itself.
	{"lifecycle", "string", cmds("device info, attest verify, provision"), false},
	{"sbm", "object", cmds("device info, attest verify, version, provision"), false},
	{"sbm.measurement", "string|null", cmds("device info, attest verify, provision"), false},
	{"sbm.version", "string|null", cmds("device info, attest verify, version"), false},
	{"certificate", "string|null", cmds("device info, provision"), false},
	{"security_counter", "integer", cmds(cInfo), false},
	{"install_pending", "boolean", cmds(cInfo), false},
	{"update_requested", "boolean", cmds(cInfo), false},
	{"last_update", "object|null", cmds(cInfo), false},
	{"last_update.code", "integer", cmds(cInfo), true},
	{"last_update.reason", "string", cmds(cInfo), true},
	{"last_update.detail", "string|null", cmds(cInfo), true},
	{"last_error", "object|null", cmds(cInfo), false},
	{"last_error.code", "integer", cmds(cInfo), false},
	{"last_error.reason", "string", cmds(cInfo), false},
	{"last_error.detail", "string|null", cmds(cInfo), false},

	// The application: installed, in a package, attested, or swept.
	{"application", "object|null", cmds("device info, image inspect, attest verify, device torture, image create"), false},
	{"application.version", "string", cmds("device info, image inspect, attest verify, image create"), false},
	{"application.security_counter", "integer|null", cmds("device info, image inspect, attest verify, image create"), false},
	{"application.size", "integer", cmds("device info, image inspect, device torture, image create"), false},
	{"application.measurement", "string", cmds("device info, image inspect, attest verify, image create"), false},
	{"application.manifest_digest", "string", cmds("device info, image inspect, image create"), false},
	{"application.signer", "string|null", cmds("device info, image inspect, attest verify"), false},
	{"application.format", "string|null", cmds("image inspect, image create"), false},
	{"application.load_address", "integer|null", cmds("image inspect, image create"), false},
	{"application.release", "object|null", cmds(cVerify), false},
	{"application.release.version", "string", cmds(cVerify), false},
	{"application.release.manifest_digest", "string", cmds(cVerify), false},

	// Packages and UPKs.
	{"kind", "string", cmds(cInspect), false},
	{"vendor_id", "string", cmds("image inspect, context show, production order, production load, production status"), false},
	{"class_id", "string", cmds("image inspect, context show, production order, production load, production status"), false},
	{"slot", "string", cmds(cInspect), false},
	{"created", "string", cmds("image inspect, context show, " + cRollout), false},
	{"encryption", "object", cmds(cInspect), false},
	{"encryption.algorithm", "string", cmds(cInspect), false},
	{"encryption.chunk_size", "integer", cmds(cInspect), false},
	{"encryption.chunks", "integer", cmds(cInspect), false},
	{"manifest_size", "integer", cmds(cInspect), false},
	{"package_size", "integer", cmds("image inspect, image create"), false},
	{"upks", "array", cmds(cInspect), false},
	{"upks[]", "object", cmds(cInspect), false},
	{"upk", "object", cmds("image inspect, upk issue"), false},
	{"upk.upk_id", "string", cmds("image inspect, upk issue"), false},
	{"upk.recipient", "string", cmds("image inspect, upk issue"), false},
	{"upk.device_id", "string|null", cmds("image inspect, upk issue"), false},
	{"upk.recipient_key_id", "string", cmds("image inspect, upk issue"), false},
	{"upk.not_before", "string", cmds("image inspect, upk issue"), false},
	{"upk.not_after", "string", cmds("image inspect, upk issue"), false},
	{"upk.signer", "string", cmds("image inspect, upk issue"), false},
	{"upk.bound_to_manifest", "boolean|null", cmds("image inspect, upk issue"), false},

	// The security context.
	{"dir", "string", cmds("context show, device new"), false},
	{"suite", "string", cmds(cContext), false},
	{"organization", "string", cmds(cContext), false},
	{"encrypted", "boolean", cmds(cContext), false},
	{"keystore", "string", cmds(cContext), false},
	{"token", "string|null", cmds(cContext), false},
	{"root_key_id", "string", cmds(cContext), false},
	{"image_signing_key_id", "string", cmds(cContext), false},
	{"update_authority_key_id", "string", cmds(cContext), false},
	{"class_key_id", "string", cmds(cContext), false},
	{"escrow_key_id", "string", cmds(cContext), false},
	{"root_certificate", "string", cmds(cContext), false},
	{"device_ca_certificate", "string", cmds(cContext), false},
	{"ca_chain", "string", cmds(cContext), false},

	// Attestation.
	{"nonce", "string", cmds("attest verify, attest request"), false},
	{"boot_seed", "string|null", cmds(cVerify), false},
	{"out", "string", cmds("attest request, image create, upk issue, production order"), false},
	{"bytes", "integer", cmds("attest request, program"), false},

	// Programming.
	{"version", "string", cmds(cProgram), false},
	{"previous_version", "string", cmds(cProgram), false},
	{"sent_bytes", "integer", cmds(cProgram), false},
	{"resumed_at", "integer", cmds(cProgram), false},
	{"seconds", "number", cmds("program, device torture, fleet simulate"), false},
	{"bytes_per_second", "number", cmds(cProgram), false},
	{"frames", "integer", cmds(cProgram), false},
	{"resent", "integer", cmds(cProgram), false},
	{"retries", "integer", cmds(cProgram), false},
	{"reset_to_recovery", "boolean", cmds(cProgram), false},
	{"reset", "boolean", cmds(cProgram), false},

	// Power-cut sweeps.
	{"seed", "integer", cmds(cTorture), false},
	{"sweep", "string", cmds(cTorture), false},
	{"passed", "integer", cmds(cTorture), false},
	{"failed", "integer", cmds("device torture, fleet simulate, " + cRollout), false},
	{"scenarios", "array", cmds(cTorture), false},
	{"scenarios[]", "object", cmds(cTorture), false},
	{"scenarios[].scenario", "string", cmds(cTorture), false},
	{"scenarios[].skipped", "string|null", cmds(cTorture), false},
	{"scenarios[].ops", "integer", cmds(cTorture), false},
	{"scenarios[].cut_points", "integer", cmds(cTorture), false},
	{"scenarios[].runs", "integer", cmds(cTorture), false},
	{"scenarios[].passed", "integer", cmds(cTorture), false},
	{"scenarios[].failed", "integer", cmds(cTorture), false},
	{"scenarios[].resumed", "integer", cmds(cTorture), false},
	{"scenarios[].extra_cuts", "integer", cmds(cTorture), false},
	{"scenarios[].seconds", "number", cmds(cTorture), false},
	{"scenarios[].failures", "array", cmds(cTorture), false},
	{"scenarios[].failures[]", "object", cmds(cTorture), true},
	{"scenarios[].failures[].scenario", "string", cmds(cTorture), true},
	{"scenarios[].failures[].at", "integer", cmds(cTorture), true},
	{"scenarios[].failures[].torn", "boolean", cmds(cTorture), true},
	{"scenarios[].failures[].torn_seed", "integer|null", cmds(cTorture), true},
	{"scenarios[].failures[].reason", "string", cmds(cTorture), true},
	{"scenarios[].failures[].rerun", "string", cmds(cTorture), true},

	// Production orders on the OEM service (docs/production.md).
	{"id", "string", cmds(cOrders), false},
	{"state", "string", cmds("production load, production status, " + cRollout), false},
	{"count", "integer", cmds(cOrders), false},
	{"used", "integer", cmds(cCounted), false},
	{"spoiled", "integer", cmds(cCounted), false},
	{"remaining", "integer", cmds(cCounted), false},
	{"not_before", "string", cmds(cOrder), false},
	{"not_after", "string", cmds(cOrders), false},
	{"loaded", "string", cmds(cCounted), false},
	{"stations", "array", cmds(cOrder), false},
	{"stations[]", "string", cmds(cOrder), false},
	{"lines", "array", cmds(cOrders), false},
	{"lines[]", "object", cmds(cOrders), false},
	{"lines[].name", "string", cmds(cOrders), false},
	{"lines[].count", "integer", cmds(cOrders), false},
	{"lines[].used", "integer", cmds(cCounted), false},
	{"lines[].spoiled", "integer", cmds(cCounted), false},
	{"lines[].remaining", "integer", cmds(cCounted), false},
	{"orders", "array|null", cmds("production status, production audit"), false},
	{"orders[]", "object", cmds("production status, production audit"), false},

	// Releases on the OEM service.
	{"release", "object|null", cmds("production order, release publish, " + cRollout), false},
	{"release.version", "string", cmds(cRelease + ", " + cRollout), false},
	{"release.security_counter", "integer", cmds(cRelease), false},
	{"release.manifest_digest", "string", cmds(cRelease + ", " + cRollout), false},
	{"release.published", "string", cmds("release publish, release list"), false},
	{"releases", "array", cmds(cReleases), false},
	{"releases[]", "object", cmds(cReleases), false},

	// Rollouts of a release to the fleet, and the fleet.
	{"rollout_id", "string", cmds(cRollout), false},
	{"cohort", "string|null", cmds(cRollout), false},
	{"percent", "number", cmds(cRollout), false},
	{"max_failures", "string|null", cmds(cRollout), false},
	{"targeted", "integer", cmds(cRollout), false},
	{"downloaded", "integer", cmds(cRollout), false},
	{"updated", "integer", cmds(cRollout + ", fleet simulate"), false},
	{"rollouts", "array", cmds(cRollouts), false},
	{"rollouts[]", "object", cmds(cRollouts), false},
	{"fleet", "array", cmds(cFleet), false},
	{"fleet[]", "object", cmds(cFleet), false},
	{"fleet[].device_id", "string", cmds(cFleet), false},
	{"fleet[].application", "object|null", cmds(cFleet), false},
	{"fleet[].application.version", "string", cmds(cFleet), false},
	{"fleet[].application.manifest_digest", "string", cmds(cFleet), false},
	{"fleet[].last_seen", "string|null", cmds(cFleet), false},
	{"fleet[].last_report", "string|null", cmds(cFleet), false},
	{"fleet[].result", "integer|null", cmds(cFleet), false},
	{"fleet[].detail", "string|null", cmds(cFleet), false},
	{"fleet[].revoked", "boolean", cmds(cFleet), false},
	{"requests", "integer", cmds(cSimulate), false},
	{"requests_per_second", "number", cmds(cSimulate), false},
	{"polls", "integer", cmds(cSimulate), false},
	{"steady_requests", "integer", cmds(cSimulate), false},
	{"p50_seconds", "number", cmds(cSimulate), false},
	{"p99_seconds", "number", cmds(cSimulate), false},
	{"first_request_p99_seconds", "number", cmds(cSimulate), false},
	{"errors", "integer", cmds(cSimulate), false},
	{"first_error", "string|null", cmds(cSimulate), false},

	// The production audit.
	{"ok", "boolean", cmds(cAudit), false},
	{"origin", "string|null", cmds(cAudit), false},
	{"entries", "integer|null", cmds(cAudit), false},
	{"checkpoints", "integer|null", cmds(cAudit), false},
	{"devices", "integer|null", cmds("production audit, fleet simulate"), false},
	{"orders[].id", "string", cmds(cAudit), false},
	{"orders[].state", "string", cmds(cAudit), false},
	{"orders[].count", "integer", cmds(cAudit), false},
	{"orders[].certified", "integer", cmds(cAudit), false},
	{"orders[].spoiled", "integer", cmds(cAudit), false},
	{"orders[].remaining", "integer", cmds(cAudit), false},
	{"orders[].upks", "integer", cmds(cAudit), false},
	{"orders[].devices_revoked", "integer", cmds(cAudit), false},
	{"synced", "integer|null", cmds(cAudit), false},
	{"latest_checkpoint", "string|null", cmds(cAudit), false},
	{"error", "object|null", cmds(cAudit), false},
	{"error.kind", "string|null", cmds(cAudit), false},
	{"error.index", "integer|null", cmds(cAudit), false},
	{"error.message", "string", cmds(cAudit), false},

	// The tool.
	{"module", "string", cmds(cVersion), false},
	{"module_version", "string", cmds(cVersion), false},
	{"go_version", "string", cmds(cVersion), false},
	{"vcs_revision", "string|null", cmds(cVersion), false},
	{"vcs_time", "string|null", cmds(cVersion), false},
	{"vcs_modified", "boolean|null", cmds(cVersion), false},
}

// schemaAliases maps the path prefix of array elements that have the shape
// of another object to that object's prefix, per command.
var schemaAliases = map[string][][2]string{
	cBoards:   {{"boards[].", ""}},
	cInspect:  {{"upks[].", "upk."}},
	cStatus:   {{"orders[].", ""}},
	cReleases: {{"releases[].", "release."}},
	cRollouts: {{"rollouts[].", ""}},
}

// lookupField returns the schema field of path for command, if any.
func lookupField(command, path string) (schemaField, bool) {
	for _, a := range schemaAliases[command] {
		if rest, ok := strings.CutPrefix(path, a[0]); ok {
			path = a[1] + rest
		}
	}
	for _, f := range jsonSchema {
		if f.path == path && slices.Contains(f.commands, command) {
			return f, true
		}
	}
	return schemaField{}, false
}

// jsonType names the JSON type of a value decoded with UseNumber.
func jsonType(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number:
		if strings.ContainsAny(v.String(), ".eE") {
			return "number"
		}
		return "integer"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// typeAllows reports whether schema type typ ("integer|null") admits a
// value of JSON type got. A "number" admits integers.
func typeAllows(typ, got string) bool {
	for _, t := range strings.Split(typ, "|") {
		if t == got || t == "number" && got == "integer" {
			return true
		}
	}
	return false
}

// checkJSON checks the JSON text out, printed by command, against the
// schema. It returns the problems found and adds every schema path seen
// to seen.
func checkJSON(command string, out []byte, seen map[string]bool) []string {
	dec := json.NewDecoder(strings.NewReader(string(out)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return []string{fmt.Sprintf("%s: output is not JSON: %v", command, err)}
	}
	if dec.More() {
		return []string{fmt.Sprintf("%s: more than one JSON value", command)}
	}
	var problems []string
	var walk func(path string, v any)
	walk = func(path string, v any) {
		if path != "" {
			f, ok := lookupField(command, path)
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("%s: field %q is not in the schema (docs/cli.md)", command, path))
				return
			case !typeAllows(f.typ, jsonType(v)):
				problems = append(problems, fmt.Sprintf("%s: field %q is %s, the schema says %s", command, path, jsonType(v), f.typ))
			}
			seen[command+" "+f.path] = true
		}
		prefix := path
		if prefix != "" {
			prefix += "."
		}
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				walk(prefix+k, x)
			}
		case []any:
			for _, x := range v {
				walk(path+"[]", x)
			}
		}
	}
	walk("", v)
	return problems
}

// schemaCoverage collects the schema paths the scripts printed.
type schemaCoverage struct {
	mu   sync.Mutex
	seen map[string]bool
}

const coverageKey = "jsonschema coverage"

// TestJSONSchema runs every command that has --json (the scripts in
// testdata/jsonschema, with the setup of TestScripts) and checks each
// output against jsonSchema: every field must be in the schema for that
// command with its type, and every field the schema lists for a command
// must have been printed by it.
func TestJSONSchema(t *testing.T) {
	fixtures, err := filepath.Abs("../../internal/firmware/testdata")
	if err != nil {
		t.Fatal(err)
	}
	cov := &schemaCoverage{seen: map[string]bool{}}
	t.Run("scripts", func(t *testing.T) {
		testscript.Run(t, testscript.Params{
			Dir:                 "testdata/jsonschema",
			RequireExplicitExec: true,
			Setup: func(env *testscript.Env) error {
				env.Setenv("FIXTURES", fixtures)
				env.Values[coverageKey] = cov
				return nil
			},
			Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
				"expectexit": cmdExpectExit,
				"freeport":   cmdFreePort,
				"deviceid":   cmdDeviceID,
				"checkjson":  cmdCheckJSON,
				"flipbyte":   cmdFlipByte,
			},
		})
	})
	if t.Failed() {
		return
	}
	for _, f := range jsonSchema {
		for _, c := range f.commands {
			if !f.rare && !cov.seen[c+" "+f.path] {
				t.Errorf("%s --json never printed %q, which the schema lists for it", c, f.path)
			}
		}
	}
}

// cmdCheckJSON checks the standard output of the last command against the
// schema: "checkjson COMMAND", e.g. "checkjson device info".
func cmdCheckJSON(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: checkjson COMMAND...")
	}
	command := strings.Join(args, " ")
	cov := ts.Value(coverageKey).(*schemaCoverage)
	seen := map[string]bool{}
	for _, p := range checkJSON(command, []byte(ts.ReadFile("stdout")), seen) {
		ts.Logf("%s", p)
		defer ts.Fatalf("output of %s does not match the schema", command)
	}
	cov.mu.Lock()
	defer cov.mu.Unlock()
	for k := range seen {
		cov.seen[k] = true
	}
}

// TestCheckJSON tests the schema checker itself.
func TestCheckJSON(t *testing.T) {
	tests := []struct {
		command, out string
		problems     int
	}{
		{cVersion, `{"module": "m", "module_version": "v", "go_version": "go", "vcs_revision": null, "vcs_time": null, "vcs_modified": true, "sbm": {"version": "1"}}`, 0},
		{cVersion, `{"module": 3}`, 1},
		{cVersion, `{"id": "x"}`, 1},
		{cInfo, `{"device_id": "x", "application": null}`, 0},
		{cInfo, `{"application": {"version": "1", "size": 1.5}}`, 1},
		{cInspect, `{"upks": [{"upk_id": "x", "bound_to_manifest": true}]}`, 0},
		{cBoards, `{"boards": [{"board": "b", "flash": {"size": 1}}]}`, 0},
		{cBoards, `{"boards": [{"id": "b"}]}`, 1},
		{cStatus, `{"orders": [{"id": "x", "lines": [{"name": "a", "used": 1}]}]}`, 0},
		{cStatus, `{"orders": [{"quota": 1}]}`, 1},
		{cAudit, `{"orders": [{"id": "x", "count": 1, "certified": 1}]}`, 0},
		{cAudit, `{"orders": [{"used": 1}]}`, 1},
		{cReleases, `{"releases": [{"version": "1.0.0", "published": "t"}]}`, 0},
		{cRollouts, `{"rollouts": [{"rollout_id": "x", "release": {"version": "1.0.0"}, "percent": 10}]}`, 0},
		{cRollouts, `{"rollouts": [{"id": "x"}]}`, 1},
		{cFleet, `{"fleet": [{"device_id": "x", "application": null, "result": 0}]}`, 0},
		{cVersion, `not json`, 1},
	}
	for _, tt := range tests {
		if got := checkJSON(tt.command, []byte(tt.out), map[string]bool{}); len(got) != tt.problems {
			t.Errorf("checkJSON(%q, %s) = %q, want %d problem(s)", tt.command, tt.out, got, tt.problems)
		}
	}
}

// TestJSONSchemaDoc checks that the field table of docs/cli.md lists
// exactly jsonSchema: the same paths, types ("string or null" for
// "string|null") and commands.
func TestJSONSchemaDoc(t *testing.T) {
	f, err := os.Open("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	key := func(path, typ string, commands []string) string {
		c := slices.Clone(commands)
		sort.Strings(c)
		return path + " | " + typ + " | " + strings.Join(c, ", ")
	}
	var doc []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) < 4 {
			t.Errorf("docs/cli.md: want | field | type | commands | meaning |, got %q", line)
			continue
		}
		path := strings.Trim(strings.TrimSpace(cells[0]), "`")
		typ := strings.ReplaceAll(strings.TrimSpace(cells[1]), " or ", "|")
		var commands []string
		for _, c := range strings.Split(cells[2], ",") {
			commands = append(commands, strings.TrimSpace(c))
		}
		doc = append(doc, key(path, typ, commands))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	var code []string
	for _, f := range jsonSchema {
		code = append(code, key(f.path, f.typ, f.commands))
	}
	sort.Strings(doc)
	sort.Strings(code)
	for _, d := range doc {
		if _, ok := slices.BinarySearch(code, d); !ok {
			t.Errorf("docs/cli.md lists %q, which jsonSchema does not", d)
		}
	}
	for _, c := range code {
		if _, ok := slices.BinarySearch(doc, c); !ok {
			t.Errorf("jsonSchema has %q, which docs/cli.md does not list", c)
		}
	}
}
