package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/sbm-project/sbm/internal/atomicfile"
	"github.com/sbm-project/sbm/vmcu"
)

func newDeviceFlashCmd(cio *cliIO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "flash",
		Short: "Read or write the flash chip directly, as a physical attacker (test clip)",
		Long: `Act on the flash of the device in DIR directly, as an attacker with the board
in hand does: on a board whose flash is external (a separate serial NOR chip;
see 'sbm device boards') this is a test clip on the chip's pins, which
bypasses the MCU entirely (no debug port, no lock fuses, no privilege
checks), so it works on a locked device and can rewrite the SBM region. On a
board whose flash is internal to the MCU the only way in is the debug port:
allowed before the debug-lock fuse is blown (restore also needs the SBM
region not write-protected), refused after.

The device must not be running: stop 'sbm device run' first.`,
	}
	cmd.AddCommand(newDeviceFlashDumpCmd(cio), newDeviceFlashRestoreCmd(cio))
	return cmd
}

func newDeviceFlashDumpCmd(cio *cliIO) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "dump DIR --out FILE",
		Short: "Write the raw flash array (exactly the flash size) to FILE",
		Long: `Read the whole flash array of the device in DIR, as a physical attacker
does (see 'sbm device flash --help'), and write it to FILE: exactly the
board's flash size, byte for byte from address 0. FILE is written
atomically.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "out"); err != nil {
				return err
			}
			d, err := vmcu.Open(args[0])
			if err != nil {
				return err
			}
			defer d.Close()
			data, err := d.DumpFlash()
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if err := atomicfile.WriteFile(out, data, 0o644); err != nil {
				return err
			}
			b := d.Board()
			fmt.Fprintf(cio.stdout, "dumped %d bytes of %s flash (board %s) to %s\n", len(data), b.FlashLocation, b.Name, out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "output `FILE` (required)")
	return cmd
}

func newDeviceFlashRestoreCmd(cio *cliIO) *cobra.Command {
	return &cobra.Command{
		Use:   "restore DIR FILE",
		Short: "Write FILE (exactly the flash size) over the whole flash array",
		Long: `Erase and program every sector of the device in DIR with the contents of
FILE, as a physical attacker's clip programmer does (see 'sbm device flash
--help'). FILE must hold exactly the board's flash size (a dump from 'sbm
device flash dump'); otherwise nothing is written. Every sector's erase
counts in its wear; fuses, RAM and bad-sector marks are not changed.`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := vmcu.Open(args[0])
			if err != nil {
				return err
			}
			defer d.Close()
			b := d.Board()
			data, err := readImage(args[1], b)
			if err != nil {
				return fmt.Errorf("%s: restore flash: %w", args[0], err)
			}
			if err := d.RestoreFlash(data); err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			fmt.Fprintf(cio.stdout, "restored %d bytes of %s flash (board %s, %d sectors erased and programmed) from %s\n",
				len(data), b.FlashLocation, b.Name, len(b.Geometry.Sectors), args[1])
			return nil
		},
	}
}

// readImage reads a flash image for board b from the file name, which
// must hold exactly the board's flash size.
func readImage(name string, b *vmcu.Board) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	want := int64(b.Geometry.Size)
	if st.Size() != want {
		return nil, fmt.Errorf("%s is %d bytes, want exactly the flash size of board %s, %d bytes", name, st.Size(), b.Name, want)
	}
	data, err := io.ReadAll(io.LimitReader(f, want+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != want {
		return nil, fmt.Errorf("%s changed size while being read", name)
	}
	return data, nil
}
