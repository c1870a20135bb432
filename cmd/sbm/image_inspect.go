package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/sbm-project/sbm/image"
	"github.com/sbm-project/sbm/trust"
	"github.com/spf13/cobra"
)

func newImageInspectCmd(cio *cliIO) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect [--json] FILE",
		Short: "Show a package's manifest, signer, chunks and UPK recipients (no secrets needed)",
		Long: `Show what a package says about itself: manifest fields, the image-signing
key ID, chunk count and the recipients of the UPKs it carries. FILE may also
be a bare UPK (as written by "sbm upk issue"). Nothing is verified: use
"sbm image verify" for that. With --json the output is one JSON object
(fields in docs/cli.md) whose "kind" is "package" or "upk".`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, u, err := inspectPath(args[0])
			if err != nil {
				return err
			}
			if u != nil {
				if asJSON {
					return printJSON(cio.stdout, jsonBareUPK{Kind: "upk", UPK: upkJSON(u)})
				}
				printUPK(cio.stdout, "UPK", u)
				return nil
			}
			if asJSON {
				return printJSON(cio.stdout, packageJSON(d))
			}
			printDescription(cio.stdout, d)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printDescription(w io.Writer, d *image.Description) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "version:\t%s\n", d.Version)
	fmt.Fprintf(tw, "security counter:\t%d\n", d.SecurityCounter)
	fmt.Fprintf(tw, "vendor ID:\t%s\n", d.VendorID)
	fmt.Fprintf(tw, "class ID:\t%s\n", d.ClassID)
	fmt.Fprintf(tw, "slot:\t%s\n", d.Slot)
	fmt.Fprintf(tw, "payload:\t%d bytes\n", d.PayloadSize)
	fmt.Fprintf(tw, "application measurement:\t%s\n", d.PayloadSHA256)
	if d.SourceFormat != "" {
		fmt.Fprintf(tw, "source format:\t%s\n", d.SourceFormat)
	}
	if d.LoadAddress != nil {
		fmt.Fprintf(tw, "load address:\t0x%08x\n", *d.LoadAddress)
	}
	fmt.Fprintf(tw, "created:\t%s\n", d.Created.Format(time.RFC3339))
	fmt.Fprintf(tw, "encryption:\t%s, %d chunks of %d bytes\n", d.Encryption, d.Chunks, d.ChunkSize)
	fmt.Fprintf(tw, "signer (image-signing key ID):\t%s\n", d.Signer)
	fmt.Fprintf(tw, "manifest digest:\t%s\n", d.ManifestDigest)
	fmt.Fprintf(tw, "UPKs:\t%d\n", len(d.UPKs))
	tw.Flush()
	for i, u := range d.UPKs {
		printUPK(w, fmt.Sprintf("UPK %d", i+1), &u)
	}
}

func printUPK(w io.Writer, title string, u *image.UPKInfo) {
	who := u.Recipient
	if u.DeviceID != "" {
		who += " " + u.DeviceID
	}
	fmt.Fprintf(w, "%s: for %s (key ID %s), valid %s to %s, ID %s\n", title, who, u.KeyID[:16],
		u.NotBefore.Format(time.RFC3339), u.NotAfter.Format(time.RFC3339), u.ID)
}

func newImageVerifyCmd(cio *cliIO) *cobra.Command {
	var ctxDir, upkFile, keyFile, deviceID, extract, at, passFile string
	var escrow bool
	cmd := &cobra.Command{
		Use:   "verify --context DIR [--upk FILE] [--key KEY_PEM | --escrow] [--extract OUT] FILE",
		Short: "Verify a package against a context, and with a recipient key decrypt it",
		Long: `Verify a package the way a device does. Always: the container, the
manifest's signature and its key certificate's chain to the context's root,
the vendor and class IDs, the payload length, and that every UPK in the
package is signed by the update authority and bound to this manifest. With
--key (the recipient's key-agreement private key: a device's, or the
context's class key) also a UPK (--upk, or those in the package): its
recipient, its validity window (at --at, default now); then the key unwrap,
every chunk, and the plaintext SHA-256. --extract writes the plaintext, only
if everything verified. Exits 1 naming the failed check.

Only device and class UPKs (recipient kinds 1 and 2) are accepted: an escrow
UPK (kind 3) is refused, as every device refuses it. --escrow is the OEM's
check of an escrow UPK instead: --upk, or by default the context's escrow
record for this package (releases/), must be a kind-3 UPK for the context's
escrow key, which decrypts the package (--passphrase-file is then the
context's passphrase).`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "context"); err != nil {
				return err
			}
			if escrow && (keyFile != "" || deviceID != "") {
				return usagef("--escrow uses the context's escrow key: it excludes --key and --device-id")
			}
			if (upkFile != "" || extract != "") && keyFile == "" && !escrow {
				return usagef("--upk and --extract need --key (the recipient's private key) or --escrow")
			}
			opts := &image.VerifyOptions{Escrow: escrow}
			var err error
			if at != "" {
				if opts.Now, err = time.Parse(time.RFC3339, at); err != nil {
					return usagef("--at: want RFC 3339 time: %v", err)
				}
			}
			if deviceID != "" {
				if opts.DeviceID, err = hex.DecodeString(deviceID); err != nil || len(opts.DeviceID) == 0 {
					return usagef("--device-id: want hex")
				}
			}
			var c *trust.Context
			if escrow {
				c, err = openContext(ctxDir, passFile)
			} else {
				c, err = trust.Open(ctxDir, nil)
			}
			if err != nil {
				return err
			}
			p, err := openPackage(args[0])
			if err != nil {
				return err
			}
			defer p.Close()
			if upkFile != "" {
				if opts.UPK, err = readInput(upkFile); err != nil {
					return err
				}
			}
			switch {
			case escrow:
				if opts.Key, err = c.EscrowKey(); err != nil {
					return err
				}
				if opts.UPK == nil {
					if opts.UPK, err = c.LoadRelease(sha256.Sum256(p.Manifest)); err != nil {
						return fmt.Errorf("%s: %w (give the escrow UPK with --upk)", args[0], err)
					}
				}
			case keyFile != "":
				if opts.Key, err = loadKeyAgreementKey(keyFile, passFile); err != nil {
					return err
				}
			}
			var plain *plaintextOut
			if extract != "" {
				if plain, err = newPlaintextOut(extract); err != nil {
					return err
				}
				defer plain.Abort()
				opts.Plaintext = plain
			}
			v, err := image.VerifyFile(c, p.File, opts)
			if errors.Is(err, image.ErrEscrowUPK) {
				return fmt.Errorf("%s: verification failed: %w; only the OEM checks it, with --escrow", args[0], err)
			}
			if err != nil {
				return fmt.Errorf("%s: verification failed: %w", args[0], err)
			}
			m := v.Manifest
			fmt.Fprintf(cio.stdout, "manifest: OK (version %s, security counter %d, signed by image-signing key %x, chained to root)\n",
				m.Version, m.SecurityCounter, m.SignerKID[:8])
			if v.UPK == nil {
				fmt.Fprintf(cio.stdout, "payload: not decrypted (give --key to check the UPK and every chunk)\n")
				return nil
			}
			info, _ := image.InspectUPK(pickUPK(p.UPKs, opts.UPK, v))
			if info != nil {
				printUPK(cio.stdout, "UPK: OK", info)
			}
			fmt.Fprintf(cio.stdout, "payload: OK (%d bytes in %d chunks, SHA-256 %x)\n", m.PayloadSize, m.NumChunks(), m.PayloadDigest)
			if extract != "" {
				if err := plain.Commit(); err != nil {
					return err
				}
				fmt.Fprintf(cio.stdout, "wrote plaintext to %s\n", extract)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&ctxDir, "context", "", "security context directory (required)")
	f.StringVar(&upkFile, "upk", "", "UPK file (default: the UPKs in the package)")
	f.StringVar(&keyFile, "key", "", "recipient's key-agreement private key (PKCS#8 PEM)")
	f.StringVar(&deviceID, "device-id", "", "recipient device ID (hex): a device UPK must name it")
	f.BoolVar(&escrow, "escrow", false, "OEM check of an escrow UPK (kind 3) with the context's escrow key (default UPK: the context's escrow record)")
	f.StringVar(&extract, "extract", "", "write the verified plaintext to this file")
	f.StringVar(&at, "at", "", "check UPK validity at this time (RFC 3339; default now)")
	f.StringVar(&passFile, "passphrase-file", "", "passphrase of an encrypted --key (with --escrow: of the context)")
	return cmd
}

// pickUPK returns the bytes of the UPK that verified.
func pickUPK(upks [][]byte, given []byte, v *image.Verified) []byte {
	if given != nil {
		return given
	}
	for _, b := range upks {
		if info, err := image.InspectUPK(b); err == nil && info.ID == hex.EncodeToString(v.UPK.ID[:]) {
			return b
		}
	}
	return nil
}
