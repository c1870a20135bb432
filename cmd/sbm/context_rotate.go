package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/sbm-project/sbm/internal/atomicfile"
	"github.com/sbm-project/sbm/trust"
)

// rotatableRoles maps --role values to key roles.
var rotatableRoles = map[string]trust.KeyRole{
	"root":             trust.RootKey,
	"image-signing":    trust.ImageSigningKey,
	"update-authority": trust.UpdateAuthorityKey,
	"device-ca":        trust.DeviceCAKey,
}

func parseRole(s string, all bool) (trust.KeyRole, error) {
	r, ok := rotatableRoles[s]
	if !ok || (!all && (r == trust.DeviceCAKey || r == trust.RootKey)) {
		if all {
			return 0, usagef("--role %q: want root, image-signing, update-authority or device-ca", s)
		}
		return 0, usagef("--role %q: want image-signing or update-authority", s)
	}
	return r, nil
}

func newContextRotateCmd(cio *cliIO) *cobra.Command {
	var role, passFile string
	cmd := &cobra.Command{
		Use:   "rotate DIR --role root|image-signing|update-authority|device-ca",
		Short: "Replace a signing key by a new one (the next epoch, or the next root slot)",
		Long: `Make the role's next key in the context's keystore (a new key file, or a
new object in the PKCS#11 token) and certify it with the root: an
image-signing or update-authority key gets a key certificate at the next
key epoch; a device CA key an X.509 certificate, added in front of
ca-chain.pem (the older CA certificates stay, so device certificates they
issued still verify). context.toml is rewritten atomically.

New packages, UPKs and device certificates use the new key, and devices
accept it as they are: every package carries its key certificate. The old
key is deleted (its file or token object). To stop devices accepting it, make a
revocation statement (sbm context revoke) and ship it in the next release
(sbm image create --revocation).

--role root moves the context to the root of the next root-key slot (the
successor roots made by context init, whose hashes provisioning puts into
every device's fuses): the current root signs a transition statement naming
it, the new root certifies the current subordinate keys and the device CA,
and every package made from then on carries the statement. A device that
installs one moves to the new root and revokes the old one for good. The
last root can never be revoked.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := parseRole(role, true)
			if err != nil {
				return err
			}
			c, err := openContext(args[0], passFile)
			if err != nil {
				return err
			}
			defer c.Close()
			epoch, err := c.Rotate(r, time.Now())
			if err != nil {
				return err
			}
			if r == trust.RootKey {
				fmt.Fprintf(cio.stdout, "moved %s to the root of slot %d: every package now carries the transition statement\n", args[0], epoch)
				return nil
			}
			fmt.Fprintf(cio.stdout, "rotated the %s key of %s: new key at epoch %d\n", r, args[0], epoch)
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "root, image-signing, update-authority or device-ca (required)")
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "the passphrase of an encrypted context (first line)")
	cmd.RegisterFlagCompletionFunc("role", cobra.FixedCompletions([]string{"root", "image-signing", "update-authority", "device-ca"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func newContextRevokeCmd(cio *cliIO) *cobra.Command {
	var role, passFile, out string
	var below uint
	cmd := &cobra.Command{
		Use:   "revoke DIR --role image-signing|update-authority --below EPOCH --out FILE",
		Short: "Make a root-signed statement revoking a role's keys below an epoch",
		Long: `Write a revocation statement, signed by the root (docs/spec/package.md
§4.1): the role's keys with a key epoch below --below are revoked. Rotate
first: the statement may not revoke the role's current key.

Devices apply it when they install a package that carries it (sbm image
create --revocation FILE) and that is signed by keys it does not revoke;
from then on they refuse anything signed with the revoked keys, over the
UART and as staged updates, and the revocation is kept in fuses.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := parseRole(role, false)
			if err != nil {
				return err
			}
			if out == "" {
				return usagef("--out FILE is required")
			}
			if below == 0 || below > 255 {
				return usagef("--below %d: want an epoch from 1 to 255", below)
			}
			c, err := openContext(args[0], passFile)
			if err != nil {
				return err
			}
			defer c.Close()
			st, err := c.Revoke(r, uint8(below), time.Now())
			if err != nil {
				return err
			}
			if err := atomicfile.Create(out, st, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cio.stdout, "wrote %s: %s keys below epoch %d are revoked on devices that install a package carrying it\n", out, r, below)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&role, "role", "", "image-signing or update-authority (required)")
	f.UintVar(&below, "below", 0, "revoke the keys with an epoch below this one (required)")
	f.StringVar(&out, "out", "", "the statement file to write (required; not overwritten)")
	f.StringVar(&passFile, "passphrase-file", "", "the passphrase of an encrypted context (first line)")
	cmd.RegisterFlagCompletionFunc("role", cobra.FixedCompletions([]string{"image-signing", "update-authority"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}
