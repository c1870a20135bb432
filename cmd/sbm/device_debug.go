package main

import (
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/vmcu"
)

func newDeviceDebugCmd(cio *cliIO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "debug",
		Short: "Use a device's debug port (like an SWD/JTAG probe)",
		Long: `Send requests to the debug port of the device in DIR: through its socket if
the device is running, or by opening the directory if it is not ("offline",
where reset, halt and resume are unavailable). Flash is at address 0; RAM is
at 0x20000000. Once the debug-lock fuse is blown every request is refused
with "debug port locked".`,
	}
	type sub struct {
		use, short string
		nargs      int
		run        func(p *vmcu.DebugPort, cmd *cobra.Command, args []string) error
	}
	subs := []sub{
		{"id DIR", "Read the device ID", 1, func(p *vmcu.DebugPort, cmd *cobra.Command, args []string) error {
			id, err := p.ID(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintln(cio.stdout, hex.EncodeToString(id[:]))
			return nil
		}},
		{"read DIR ADDR LEN", "Read memory; print it in hex", 3, func(p *vmcu.DebugPort, cmd *cobra.Command, args []string) error {
			a, err := parseUint32("address", args[1])
			if err != nil {
				return err
			}
			n, err := parseUint32("length", args[2])
			if err != nil {
				return err
			}
			if n == 0 || n > 16<<20 {
				return usagef("length %d: want 1 to %d", n, 16<<20)
			}
			b, err := p.Read(cmd.Context(), a, int(n))
			if err != nil {
				return err
			}
			fmt.Fprintln(cio.stdout, hex.EncodeToString(b))
			return nil
		}},
		{"program DIR ADDR HEX|@FILE", "Program erased flash with hex bytes or a file's contents", 3, func(p *vmcu.DebugPort, cmd *cobra.Command, args []string) error {
			a, err := parseUint32("address", args[1])
			if err != nil {
				return err
			}
			var data []byte
			if f, ok := strings.CutPrefix(args[2], "@"); ok {
				if data, err = os.ReadFile(f); err != nil {
					return err
				}
			} else if data, err = hex.DecodeString(args[2]); err != nil {
				return usagef("data %q: want hex bytes or @FILE", args[2])
			}
			if len(data) == 0 {
				return usagef("no data to program")
			}
			if err := p.Program(cmd.Context(), a, data); err != nil {
				return err
			}
			fmt.Fprintf(cio.stdout, "programmed %d bytes at 0x%08X\n", len(data), a)
			return nil
		}},
		{"write DIR ADDR HEX", "Write hex bytes to RAM (at 0x20000000)", 3, func(p *vmcu.DebugPort, cmd *cobra.Command, args []string) error {
			a, err := parseUint32("address", args[1])
			if err != nil {
				return err
			}
			data, err := hex.DecodeString(args[2])
			if err != nil || len(data) == 0 {
				return usagef("data %q: want hex bytes", args[2])
			}
			if err := p.Write(cmd.Context(), a, data); err != nil {
				return err
			}
			fmt.Fprintf(cio.stdout, "wrote %d bytes at 0x%08X\n", len(data), a)
			return nil
		}},
		{"erase DIR ADDR", "Erase the flash sector starting at ADDR", 2, func(p *vmcu.DebugPort, cmd *cobra.Command, args []string) error {
			a, err := parseUint32("address", args[1])
			if err != nil {
				return err
			}
			if err := p.Erase(cmd.Context(), a); err != nil {
				return err
			}
			fmt.Fprintf(cio.stdout, "erased sector 0x%08X\n", a)
			return nil
		}},
		{"fuse-read DIR WORD", "Read a fuse word", 2, func(p *vmcu.DebugPort, cmd *cobra.Command, args []string) error {
			w, err := parseUint32("word", args[1])
			if err != nil {
				return err
			}
			v, err := p.ReadFuse(cmd.Context(), int(w))
			if err != nil {
				return err
			}
			fmt.Fprintf(cio.stdout, "0x%08X\n", v)
			return nil
		}},
		{"fuse-program DIR WORD VALUE", "Blow the bits set in VALUE in a fuse word (irreversible)", 3, func(p *vmcu.DebugPort, cmd *cobra.Command, args []string) error {
			w, err := parseUint32("word", args[1])
			if err != nil {
				return err
			}
			v, err := parseUint32("value", args[2])
			if err != nil {
				return err
			}
			if err := p.ProgramFuse(cmd.Context(), int(w), v); err != nil {
				return err
			}
			got, err := p.ReadFuse(cmd.Context(), int(w))
			if err != nil {
				// Blowing the debug lock closes the port at once.
				fmt.Fprintf(cio.stdout, "fuse word %d programmed\n", w)
				return nil
			}
			fmt.Fprintf(cio.stdout, "fuse word %d = 0x%08X\n", w, got)
			return nil
		}},
		{"lock DIR", "Blow lock fuses: --debug, --sbm-write-protect, --secure-hidden (irreversible)", 1, nil},
		{"reset DIR", "Reset the CPU", 1, func(p *vmcu.DebugPort, cmd *cobra.Command, args []string) error {
			if err := p.Reset(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintln(cio.stdout, "reset")
			return nil
		}},
		{"halt DIR", "Halt the CPU", 1, func(p *vmcu.DebugPort, cmd *cobra.Command, args []string) error {
			if err := p.Halt(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintln(cio.stdout, "halted")
			return nil
		}},
		{"resume DIR", "Resume a halted CPU", 1, func(p *vmcu.DebugPort, cmd *cobra.Command, args []string) error {
			if err := p.Resume(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintln(cio.stdout, "resumed")
			return nil
		}},
	}
	var lockDebug, lockWP, lockSecure bool
	for _, s := range subs {
		run := s.run
		c := &cobra.Command{
			Use:   s.use,
			Short: s.short,
			Args:  exactArgs(s.nargs),
		}
		if s.use == "lock DIR" {
			c.Flags().BoolVar(&lockDebug, "debug", false, "close the debug port for good")
			c.Flags().BoolVar(&lockWP, "sbm-write-protect", false, "make the SBM region immutable")
			c.Flags().BoolVar(&lockSecure, "secure-hidden", false, "hide the SBM region and secure storage from the application")
			run = func(p *vmcu.DebugPort, cmd *cobra.Command, args []string) error {
				var bits uint32
				if lockWP {
					bits |= hal.LockSBMWriteProtect
				}
				if lockSecure {
					bits |= hal.LockSecureHidden
				}
				if lockDebug {
					bits |= hal.LockDebug
				}
				if bits == 0 {
					return usagef("lock: choose at least one of --debug, --sbm-write-protect, --secure-hidden")
				}
				if err := hal.BlowLocks(p.Fuses(cmd.Context()), bits); err != nil {
					return err
				}
				fmt.Fprintf(cio.stdout, "lock bits 0x%X blown\n", bits)
				return nil
			}
		}
		c.RunE = func(cmd *cobra.Command, args []string) error {
			p, err := vmcu.ConnectDebug(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer p.Close()
			return run(p, cmd, args)
		}
		cmd.AddCommand(c)
	}
	return cmd
}
