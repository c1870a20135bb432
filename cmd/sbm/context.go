package main

import (
	"bytes"
	"crypto/ecdh"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/sbm-project/sbm/trust"
	"github.com/spf13/cobra"
)

func init() { commandGroups = append(commandGroups, newContextCmd) }

func newContextCmd(cio *cliIO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "context",
		Short: "Create and show the OEM security context (keys, certificates, IDs)",
	}
	cmd.AddCommand(newContextInitCmd(cio), newContextShowCmd(cio), newContextImportKeysCmd(cio),
		newContextRotateCmd(cio), newContextRevokeCmd(cio))
	return cmd
}

func newContextInitCmd(cio *cliIO) *cobra.Command {
	var suite, vendor, class, passFile, org, pkcs11 string
	cmd := &cobra.Command{
		Use:   "init DIR",
		Short: "Create a new security context in DIR",
		Long: `Create a new security context in DIR (which must not exist or be empty):
a root key with a self-signed root certificate, an image-signing key and an
update-authority key with key certificates signed by the root, a device CA
certificate chained to the root, a device-class key-agreement key (for class
UPKs), an escrow key-agreement key (so UPKs can be issued later), and the
vendor and device-class IDs. Private keys are PKCS#8 PEM files with mode
0600, encrypted with the passphrase from --passphrase-file if given.

With --pkcs11 URI every private key is generated inside a PKCS#11 token
instead (sensitive, not extractable) and nothing private is written to DIR;
context.toml records one pkcs11: URI per key, without the PIN value. The
URI (RFC 7512) names the token and the module, and gives the PIN:

  pkcs11:token=LABEL[;object=PREFIX][;id=%01%02]?module-path=/path/to/module.so&pin-source=FILE

pin-source=FILE (first line) is recorded and used by every later command;
pin-value=PIN is not recorded, so later commands then need the PIN in
--passphrase-file. object= is the prefix of the keys' labels (default sbm:
sbm-root, sbm-image-signing, sbm-update-authority, sbm-device-ca,
sbm-class-ka, sbm-escrow); the token must not hold them yet. A token-held
class key cannot be sent into devices (provision --class-key); see
docs/keys.md.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := &trust.InitOptions{Organization: org}
			var err error
			if opts.Suite, err = trust.ParseSuite(suite); err != nil {
				return usagef("--suite: %v", err)
			}
			if vendor != "" {
				u, err := trust.ParseUUID(vendor)
				if err != nil {
					return usagef("--vendor-id: %v", err)
				}
				opts.VendorID = &u
			}
			if class != "" {
				u, err := trust.ParseUUID(class)
				if err != nil {
					return usagef("--class-id: %v", err)
				}
				opts.ClassID = &u
			}
			if passFile != "" {
				if opts.Passphrase, err = readPassphraseFile(passFile); err != nil {
					return err
				}
			}
			if pkcs11 != "" {
				if _, err := trust.ParsePKCS11URI(pkcs11); err != nil {
					return usagef("--pkcs11: %v", err)
				}
				opts.PKCS11 = pkcs11
			}
			c, err := trust.Init(args[0], opts)
			if err != nil {
				return err
			}
			defer c.Close()
			if pkcs11 != "" {
				info, err := c.Info()
				if err != nil {
					return err
				}
				fmt.Fprintf(cio.stdout, "created %s security context in %s, keys in PKCS#11 token %q\n", c.Suite(), c.Dir(), info.Token)
			} else {
				fmt.Fprintf(cio.stdout, "created %s security context in %s\n", c.Suite(), c.Dir())
			}
			fmt.Fprintf(cio.stdout, "vendor ID %s\nclass ID  %s\n", c.VendorID(), c.ClassID())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&suite, "suite", "p256", "algorithm suite: p256 (ECDSA/ECDH P-256) or ed25519 (Ed25519/X25519)")
	f.StringVar(&vendor, "vendor-id", "", "vendor UUID (default: random)")
	f.StringVar(&class, "class-id", "", "device-class UUID (default: random)")
	f.StringVar(&org, "org", "", "organization name for certificate subjects (default \"SBM OEM\")")
	f.StringVar(&passFile, "passphrase-file", "", "encrypt private keys with the passphrase in this file (first line); with --pkcs11, the token PIN if the URI gives none")
	f.StringVar(&pkcs11, "pkcs11", "", "generate the keys in the PKCS#11 token named by this RFC 7512 pkcs11: URI (see above)")
	registerCompletion(cmd, "suite", fixedValues(suiteNames...))
	return cmd
}

func newContextShowCmd(cio *cliIO) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show DIR",
		Short: "Show a security context's IDs, suite, key IDs and certificate paths",
		Long: `Show a security context. Never prints secrets and needs no passphrase.
With --json, the keys include vendor_id, class_id, suite and ca_chain (the
path of a PEM file holding the device CA and root certificates).`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := trust.Open(args[0], nil)
			if err != nil {
				return err
			}
			info, err := c.Info()
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cio.stdout, contextJSON(info))
			}
			tw := tabwriter.NewWriter(cio.stdout, 0, 0, 2, ' ', 0)
			for _, kv := range [][2]string{
				{"context", info.Dir}, {"suite", string(info.Suite)},
				{"vendor ID", info.VendorID.String()}, {"class ID", info.ClassID.String()},
				{"organization", info.Organization}, {"created", info.Created.Format("2006-01-02T15:04:05Z07:00")},
				{"keys encrypted", fmt.Sprint(info.Encrypted)}, {"keystore", keystoreString(info)},
				{"root key ID", info.RootKeyID}, {"image-signing key ID", info.ImageSigningKeyID},
				{"update-authority key ID", info.UpdateAuthorityKeyID}, {"class key ID", info.ClassKeyID},
				{"escrow key ID", info.EscrowKeyID}, {"CA chain", info.CAChain},
			} {
				fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// keystoreString describes where a context's keys are.
func keystoreString(info *trust.Info) string {
	if info.Keystore == trust.KeystorePKCS11 {
		return fmt.Sprintf("pkcs11 (token %q)", info.Token)
	}
	return string(info.Keystore)
}

func newContextImportKeysCmd(cio *cliIO) *cobra.Command {
	var passFile, pinFile, pkcs11 string
	cmd := &cobra.Command{
		Use:   "import-keys DIR --pkcs11 URI",
		Short: "Move a file context's private keys into a PKCS#11 token",
		Long: `Move the private keys of the file context in DIR into the PKCS#11 token
named by --pkcs11 (an RFC 7512 pkcs11: URI, as for context init): each key
is created in the token, sensitive and not extractable, and checked to sign
(or derive) exactly as its file does; then context.toml is rewritten
(atomically) to name the token's keys, and only then are the key files
deleted. On any error before that, what was put in the token is removed and
the context is unchanged. An encrypted context needs --passphrase-file.

The key IDs, certificates and so every device already provisioned stay as
they are: only where the private keys live changes.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if pkcs11 == "" {
				return usagef("--pkcs11 URI is required")
			}
			if _, err := trust.ParsePKCS11URI(pkcs11); err != nil {
				return usagef("--pkcs11: %v", err)
			}
			opts := &trust.ImportOptions{}
			var err error
			if passFile != "" {
				if opts.Passphrase, err = readPassphraseFile(passFile); err != nil {
					return err
				}
			}
			if pinFile != "" {
				if opts.PIN, err = readPassphraseFile(pinFile); err != nil {
					return err
				}
			}
			if err := trust.ImportKeys(args[0], pkcs11, opts); err != nil {
				if errors.Is(err, trust.ErrPassphraseRequired) {
					return usagef("%v: give it with --passphrase-file FILE", err)
				}
				return err
			}
			fmt.Fprintf(cio.stdout, "moved the keys of %s into the PKCS#11 token; the key files are deleted\n", args[0])
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&pkcs11, "pkcs11", "", "the token, as an RFC 7512 pkcs11: URI (required)")
	f.StringVar(&passFile, "passphrase-file", "", "the passphrase of an encrypted context (first line)")
	f.StringVar(&pinFile, "pin-file", "", "the token PIN (first line), if the URI has no pin-source or pin-value")
	return cmd
}

// readPassphraseFile returns the first line of a passphrase file.
func readPassphraseFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("passphrase file: %w", err)
	}
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return nil, fmt.Errorf("passphrase file %s: empty passphrase", path)
	}
	return b, nil
}

// openContext opens a context, reading the passphrase from passFile when a
// private key needs it. If the keys are encrypted and no passFile was
// given, using a key fails with a usage error naming --passphrase-file.
func openContext(dir, passFile string) (*trust.Context, error) {
	return trust.Open(dir, &trust.OpenOptions{Passphrase: func() ([]byte, error) {
		if passFile == "" {
			return nil, usagef("the keys of context %s are encrypted: a passphrase is required; give it with --passphrase-file FILE", dir)
		}
		return readPassphraseFile(passFile)
	}})
}

// loadKeyAgreementKey loads a recipient's key-agreement private key,
// reading its passphrase from passFile if it is encrypted.
func loadKeyAgreementKey(keyFile, passFile string) (*ecdh.PrivateKey, error) {
	var pass []byte
	if passFile != "" {
		var err error
		if pass, err = readPassphraseFile(passFile); err != nil {
			return nil, err
		}
	}
	k, err := trust.LoadKeyAgreementKey(keyFile, pass)
	if errors.Is(err, trust.ErrPassphraseRequired) {
		return nil, &usageError{fmt.Errorf("%w; give it with --passphrase-file FILE", err)}
	}
	return k, err
}
