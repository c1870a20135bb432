package vmcu

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestBoardRuns: a board says what it executes (runs, default wasm); the
// canonical form always says it, and only formats the simulator can run
// are accepted.
func TestBoardRuns(t *testing.T) {
	for _, b := range Boards() {
		if !slices.Equal(b.Runs, []string{"wasm"}) || !b.CanRun("wasm") || b.CanRun("elf") {
			t.Errorf("%s: runs %q", b.Name, b.Runs)
		}
	}
	b, err := ParseBoard([]byte(goodBoard))
	if err != nil {
		t.Fatal(err)
	}
	if b.Runs != nil || !slices.Equal(b.RunsFormats(), DefaultRuns) || !b.CanRun("wasm") || b.CanRun("bin") {
		t.Fatalf("board without runs: %q, %q", b.Runs, b.RunsFormats())
	}
	if !strings.Contains(string(b.MarshalTOML()), "\nruns = [\"wasm\"]\n") {
		t.Fatalf("canonical form does not say runs:\n%s", b.MarshalTOML())
	}
	tests := []struct {
		name, runs, want string
	}{
		{"wasm", `runs = ["wasm"]`, ""},
		{"elf", `runs = ["elf"]`, `runs "elf": the virtual boards run only "wasm" (WebAssembly) applications`},
		{"empty", `runs = []`, "runs is empty"},
		{"twice", `runs = ["wasm", "wasm"]`, `runs: "wasm" given twice`},
		{"type", `runs = "wasm"`, "invalid board"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(goodBoard, `ram = "16KiB"`, "ram = \"16KiB\"\n"+tt.runs, 1)
			b, err := ParseBoard([]byte(src))
			if tt.want == "" {
				if err != nil || !b.CanRun("wasm") {
					t.Fatalf("ParseBoard: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrBadBoard) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}
