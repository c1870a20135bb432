package qemu

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Machine runs the SBM firmware in QEMU's mps2-an385 on a chip file:
//
//	qemu-system-arm -M mps2-an385 -display none -monitor none -nodefaults -nic none
//	  -chardev socket,id=sbmuart,fd=3,server=on,wait=off,logfile=DIR/uart0.log,logappend=on
//	  -serial chardev:sbmuart -serial file:DIR/uart1.log
//	  -semihosting-config enable=on,target=native,arg=sbm,arg=chip=CHIP[,arg=recovery-pin][,arg=measure]
//	  -kernel ELF [-icount shift=0]
//
// UART0 is the TCP endpoint tcp:127.0.0.1:PORT (UARTPort) that sbm
// program dials (fd 3 is the listening socket on PORT, made by Start);
// what the board sends on it is also logged to DIR/uart0.log. UART1 is the
// board's console (DIR/uart1.log, UARTLog): the SBM's boot log and the
// application's output. The boot log also goes to the semihosting
// console, collected in Console. The SBM resets the board itself (SCB AIRCR.SYSRESETREQ), which
// QEMU performs in the same process.
type Machine struct {
	// QEMU is the emulator binary; default qemu-system-arm.
	QEMU string
	// ELF is the SBM firmware (sbm-mps2-an385-board.elf).
	ELF string
	// Chip is the chip file (CreateChip).
	Chip string
	// Dir receives uart0.log; default the chip file's directory.
	Dir string
	// Port is UART0's TCP port; 0 picks a free one at the first Start.
	Port int

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	opts    StartOptions
	console bytes.Buffer
	uart1   string // UART1 output of the runs before the current one
}

// StartOptions are the board's inputs at power-on.
type StartOptions struct {
	// RecoveryPin holds the recovery pin (semihosting argument
	// "recovery-pin"): the SBM stays in recovery.
	RecoveryPin bool
	// Measure makes the firmware log its boot-verification measurement.
	Measure bool
	// ICount runs QEMU with -icount shift=0: virtual time counts
	// instructions, one per nanosecond.
	ICount bool
}

// UARTPort returns the UART's endpoint for sbm program: tcp:127.0.0.1:PORT.
func (m *Machine) UARTPort() string { return "tcp:127.0.0.1:" + strconv.Itoa(m.Port) }

// UARTLog returns everything the board has sent on its console, UART1
// (the SBM's boot log and the application's output), of every run of
// this Machine (QEMU's file chardev truncates DIR/uart1.log at each
// start; Start keeps the earlier runs' output).
func (m *Machine) UARTLog() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, _ := os.ReadFile(filepath.Join(m.dir(), "uart1.log"))
	return m.uart1 + string(b)
}

// WireLog returns what the board sent on UART0 (the connection protocol).
func (m *Machine) WireLog() []byte {
	b, _ := os.ReadFile(filepath.Join(m.dir(), "uart0.log"))
	return b
}

// Console returns the semihosting console output (the SBM's boot log) of
// every run so far.
func (m *Machine) Console() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.console.String()
}

func (m *Machine) dir() string {
	if m.Dir != "" {
		return m.Dir
	}
	return filepath.Dir(m.Chip)
}

// lockedWriter appends to the machine's console.
type lockedWriter struct{ m *Machine }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	return w.m.console.Write(p)
}

// PowerOn clears the chip's RAM and starts the board.
func (m *Machine) PowerOn(ctx context.Context, opts *StartOptions) error {
	m.Stop()
	if err := PowerOn(m.Chip); err != nil {
		return err
	}
	return m.Start(ctx, opts)
}

// Start starts QEMU on the chip file as it is (RAM kept: a reset). nil
// opts keeps the options of the previous start.
func (m *Machine) Start(ctx context.Context, opts *StartOptions) error {
	m.Stop()
	m.mu.Lock()
	defer m.mu.Unlock()
	// QEMU's file chardev truncates its file: keep what earlier runs wrote.
	if b, err := os.ReadFile(filepath.Join(m.dir(), "uart1.log")); err == nil {
		m.uart1 += string(b)
	}
	if opts != nil {
		m.opts = *opts
	}
	// The UART's listening socket is made here and handed to QEMU (fd=3),
	// so that it accepts from the first instant and the port stays the
	// same across restarts.
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", m.Port))
	if err != nil {
		return err
	}
	m.Port = l.Addr().(*net.TCPAddr).Port
	lf, err := l.(*net.TCPListener).File()
	l.Close()
	if err != nil {
		return err
	}
	defer lf.Close()
	qemu := m.QEMU
	if qemu == "" {
		qemu = "qemu-system-arm"
	}
	semi := "enable=on,target=native,arg=sbm,arg=chip=" + m.Chip
	if m.opts.RecoveryPin {
		semi += ",arg=recovery-pin"
	}
	if m.opts.Measure {
		semi += ",arg=measure"
	}
	args := []string{"-M", "mps2-an385", "-display", "none", "-monitor", "none", "-nodefaults", "-nic", "none",
		"-chardev", "socket,id=sbmuart,fd=3,server=on,wait=off,logfile=" + filepath.Join(m.dir(), "uart0.log") + ",logappend=on",
		"-serial", "chardev:sbmuart",
		"-serial", "file:" + filepath.Join(m.dir(), "uart1.log"),
		"-semihosting-config", semi,
		"-kernel", m.ELF}
	if m.opts.ICount {
		args = append(args, "-icount", "shift=0")
	}
	cmd := exec.Command(qemu, args...)
	cmd.Dir = m.dir()
	cmd.Stdout = lockedWriter{m}
	cmd.Stderr = lockedWriter{m}
	cmd.ExtraFiles = []*os.File{lf}
	if err := cmd.Start(); err != nil {
		return err
	}
	m.cmd, m.done = cmd, make(chan struct{})
	done := m.done
	go func() { cmd.Wait(); close(done) }()
	return nil
}

// Running reports whether QEMU runs.
func (m *Machine) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return false
	}
	select {
	case <-m.done:
		return false
	default:
		return true
	}
}

// Stop stops QEMU (the board loses power mid-instruction: flash written
// so far stays written).
func (m *Machine) Stop() {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
}

// WaitConsole waits until the console holds want at or after offset from
// and returns the offset just past it.
func (m *Machine) WaitConsole(ctx context.Context, from int, want string) (int, error) {
	for {
		s := m.Console()
		if from <= len(s) {
			if i := strings.Index(s[from:], want); i >= 0 {
				return from + i + len(want), nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("waiting for %q on the console: %w; console:\n%s", want, ctx.Err(), tail(s[min(from, len(s)):], 2000))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// WaitUART waits until the UART log holds want.
func (m *Machine) WaitUART(ctx context.Context, want string) error {
	for {
		if strings.Contains(m.UARTLog(), want) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %q on the UART: %w; UART log:\n%s", want, ctx.Err(), tail(m.UARTLog(), 2000))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
