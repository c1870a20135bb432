package main

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/sbm-project/sbm/image"
	"github.com/sbm-project/sbm/internal/atomicfile"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/upk"
	"github.com/spf13/cobra"
)

func init() { commandGroups = append(commandGroups, newUPKCmd) }

func newUPKCmd(cio *cliIO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "upk",
		Short: "Issue Update Protection Keys (per-device or per-class package keys)",
	}
	cmd.AddCommand(newUPKIssueCmd(cio))
	return cmd
}

func newUPKIssueCmd(cio *cliIO) *cobra.Command {
	var ctxDir, pkgFile, recipient, deviceID, notBefore, notAfter, out, passFile string
	var class, asJSON bool
	var recipients, outDir string
	var jobs int
	cmd := &cobra.Command{
		Use:   "issue --context DIR --package FILE (--recipient CERT_OR_PUBKEY_PEM | --class) --out FILE",
		Short: "Issue a UPK that lets one device (or the device class) decrypt a package",
		Long: `Issue an Update Protection Key for a package: the package's content key,
wrapped for one recipient with ECDH-ES + HKDF-SHA-256 + AES key wrap, bound
to the package's manifest, a validity window and a unique ID, and signed with
the context's update-authority key.

The recipient is a device ID (hex) from the context's production records
(written by "sbm provision"), a device certificate (PEM; it must be issued by
this context's device CA and names the device ID and key-agreement key), or a
key-agreement public key (PEM) with --device-id, or --class for every device
of the class. The package's content key is recovered from the context's
escrow record (or from a class UPK inside the package).` + batchHelp,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if asJSON && (recipients != "" || outDir != "") {
				return usagef("--json goes with one --recipient or --class, not with --recipients/--out-dir")
			}
			if recipients != "" || outDir != "" {
				return runUPKBatch(cmd, cio, batchFlags{ctxDir, pkgFile, recipients, outDir, passFile, notBefore, notAfter, jobs})
			}
			if err := requireFlags(cmd, "context", "package", "out"); err != nil {
				return err
			}
			if class == (recipient != "") {
				return usagef("give exactly one of --recipient and --class")
			}
			if class && deviceID != "" {
				return usagef("--device-id goes with --recipient, not --class")
			}
			opts := &upk.Options{}
			var err error
			if notBefore != "" {
				if opts.NotBefore, err = time.Parse(time.RFC3339, notBefore); err != nil {
					return usagef("--not-before: want RFC 3339 time like 2027-01-02T15:04:05Z: %v", err)
				}
			}
			if notAfter != "" {
				if opts.NotAfter, err = time.Parse(time.RFC3339, notAfter); err != nil {
					return usagef("--not-after: want RFC 3339 time like 2027-01-02T15:04:05Z: %v", err)
				}
			}
			c, err := openContext(ctxDir, passFile)
			if err != nil {
				return err
			}
			var r upk.Recipient
			if class {
				r = upk.ClassRecipient(c)
			} else if r, err = recipientFromFile(c, recipient, deviceID); err != nil {
				return err
			}
			p, err := openPackage(pkgFile)
			if err != nil {
				return err
			}
			defer p.Close()
			cek, err := image.RecoverCEK(c, p.Records())
			if err != nil {
				return fmt.Errorf("%s: %w", pkgFile, err)
			}
			u, err := upk.Issue(c, p.Manifest, cek, r, opts)
			if err != nil {
				return err
			}
			if err := atomicfile.WriteFile(out, u, 0o644); err != nil {
				return err
			}
			if asJSON {
				info, err := image.InspectUPK(u)
				if err != nil {
					return err
				}
				j := jsonIssuedUPK{Out: out, UPK: upkJSON(info)}
				bound := true // issued for this package's manifest
				j.UPK.BoundToManifest = &bound
				return printJSON(cio.stdout, j)
			}
			who := "device class " + c.ClassID().String()
			if r.Kind == upk.Device {
				who = "device " + hex.EncodeToString(r.DeviceID)
			}
			fmt.Fprintf(cio.stdout, "wrote %s: UPK for %s\n", out, who)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&ctxDir, "context", "", "security context directory (required)")
	f.StringVar(&pkgFile, "package", "", "package file (required)")
	f.StringVar(&recipient, "recipient", "", "device ID (hex, from the production records), device certificate, or key-agreement public key (PEM)")
	f.StringVar(&deviceID, "device-id", "", "device ID in hex (with a public-key --recipient)")
	f.BoolVar(&class, "class", false, "issue for the whole device class")
	f.StringVar(&notBefore, "not-before", "", "start of validity (RFC 3339; default now)")
	f.StringVar(&notAfter, "not-after", "", "end of validity (RFC 3339; default one year after the start)")
	f.StringVar(&recipients, "recipients", "", "batch: a directory of production records or device certificates, or a file (- for stdin) listing device IDs or certificate paths")
	f.StringVar(&outDir, "out-dir", "", "batch: directory for the UPKs, one <device-id>.upk each (with --recipients)")
	f.IntVar(&jobs, "jobs", 0, "batch: parallel workers (default: one per CPU)")
	f.StringVar(&out, "out", "", "output UPK file (required)")
	f.StringVar(&passFile, "passphrase-file", "", "file holding the context's key passphrase")
	f.BoolVar(&asJSON, "json", false, "print the UPK written as JSON")
	return cmd
}

// recipientFromFile reads a device certificate or a key-agreement public
// key, or looks a device ID up in the context's production records.
func recipientFromFile(c *trust.Context, path, deviceID string) (upk.Recipient, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) && isHex(path) {
		if deviceID != "" {
			return upk.Recipient{}, usagef("--device-id goes with a public-key --recipient")
		}
		_, id, err := c.LoadDevice(path)
		if err != nil {
			return upk.Recipient{}, err
		}
		return upk.Recipient{Kind: upk.Device, Key: id.KeyAgreement, DeviceID: id.ID}, nil
	}
	if err != nil {
		return upk.Recipient{}, err
	}
	if bytes.Contains(data, []byte("-----BEGIN CERTIFICATE-----")) {
		if deviceID != "" {
			return upk.Recipient{}, usagef("--device-id is taken from the certificate; do not give it")
		}
		certs, err := trust.ParseCertificatesPEM(data)
		if err != nil {
			return upk.Recipient{}, fmt.Errorf("%s: %w", path, err)
		}
		id, err := c.VerifyDeviceCertificate(certs[0])
		if err != nil {
			return upk.Recipient{}, fmt.Errorf("%s: %w", path, err)
		}
		return upk.Recipient{Kind: upk.Device, Key: id.KeyAgreement, DeviceID: id.ID}, nil
	}
	pub, err := trust.ParsePublicKeyPEM(data)
	if err != nil {
		return upk.Recipient{}, fmt.Errorf("%s: not a certificate or public key: %w", path, err)
	}
	ka, err := trust.KeyAgreementPublicKey(pub)
	if err != nil {
		return upk.Recipient{}, fmt.Errorf("%s: %w", path, err)
	}
	if deviceID == "" {
		return upk.Recipient{}, usagef("a public-key --recipient needs --device-id")
	}
	id, err := hex.DecodeString(deviceID)
	if err != nil || len(id) == 0 || len(id) > 32 {
		return upk.Recipient{}, usagef("--device-id: want 1 to 32 bytes in hex")
	}
	return upk.Recipient{Kind: upk.Device, Key: ka, DeviceID: id}, nil
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil && s != ""
}
