package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/image"
	"github.com/sbm-project/sbm/internal/firmware"
	"github.com/spf13/cobra"
)

func init() { commandGroups = append(commandGroups, newImageCmd) }

func newImageCmd(cio *cliIO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Create, inspect and verify secure image packages",
	}
	cmd.AddCommand(newImageCreateCmd(cio), newImageInspectCmd(cio), newImageVerifyCmd(cio))
	return cmd
}

// maxInputSize bounds the files readInput reads whole: the largest package
// of a MaxPayloadSize payload (256-byte chunks, 16 UPKs). The streaming
// commands do not read their package or input through it.
var maxInputSize = image.PackageSize(image.MaxPayloadSize, 256, image.MaxUPKs)

func newImageCreateCmd(cio *cliIO) *cobra.Command {
	var (
		ctxDir, version, slot, out, format, passFile, notAfter string
		counter                                                counterValue
		chunk, maxSize                                         int
		classUPK, asJSON                                       bool
	)
	var boardName string  // --board: warn if the board cannot run the input
	var revocation string // --revocation: a statement for the manifest to carry
	cmd := &cobra.Command{
		Use:   "create --context DIR --version SEMVER --out FILE INPUT",
		Short: "Build a signed and encrypted image package from an application",
		Long: `Build a secure image package from INPUT: an ELF file (its loadable
segments), an Intel HEX file, a WebAssembly module or a raw binary, detected
by content (--format forces one). The payload is encrypted with a fresh
content-encryption key in 4 KiB authenticated chunks; the manifest is signed
with the context's image-signing key. An escrow record is saved in the
context so UPKs can be issued for the package later; --class-upk also puts a
UPK for the whole device class into the package.

The input is streamed: a raw binary or WebAssembly module of any size up to
the 64 MiB payload limit costs the memory of a small one (ELF and Intel HEX
files, read whole and flattened, are limited to 256 MiB of file). Every
command refuses a payload over the limit with the same message.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "context", "version", "out"); err != nil {
				return err
			}
			if err := checkVersionFlag(version); err != nil {
				return err
			}
			f, err := firmware.ParseFormat(format)
			if err != nil {
				return usagef("--format: %v", err)
			}
			opts := &image.CreateOptions{Version: version, SecurityCounter: uint32(counter), Slot: slot, ChunkSize: chunk, MaxPackageSize: maxSize, ClassUPK: classUPK}
			if revocation != "" {
				if opts.Revocation, err = os.ReadFile(revocation); err != nil {
					return fmt.Errorf("--revocation: %w", err)
				}
			}
			if notAfter != "" {
				if opts.UPKOptions.NotAfter, err = time.Parse(time.RFC3339, notAfter); err != nil {
					return usagef("--not-after: want RFC 3339 time like 2027-01-02T15:04:05Z: %v", err)
				}
			}
			board, err := boardFlag(boardName)
			if err != nil {
				return err
			}
			c, err := openContext(ctxDir, passFile)
			if err != nil {
				return err
			}
			res, in, err := createPackageFile(c, args[0], f, out, opts)
			if err != nil {
				return err
			}
			warnBoardRuns(cio, board, string(in.Format))
			if asJSON {
				return printJSON(cio.stdout, createdJSON(out, opts, res, in))
			}
			fmt.Fprintf(cio.stdout, "wrote %s: version %s, %s payload of %d bytes in %d chunk(s), %d bytes\n",
				out, version, in.Format, in.Size, (int(in.Size)+opts.ChunkSizeOrDefault()-1)/opts.ChunkSizeOrDefault(), res.Size)
			fmt.Fprintf(cio.stdout, "manifest digest %x\n", res.ManifestDigest)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&ctxDir, "context", "", "security context directory (required)")
	fl.StringVar(&version, "version", "", "application version, semantic versioning (required)")
	fl.Var(&counter, "security-counter", fmt.Sprintf("anti-rollback security counter, 0 to %d (the device's fuse counter range)", hal.CounterMax))
	fl.StringVar(&slot, "slot", "primary", "target slot name")
	fl.StringVar(&out, "out", "", "output package file (required)")
	fl.StringVar(&format, "format", "auto", "input format: auto, bin, wasm, elf or ihex")
	fl.IntVar(&chunk, "chunk-size", image.DefaultChunkSize, "plaintext bytes per encrypted chunk (power of two, 256..65536)")
	fl.IntVar(&maxSize, "max-size", 0, "refuse a package larger than this many bytes (the slot size; 0 = no limit)")
	fl.BoolVar(&classUPK, "class-upk", false, "add a UPK for the whole device class")
	fl.StringVar(&notAfter, "not-after", "", "end of the class UPK's validity (RFC 3339; default one year)")
	fl.StringVar(&revocation, "revocation", "", "a revocation statement (sbm context revoke) for the manifest to carry: devices that install the package revoke the keys it names")
	fl.StringVar(&boardName, "board", "", "the target board (`NAME` or board file): warn if it cannot run the input's format")
	fl.StringVar(&passFile, "passphrase-file", "", "file holding the context's key passphrase")
	fl.BoolVar(&asJSON, "json", false, "print the package written as JSON")
	registerCompletion(cmd, "format", fixedValues("auto", "bin", "wasm", "elf", "ihex"))
	registerCompletion(cmd, "board", completeBoard)
	return cmd
}

// readInput reads a file of at most maxInputSize bytes.
func readInput(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("%s is a directory", path)
	}
	if fi.Size() > int64(maxInputSize) {
		return nil, fmt.Errorf("%s: %d bytes, larger than the %d-byte limit", path, fi.Size(), maxInputSize)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, errors.New(path + ": empty file")
	}
	return b, nil
}
