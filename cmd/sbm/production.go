package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sbm-project/sbm/image"
	"github.com/sbm-project/sbm/internal/atomicfile"
	"github.com/sbm-project/sbm/server"
	"github.com/sbm-project/sbm/server/order"
	"github.com/sbm-project/sbm/trust"
)

func init() { commandGroups = append(commandGroups, newProductionCmd) }

func newProductionCmd(cio *cliIO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "production",
		Short: "Production orders and stations for the OEM service (docs/production.md)",
	}
	cmd.AddCommand(newProductionOrderCmd(cio), newProductionStationCmd(cio), newProductionLoadCmd(cio),
		newProductionStatusCmd(cio), newProductionRevokeCmd(cio), newProductionAuditCmd(cio))
	return cmd
}

// readStationDigest reads a station certificate (PEM, its first
// certificate; or a directory holding station.crt), checks that the
// context issued it for the station role and returns its SHA-256.
func readStationDigest(c *trust.Context, path string) ([32]byte, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, "station.crt")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return [32]byte{}, err
	}
	certs, err := trust.ParseCertificatesPEM(data)
	if err != nil || len(certs) == 0 {
		return [32]byte{}, fmt.Errorf("--station %s: not a PEM certificate", path)
	}
	if err := c.VerifyServiceCertificate(certs, trust.RoleStation, time.Now()); err != nil {
		return [32]byte{}, fmt.Errorf("--station %s: %w", path, err)
	}
	return sha256.Sum256(certs[0].Raw), nil
}

// releaseDigest verifies a package's signatures against the context and
// returns its manifest digest, with its version and security counter (for
// --json).
func releaseDigest(c *trust.Context, path string) ([32]byte, *jsonOrderRelease, error) {
	f, err := os.Open(path)
	if err != nil {
		return [32]byte{}, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return [32]byte{}, nil, err
	}
	pf, err := image.Open(f, fi.Size())
	if err != nil {
		return [32]byte{}, nil, fmt.Errorf("--release %s: %w", path, err)
	}
	v, err := image.VerifyFile(c, pf, nil)
	if err != nil {
		return [32]byte{}, nil, fmt.Errorf("--release %s: %w", path, err)
	}
	d := sha256.Sum256(pf.Manifest)
	return d, &jsonOrderRelease{Version: v.Manifest.Version, SecurityCounter: v.Manifest.SecurityCounter,
		ManifestDigest: hex.EncodeToString(d[:])}, nil
}

// jsonOrder is `sbm production order --json`: the signed order, its
// facts named as in the order's status (production status) and the
// release as in release publish.
type jsonOrder struct {
	ID        string            `json:"id"`
	VendorID  string            `json:"vendor_id"`
	ClassID   string            `json:"class_id"`
	Count     uint64            `json:"count"`
	NotBefore string            `json:"not_before"`
	NotAfter  string            `json:"not_after"`
	Stations  []string          `json:"stations"`
	Release   *jsonOrderRelease `json:"release"`
	Lines     []jsonOrderLine   `json:"lines"`
	Out       string            `json:"out"`
}

// jsonOrderRelease is the release an order names.
type jsonOrderRelease struct {
	Version         string `json:"version"`
	SecurityCounter uint32 `json:"security_counter"`
	ManifestDigest  string `json:"manifest_digest"`
}

// jsonOrderLine is one sub-quota of an order.
type jsonOrderLine struct {
	Name  string `json:"name"`
	Count uint64 `json:"count"`
}

func newProductionOrderCmd(cio *cliIO) *cobra.Command {
	var ctxDir, out, notBefore, notAfter, release, passFile string
	var stations, lines []string
	var count uint64
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "order --context DIR --count N [--not-after T] [--station CERT]... [--release PACKAGE] [--line NAME=N]... --out ORDER",
		Short: "Sign a production order with the context's root key",
		Long: `Sign a production order (docs/production.md): the context's product
(vendor and class IDs), the number of devices, the validity, the stations
allowed to provision under it (--station: a station certificate from "sbm
production station", or its directory; repeatable) and, with --release, the
package to program at birth (its signatures are checked; the order names its
manifest digest). --line NAME=N splits the count into sub-quotas per
production line. The order is a COSE_Sign1 signed by the root key; its ID is
printed.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "context", "count", "out"); err != nil {
				return err
			}
			if count == 0 {
				return usagef("--count: want at least 1")
			}
			nb, na := time.Now(), time.Time{}
			var err error
			if notBefore != "" {
				if nb, err = time.Parse(time.RFC3339, notBefore); err != nil {
					return usagef("--not-before: want RFC 3339 time like 2027-01-02T15:04:05Z: %v", err)
				}
			}
			if notAfter != "" {
				if na, err = time.Parse(time.RFC3339, notAfter); err != nil {
					return usagef("--not-after: want RFC 3339 time like 2027-01-02T15:04:05Z: %v", err)
				}
			} else {
				na = nb.AddDate(0, 0, 90)
			}
			c, err := openContext(ctxDir, passFile)
			if err != nil {
				return err
			}
			defer c.Close()
			o := order.New(c, count, nb, na)
			j := &jsonOrder{ID: o.IDString(), VendorID: o.VendorID.String(), ClassID: o.ClassID.String(), Count: o.Count,
				NotBefore: o.NotBefore.UTC().Format(time.RFC3339), NotAfter: o.NotAfter.UTC().Format(time.RFC3339),
				Stations: []string{}, Lines: []jsonOrderLine{}, Out: out}
			for _, s := range stations {
				d, err := readStationDigest(c, s)
				if err != nil {
					return err
				}
				o.Stations = append(o.Stations, d)
				j.Stations = append(j.Stations, hex.EncodeToString(d[:]))
			}
			if release != "" {
				if o.Release, j.Release, err = releaseDigest(c, release); err != nil {
					return err
				}
			}
			for _, l := range lines {
				name, n, ok := strings.Cut(l, "=")
				v, err := strconv.ParseUint(n, 10, 63)
				if !ok || name == "" || err != nil {
					return usagef("--line %q: want NAME=COUNT", l)
				}
				if o.Lines == nil {
					o.Lines = map[string]uint64{}
				}
				o.Lines[name] = v
			}
			signed, err := order.Sign(c, o)
			if err != nil {
				return err
			}
			if err := atomicfile.Create(out, signed, 0o644); err != nil {
				return err
			}
			// The context keeps every order it signed: the audit checks
			// the log against them.
			if err := os.MkdirAll(c.Path(ordersDir), 0o755); err != nil {
				return err
			}
			if err := atomicfile.Create(filepath.Join(c.Path(ordersDir), o.IDString()+".cose"), signed, 0o644); err != nil {
				return err
			}
			if asJSON {
				names := make([]string, 0, len(o.Lines))
				for name := range o.Lines {
					names = append(names, name)
				}
				sort.Strings(names)
				for _, name := range names {
					j.Lines = append(j.Lines, jsonOrderLine{Name: name, Count: o.Lines[name]})
				}
				return printJSON(cio.stdout, j)
			}
			fmt.Fprintf(cio.stdout, "order %s: %d devices, valid until %s, %d stations\n",
				o.IDString(), o.Count, o.NotAfter.UTC().Format(time.RFC3339), len(o.Stations))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&ctxDir, "context", "", "security context directory")
	f.Uint64Var(&count, "count", 0, "number of devices the order allows")
	f.StringVar(&notBefore, "not-before", "", "start of validity (RFC 3339; default now)")
	f.StringVar(&notAfter, "not-after", "", "end of validity (RFC 3339; default 90 days after the start)")
	f.StringArrayVar(&stations, "station", nil, "allowed station certificate or directory (repeatable)")
	f.StringVar(&release, "release", "", "package to program at birth")
	f.StringArrayVar(&lines, "line", nil, "sub-quota of a production line, NAME=COUNT (repeatable)")
	f.StringVar(&out, "out", "", "order file to write (never overwritten)")
	f.StringVar(&passFile, "passphrase-file", "", "file holding the context's passphrase")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

// ordersDir is the context directory holding a copy of every order signed.
const ordersDir = "orders"

func newProductionStationCmd(cio *cliIO) *cobra.Command {
	var ctxDir, name, out, passFile string
	cmd := &cobra.Command{
		Use:   "station --context DIR --name NAME --out DIR",
		Short: "Issue a station's certificate and key (its identity at the contract manufacturer)",
		Long: `Issue a provisioning station's credential: a new key and a certificate for
the station role signed by the context's device CA, written to DIR/station.crt
and DIR/station.key (mode 0600, not encrypted: it goes to the station, whose
key may later live in the CM's token). Name the certificate in an order with
"sbm production order --station DIR/station.crt". The certificate's SHA-256
is printed.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "context", "name", "out"); err != nil {
				return err
			}
			c, err := openContext(ctxDir, passFile)
			if err != nil {
				return err
			}
			defer c.Close()
			cred, err := c.IssueServiceCertificate(trust.RoleStation, name, nil, trust.CredentialCertValidity)
			if err != nil {
				return err
			}
			if err := cred.Save(out, "station", nil); err != nil {
				return err
			}
			d := cred.Digest()
			fmt.Fprintf(cio.stdout, "station %s: %s\n", name, hex.EncodeToString(d[:]))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&ctxDir, "context", "", "security context directory")
	f.StringVar(&name, "name", "", "the station's name")
	f.StringVar(&out, "out", "", "directory to write station.crt and station.key to")
	f.StringVar(&passFile, "passphrase-file", "", "file holding the context's passphrase")
	return cmd
}

type serverFlags struct{ url, ctxDir, passFile string }

func (sf *serverFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&sf.url, "server", "", "service URL (https://HOST:PORT)")
	f.StringVar(&sf.ctxDir, "context", "", "security context directory (its operator credential authenticates)")
	f.StringVar(&sf.passFile, "passphrase-file", "", "file holding the context's passphrase")
}

func printOrderStatus(cio *cliIO, st *server.OrderStatus) {
	fmt.Fprintf(cio.stdout, "order %s %s: count %d, used %d, spoiled %d, remaining %d\n",
		st.ID, st.State, st.Count, st.Used, st.Spoiled, st.Remaining)
}

func newProductionLoadCmd(cio *cliIO) *cobra.Command {
	var sf serverFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "load --server URL --context DIR ORDER",
		Short: "Activate a signed order on the service",
		Long: `Send a signed order to the service, which verifies it (signed by the root
key of its context, for its product, within its validity) and activates it.
A duplicate, expired or foreign-signed order is refused.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			signed, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			cl, done, err := sf.operator(cmd)
			if err != nil {
				return err
			}
			defer done()
			st, err := cl.LoadOrder(cmd.Context(), signed)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cio.stdout, st)
			}
			printOrderStatus(cio, st)
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the order's status as JSON")
	return cmd
}

func newProductionStatusCmd(cio *cliIO) *cobra.Command {
	var sf serverFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status --server URL --context DIR [--json]",
		Short: "Show every order's count, used, spoiled and remaining devices",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, done, err := sf.operator(cmd)
			if err != nil {
				return err
			}
			defer done()
			orders, err := cl.Orders(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				if orders == nil {
					orders = []server.OrderStatus{}
				}
				return printJSON(cio.stdout, server.OrderList{Orders: orders})
			}
			tw := tabwriter.NewWriter(cio.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATE\tCOUNT\tUSED\tSPOILED\tREMAINING\tNOT AFTER")
			for _, o := range orders {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\n", o.ID, o.State, o.Count, o.Used, o.Spoiled, o.Remaining,
					o.NotAfter.UTC().Format(time.RFC3339))
				for _, l := range o.Lines {
					fmt.Fprintf(tw, "  line %s\t\t%d\t%d\t%d\t%d\t\n", l.Name, l.Count, l.Used, l.Spoiled, l.Remaining)
				}
			}
			return tw.Flush()
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the orders as JSON")
	return cmd
}

func newProductionRevokeCmd(cio *cliIO) *cobra.Command {
	var sf serverFlags
	cmd := &cobra.Command{
		Use:   "revoke --server URL --context DIR (ORDER_ID | ORDER_FILE)",
		Short: "Revoke an order: the service certifies no more devices under it",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if signed, err := os.ReadFile(id); err == nil {
				o, err := order.Parse(signed)
				if err != nil {
					return fmt.Errorf("%s: %w", id, err)
				}
				id = o.IDString()
			}
			cl, done, err := sf.operator(cmd)
			if err != nil {
				return err
			}
			defer done()
			st, err := cl.RevokeOrder(cmd.Context(), id)
			if err != nil {
				return err
			}
			printOrderStatus(cio, st)
			return nil
		},
	}
	sf.register(cmd)
	return cmd
}

// operator checks --server and --context and returns a client of the
// service authenticated as the context's operator, and what closes it.
func (sf *serverFlags) operator(cmd *cobra.Command) (*server.Client, func(), error) {
	if err := requireFlags(cmd, "server", "context"); err != nil {
		return nil, nil, err
	}
	cl, c, err := operatorClient(sf.ctxDir, sf.passFile, sf.url)
	if err != nil {
		return nil, nil, err
	}
	return cl, func() { cl.Close(); c.Close() }, nil
}
