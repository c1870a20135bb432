package main

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sbm-project/sbm/attest/report"
	"github.com/sbm-project/sbm/attest/verifier"
	"github.com/sbm-project/sbm/internal/atomicfile"
	"github.com/sbm-project/sbm/sbm"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/wire"
)

func init() { commandGroups = append(commandGroups, newReportCmd) }

func newReportCmd(cio *cliIO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Verify install reports signed by devices (docs/spec/report.md)",
	}
	cmd.AddCommand(newReportVerifyCmd(cio), newReportRequestCmd(cio))
	return cmd
}

func newReportVerifyCmd(cio *cliIO) *cobra.Command {
	var ctxDir, nonceHex string
	cmd := &cobra.Command{
		Use:   "verify --context DIR [--nonce HEX] REPORT_FILE",
		Short: "Verify a device's signed install report against the production records",
		Long: `Verify an install report (a COSE_Sign1 the SBM signs with the device
identity key over facts from its own state, see docs/spec/report.md) and
print it:

  - the device named by the report must be in the context's production
    records, with a certificate issued by the context's device CA;
  - the report's signature must verify with that certificate's key;
  - with --nonce, the report must carry that nonce.

The package the result is about is named by its manifest digest, and by
its release if the context made it. Judging the sequence number (higher
than the last one accepted from the device) is the caller's: it is
printed. REPORT_FILE is binary or hex. Exit status 1 with the reason if a
check fails.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "context"); err != nil {
				return err
			}
			var nonce []byte
			if nonceHex != "" {
				var err error
				if nonce, err = parseHexFlag("nonce", nonceHex, report.MinNonceSize, report.MaxNonceSize); err != nil {
					return err
				}
			}
			rep, err := readReport(args[0])
			if err != nil {
				return err
			}
			c, err := openContext(ctxDir, "")
			if err != nil {
				return err
			}
			r, err := verifier.CheckReport(c, rep)
			if err != nil {
				return err
			}
			if nonce != nil && !bytes.Equal(r.Nonce, nonce) {
				return errors.New("nonce mismatch: the report does not answer this challenge (replayed?)")
			}
			return printReport(cio.stdout, c, r)
		},
	}
	f := cmd.Flags()
	f.StringVar(&ctxDir, "context", "", "security context `DIR` (production records, releases)")
	f.StringVar(&nonceHex, "nonce", "", "require this nonce, `HEX` (8 to 64 bytes)")
	return cmd
}

// readReport reads a report file (binary, or hex text).
func readReport(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4*report.MaxReportSize))
	if err != nil {
		return nil, err
	}
	if h, err := hex.DecodeString(strings.TrimSpace(string(b))); err == nil && len(h) > 0 {
		b = h
	}
	if len(b) > report.MaxReportSize {
		return nil, fmt.Errorf("%s: report larger than %d bytes", path, report.MaxReportSize)
	}
	return b, nil
}

// releaseName names the context's release with manifest digest d, if any.
func releaseName(c *trust.Context, d [32]byte) string {
	rels, err := c.Releases()
	if err != nil {
		return ""
	}
	for _, r := range rels {
		if r.ManifestDigest == hex.EncodeToString(d[:]) {
			return " (release " + r.Version + ")"
		}
	}
	return ""
}

func printReport(w io.Writer, c *trust.Context, r *report.Report) error {
	fmt.Fprintf(w, "report verified: device %x\n", r.DeviceID)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  sequence:\t%#016x (epoch %d, report %d)\n", r.Sequence, r.Sequence>>32, r.Sequence&0xffffffff)
	fmt.Fprintf(tw, "  boots since power-on:\t%d\n", r.Boots)
	updated := "no"
	if r.Updated {
		updated = "yes"
	}
	fmt.Fprintf(tw, "  updated at this boot:\t%s\n", updated)
	switch {
	case !r.HasResult:
		fmt.Fprintf(tw, "  last update:\tnone\n")
	case r.Result == 0:
		fmt.Fprintf(tw, "  last update:\t%s\n", r.Detail)
	default:
		fmt.Fprintf(tw, "  last update:\trefused, code %d (%s): %s\n", r.Result, wire.Code(r.Result), r.Detail)
	}
	if r.HasPackage {
		fmt.Fprintf(tw, "  package manifest digest:\t%x%s\n", r.Package, releaseName(c, r.Package))
	}
	if r.HasApp {
		fmt.Fprintf(tw, "  application:\t%s (security counter %d)\n", r.App.Version, r.App.SecurityCounter)
		fmt.Fprintf(tw, "  application manifest digest:\t%x%s\n", r.App.ManifestDigest, releaseName(c, r.App.ManifestDigest))
		fmt.Fprintf(tw, "  application measurement:\t%x\n", r.App.Measurement)
	}
	if len(r.Nonce) > 0 {
		fmt.Fprintf(tw, "  nonce:\t%x\n", r.Nonce)
	}
	return tw.Flush()
}

func newReportRequestCmd(cio *cliIO) *cobra.Command {
	var nonceHex, out string
	cmd := &cobra.Command{
		Use:   "request DIR [--nonce HEX] --out FILE",
		Short: "Boot a virtual device and have its SBM sign an install report",
		Long: `Power on the (stopped) virtual device in DIR in-process and, once the SBM has
verified its application, call the SBM's report service (with --nonce, if
given), as the application's report call would, and write the report to
--out. It is for testing verifiers without an application runtime; the
device must not be running. Each request is a power-on, so each opens a
new sequence epoch. Exit status 1 if the device does not boot an
application.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "out"); err != nil {
				return err
			}
			var nonce []byte
			if nonceHex != "" {
				var err error
				if nonce, err = parseHexFlag("nonce", nonceHex, report.MinNonceSize, report.MaxNonceSize); err != nil {
					return err
				}
			}
			rep, err := requestFromSBM(cmd.Context(), args[0], "report service", func(s sbm.Services) ([]byte, error) {
				return s.Report(nil, nonce)
			})
			if err != nil {
				return err
			}
			if err := atomicfile.WriteFile(out, rep, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cio.stdout, "install report: %d bytes written to %s\n", len(rep), out)
			return nil
		},
	}
	cmd.Flags().StringVar(&nonceHex, "nonce", "", "a nonce for the report, `HEX` (8 to 64 bytes)")
	cmd.Flags().StringVar(&out, "out", "", "write the report to `FILE`")
	return cmd
}
