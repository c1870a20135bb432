package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sbm-project/sbm/attest"
	"github.com/sbm-project/sbm/attest/verifier"
	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/internal/atomicfile"
	"github.com/sbm-project/sbm/sbm"
	"github.com/sbm-project/sbm/sim"
	"github.com/sbm-project/sbm/vmcu"
	"github.com/sbm-project/sbm/wire"
)

func init() { commandGroups = append(commandGroups, newAttestCmd) }

func newAttestCmd(cio *cliIO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "attest",
		Short: "Verify attestation tokens of devices (docs/spec/attestation.md)",
	}
	cmd.AddCommand(newAttestVerifyCmd(cio), newAttestRequestCmd(cio))
	return cmd
}

// parseHexFlag decodes a hex flag value of an exact size (0: any size in
// [min, max]).
func parseHexFlag(name, s string, min, max int) ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) < min || len(b) > max {
		if min == max {
			return nil, usagef("--%s: want %d bytes in hex", name, min)
		}
		return nil, usagef("--%s: want %d to %d bytes in hex", name, min, max)
	}
	return b, nil
}

func newAttestVerifyCmd(cio *cliIO) *cobra.Command {
	var ctxDir, nonceHex, sbmHex, expectHex string
	var asJSON, allowUnlocked, allowUnknownSBM bool
	cmd := &cobra.Command{
		Use:   "verify --context DIR --nonce HEX TOKEN_FILE",
		Short: "Verify a device's attestation token against the production records and releases",
		Long: `Verify an attestation token (a COSE_Sign1 over EAT/PSA-style claims, see
docs/spec/attestation.md) and print its claims:

  - the device named by the token's UEID must be in the context's production
    records, with a certificate issued by the context's device CA;
  - the token's signature must verify with that certificate's public key;
  - the token's nonce must equal --nonce (the challenge the verifier sent);
  - the device must report the locked lifecycle (debug port locked);
    --allow-unlocked also accepts a provisioned, unlocked device;
  - the SBM measurement must equal --sbm-measurement if given (see
    "sbm device info"), else the one recorded in the device's production
    record at provisioning; --allow-unknown-sbm accepts an SBM measurement
    that is not known (never one that differs from --sbm-measurement);
  - the application measurement must be a known release of the context
    (its releases/ index, written by "sbm image create"), or equal
    --expect-sha256.

Exit status 1 with the reason if any check fails.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "context", "nonce"); err != nil {
				return err
			}
			nonce, err := parseHexFlag("nonce", nonceHex, attest.MinNonceSize, attest.MaxNonceSize)
			if err != nil {
				return err
			}
			var wantSBM, wantApp []byte
			if sbmHex != "" {
				if wantSBM, err = parseHexFlag("sbm-measurement", sbmHex, 32, 32); err != nil {
					return err
				}
			}
			if expectHex != "" {
				if wantApp, err = parseHexFlag("expect-sha256", expectHex, 32, 32); err != nil {
					return err
				}
			}
			tok, err := readToken(args[0])
			if err != nil {
				return err
			}
			c, err := openContext(ctxDir, "")
			if err != nil {
				return err
			}
			res, err := verifier.Check(c, tok, &verifier.Options{
				Nonce: nonce, SBMMeasurement: wantSBM, AppMeasurement: wantApp,
				AllowUnlocked: allowUnlocked, AllowUnknownSBM: allowUnknownSBM,
			})
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cio.stdout, attestationJSON(res))
			}
			printAttestation(cio.stdout, res)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&ctxDir, "context", "", "security context `DIR` (production records, releases)")
	f.StringVar(&nonceHex, "nonce", "", "the challenge sent to the device, `HEX` (8 to 64 bytes)")
	f.StringVar(&sbmHex, "sbm-measurement", "", "expected SBM measurement, SHA-256 `HEX`")
	f.StringVar(&expectHex, "expect-sha256", "", "accept this application measurement (`HEX`) even if it is no release of the context")
	f.BoolVar(&allowUnlocked, "allow-unlocked", false, "accept a device that is not locked (its debug port is open)")
	f.BoolVar(&allowUnknownSBM, "allow-unknown-sbm", false, "accept an SBM measurement that is not the one recorded at provisioning")
	f.BoolVar(&asJSON, "json", false, "print the verified claims as JSON")
	return cmd
}

// readToken reads a token file (binary, or hex text).
func readToken(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4*attest.MaxTokenSize))
	if err != nil {
		return nil, err
	}
	if h, err := hex.DecodeString(strings.TrimSpace(string(b))); err == nil && len(h) > 0 {
		b = h
	}
	if len(b) > attest.MaxTokenSize {
		return nil, fmt.Errorf("%s: token larger than %d bytes", path, attest.MaxTokenSize)
	}
	return b, nil
}

func printAttestation(w io.Writer, a *verifier.Result) {
	fmt.Fprintf(w, "attestation verified: device %s (%s)\n", a.Device, a.Lifecycle)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  nonce:\t%s\n", a.Nonce)
	if a.BootSeed != "" {
		fmt.Fprintf(tw, "  boot seed:\t%s\n", a.BootSeed)
	}
	fmt.Fprintf(tw, "  SBM version:\t%s\n", a.SBM.Version)
	fmt.Fprintf(tw, "  SBM measurement:\t%s\n", a.SBM.Measurement)
	if p := a.Application; p != nil {
		fmt.Fprintf(tw, "  application:\t%s\n", p.Version)
		fmt.Fprintf(tw, "  application measurement:\t%s\n", p.Measurement)
		if p.SecurityCounter != nil {
			fmt.Fprintf(tw, "  security counter:\t%d\n", *p.SecurityCounter)
		}
		if p.Signer != "" {
			fmt.Fprintf(tw, "  signer:\t%s\n", p.Signer)
		}
		if p.Release != nil {
			fmt.Fprintf(tw, "  release:\t%s (manifest digest %s)\n", p.Release.Version, p.Release.ManifestDigest)
		} else {
			fmt.Fprintf(tw, "  release:\tnot in the context (accepted by --expect-sha256)\n")
		}
	}
	tw.Flush()
}

func newAttestRequestCmd(cio *cliIO) *cobra.Command {
	var nonceHex, out string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "request DIR --nonce HEX --out FILE",
		Short: "Boot a virtual device and have its SBM answer an attestation challenge",
		Long: `Power on the (stopped) virtual device in DIR in-process and, once the SBM has
verified its application, call the SBM's attestation service with --nonce,
as the application's attest call would, and write the token to --out.
It is for testing verifiers without an application runtime; the device must
not be running. Exit status 1 if the device does not boot an application.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "nonce", "out"); err != nil {
				return err
			}
			nonce, err := parseHexFlag("nonce", nonceHex, attest.MinNonceSize, attest.MaxNonceSize)
			if err != nil {
				return err
			}
			tok, err := requestToken(cmd.Context(), args[0], nonce)
			if err != nil {
				return err
			}
			if err := atomicfile.WriteFile(out, tok, 0o644); err != nil {
				return err
			}
			if asJSON {
				id := ""
				if in, err := vmcu.Inspect(args[0]); err == nil {
					id = in.ID
				}
				return printJSON(cio.stdout, jsonAttestRequest{DeviceID: id, Nonce: hex.EncodeToString(nonce), Out: out, Bytes: len(tok)})
			}
			fmt.Fprintf(cio.stdout, "attestation token: %d bytes written to %s\n", len(tok), out)
			return nil
		},
	}
	cmd.Flags().StringVar(&nonceHex, "nonce", "", "the challenge, `HEX` (8 to 64 bytes)")
	cmd.Flags().StringVar(&out, "out", "", "write the token to `FILE`")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the device ID, nonce, output file and token size as JSON")
	return cmd
}

// requestToken boots the device in dir once and asks the SBM's services
// for a token.
func requestToken(ctx context.Context, dir string, nonce []byte) ([]byte, error) {
	return requestFromSBM(ctx, dir, "attestation service", func(s sbm.Services) ([]byte, error) {
		return s.Attest(nil, nonce)
	})
}

// requestFromSBM boots the device in dir once and, when the SBM launches
// its application, calls call with the SBM's services instead.
func requestFromSBM(ctx context.Context, dir, what string, call func(sbm.Services) ([]byte, error)) ([]byte, error) {
	d, err := vmcu.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var tok []byte
	var aerr error
	launched, recovery := false, false
	fw := sim.Firmware(&sbm.Options{
		Launch: func(a *sbm.AppInfo) {
			launched = true
			tok, aerr = call(a.Services)
		},
		Serve: func(_ hal.UART, _ wire.Target, sys hal.System, _ time.Duration) bool {
			recovery = true
			cancel() // stops the firmware at its next hardware call
			sys.Sleep(time.Second)
			return false
		},
	})
	if _, err := d.PowerOn(ctx, fw, vmcu.PowerOnOptions{}); err != nil {
		return nil, err
	}
	switch {
	case recovery || !launched:
		return nil, fmt.Errorf("%s: the SBM did not launch an application (see sbm device info)", dir)
	case aerr != nil:
		return nil, fmt.Errorf("%s: %w", what, aerr)
	}
	return tok, nil
}
