package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sbm-project/sbm/vmcu"
)

// withDevice runs online against a running device's control socket, or
// offline on the opened device directory.
func withDevice(ctx context.Context, dir string, online func(*vmcu.ControlClient) error, offline func(*vmcu.Device) error) (running bool, err error) {
	c, err := vmcu.DialControl(ctx, dir)
	if err == nil {
		defer c.Close()
		return true, online(c)
	}
	if !isNotRunning(err) {
		return false, err
	}
	d, err := vmcu.Open(dir)
	if err != nil {
		return false, err
	}
	defer d.Close()
	return false, offline(d)
}

func newDevicePowerCutCmd(cio *cliIO) *cobra.Command {
	var (
		at   uint64
		torn bool
		seed uint64
	)
	cmd := &cobra.Command{
		Use:   "power-cut DIR --at N [--torn] [--seed S]",
		Short: "Arm a power cut at the N-th flash or fuse operation",
		Long: `Arm a power cut at the N-th operation (flash program, sector erase or fuse
program) of the device in DIR, counted from now on a running device, or from
power-on of the next run otherwise. Only one cut is armed at a time.

Without --torn power is cut just before the operation. With --torn it is cut
during it: a program leaves an arbitrary subset of its words written,
possibly one half-programmed; an erase leaves the sector with arbitrary
content; a fuse program blows a subset of its bits. --seed selects the torn
outcome reproducibly.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if at == 0 {
				return usagef("--at: want an operation number of 1 or more")
			}
			pc := vmcu.PowerCut{At: at, Torn: torn, Seed: seed}
			running, err := withDevice(cmd.Context(), args[0],
				func(c *vmcu.ControlClient) error { return c.ArmPowerCut(cmd.Context(), pc) },
				func(d *vmcu.Device) error { return d.ArmPowerCut(pc) })
			if err != nil {
				return fmt.Errorf("power cut: %w", err)
			}
			when := "in the next run"
			if running {
				when = "on the running device"
			}
			fmt.Fprintf(cio.stdout, "power cut armed %s %s\n", pc, when)
			return nil
		},
	}
	cmd.Flags().Uint64Var(&at, "at", 0, "cut power at operation `N` (1 is the next one)")
	cmd.Flags().BoolVar(&torn, "torn", false, "cut during the operation instead of before it")
	cmd.Flags().Uint64Var(&seed, "seed", 0, "with --torn: `N` chooses which words or bits the torn operation leaves (same N, same outcome)")
	return cmd
}

func newDeviceFlipCmd(cio *cliIO) *cobra.Command {
	var (
		region string
		bits   int
		seed   uint64
	)
	cmd := &cobra.Command{
		Use:   "flip DIR --region R --bits N [--seed S]",
		Short: "Flip random bits in a flash region (retention errors)",
		Long: `Flip N distinct random bits of region R (sbm, secure, primary, staging,
appdata) of the device in DIR, chosen reproducibly by --seed. The flip
bypasses access control, as a physical fault would.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := parseRegion(region)
			if err != nil {
				return err
			}
			if bits < 1 {
				return usagef("--bits %d: want 1 or more", bits)
			}
			_, err = withDevice(cmd.Context(), args[0],
				func(c *vmcu.ControlClient) error { return c.FlipBits(cmd.Context(), k, bits, seed) },
				func(d *vmcu.Device) error { return d.FlipBits(k, bits, seed) })
			if err != nil {
				return err
			}
			fmt.Fprintf(cio.stdout, "flipped %d bits in %s\n", bits, k)
			return nil
		},
	}
	cmd.Flags().StringVar(&region, "region", "", "flash `REGION`: sbm, secure, primary, staging or appdata")
	registerCompletion(cmd, "region", fixedValues("sbm", "secure", "primary", "staging", "appdata"))
	cmd.Flags().IntVar(&bits, "bits", 1, "number of bits `N`")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "`N` chooses the bits (same N, same bits)")
	return cmd
}

func newDeviceBadSectorCmd(cio *cliIO) *cobra.Command {
	var (
		addr  string
		clear bool
	)
	cmd := &cobra.Command{
		Use:   "bad-sector DIR --addr A [--clear]",
		Short: "Mark a flash sector bad (its program and erase fail)",
		Long: `Mark the sector starting at address A of the device in DIR as bad: every
program and erase of it fails (reads still work). --clear marks it good.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := parseUint32("--addr", addr)
			if err != nil {
				return err
			}
			on := "on"
			if clear {
				on = "off"
			}
			_, err = withDevice(cmd.Context(), args[0],
				func(c *vmcu.ControlClient) error {
					_, err := c.Do(cmd.Context(), fmt.Sprintf("bad-sector %d %s", a, on))
					return err
				},
				func(d *vmcu.Device) error { return d.SetBadSector(a, !clear) })
			if err != nil {
				return err
			}
			state := "bad"
			if clear {
				state = "good"
			}
			fmt.Fprintf(cio.stdout, "sector 0x%08X marked %s\n", a, state)
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "", "sector start `ADDRESS`")
	cmd.Flags().BoolVar(&clear, "clear", false, "mark the sector good again")
	return cmd
}
