package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/sbm-project/sbm/image"
	"github.com/sbm-project/sbm/internal/atomicfile"
	"github.com/sbm-project/sbm/internal/firmware"
	"github.com/sbm-project/sbm/trust"
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

// maxInputSize bounds the inputs the tool reads (64 MiB).
const maxInputSize = 64 << 20

func newImageCreateCmd(cio *cliIO) *cobra.Command {
	var (
		ctxDir, version, slot, out, format, passFile, notAfter string
		counter                                                uint32
		chunk, maxSize                                         int
		classUPK                                               bool
	)
	var boardName string // --board: warn if the board cannot run the input
	cmd := &cobra.Command{
		Use:   "create --context DIR --version SEMVER --out FILE INPUT",
		Short: "Build a signed and encrypted image package from an application",
		Long: `Build a secure image package from INPUT: an ELF file (its loadable
segments), an Intel HEX file, a WebAssembly module or a raw binary, detected
by content (--format forces one). The payload is encrypted with a fresh
content-encryption key in 4 KiB authenticated chunks; the manifest is signed
with the context's image-signing key. An escrow record is saved in the
context so UPKs can be issued for the package later; --class-upk also puts a
UPK for the whole device class into the package.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ctxDir == "" || version == "" || out == "" {
				return usagef("--context, --version and --out are required")
			}
			f, err := firmware.ParseFormat(format)
			if err != nil {
				return usagef("--format: %v", err)
			}
			opts := &image.CreateOptions{Version: version, SecurityCounter: counter, Slot: slot, ChunkSize: chunk, MaxPackageSize: maxSize, ClassUPK: classUPK}
			if notAfter != "" {
				if opts.UPKOptions.NotAfter, err = time.Parse(time.RFC3339, notAfter); err != nil {
					return usagef("--not-after: want RFC 3339 time like 2027-01-02T15:04:05Z: %v", err)
				}
			}
			c, err := openContext(ctxDir, passFile)
			if err != nil {
				return err
			}
			data, err := readInput(args[0])
			if err != nil {
				return err
			}
			img, err := firmware.Load(data, f, maxInputSize)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if err := warnBoardRuns(cio, boardName, string(img.Format)); err != nil {
				return err
			}
			res, err := image.Create(c, img, opts)
			if err != nil {
				return err
			}
			enc, err := res.Package.MarshalBinary()
			if err != nil {
				return err
			}
			rel := &trust.Release{
				ManifestDigest: hex.EncodeToString(res.ManifestDigest[:]), Version: version, SecurityCounter: counter,
				PayloadSHA256: fmt.Sprintf("%x", sha256.Sum256(img.Data)), PayloadSize: uint32(len(img.Data)), Created: time.Now().UTC().Truncate(time.Second),
			}
			if err := c.SaveRelease(rel, res.Escrow); err != nil {
				return fmt.Errorf("save escrow record: %w", err)
			}
			if err := atomicfile.WriteFile(out, enc, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cio.stdout, "wrote %s: version %s, %s payload of %d bytes in %d chunk(s), %d bytes\n",
				out, version, img.Format, len(img.Data), (len(img.Data)+opts.ChunkSizeOrDefault()-1)/opts.ChunkSizeOrDefault(), len(enc))
			fmt.Fprintf(cio.stdout, "manifest digest %x\n", res.ManifestDigest)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&ctxDir, "context", "", "security context directory (required)")
	fl.StringVar(&version, "version", "", "application version, semantic versioning (required)")
	fl.Uint32Var(&counter, "security-counter", 0, "anti-rollback security counter")
	fl.StringVar(&slot, "slot", "primary", "target slot name")
	fl.StringVar(&out, "out", "", "output package file (required)")
	fl.StringVar(&format, "format", "auto", "input format: auto, bin, wasm, elf or ihex")
	fl.IntVar(&chunk, "chunk-size", image.DefaultChunkSize, "plaintext bytes per encrypted chunk (power of two, 256..65536)")
	fl.IntVar(&maxSize, "max-size", 0, "refuse a package larger than this many bytes (the slot size; 0 = no limit)")
	fl.BoolVar(&classUPK, "class-upk", false, "add a UPK for the whole device class")
	fl.StringVar(&notAfter, "not-after", "", "end of the class UPK's validity (RFC 3339; default one year)")
	fl.StringVar(&boardName, "board", "", "the target board (`NAME` or board file): warn if it cannot run the input's format")
	fl.StringVar(&passFile, "passphrase-file", "", "file holding the context's key passphrase")
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
	if fi.Size() > maxInputSize {
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
