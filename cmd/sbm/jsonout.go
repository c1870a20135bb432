package main

// The JSON the commands print with --json. Every command uses these types,
// so the same fact has one name everywhere; docs/cli.md lists every field
// (and TestJSONSchema checks the output of every command against it).
//
// Conventions: names are snake_case; a device ID is always "device_id", a
// SHA-256 measurement "measurement" (of the SBM region under "sbm", of the
// application image under "application"); sizes are bytes; times are RFC
// 3339 strings; hashes and key IDs are lowercase hex. A field never
// disappears: a value that does not apply or is not known is null.

import (
	"encoding/hex"
	"time"

	"github.com/sbm-project/sbm/attest/verifier"
	"github.com/sbm-project/sbm/image"
	"github.com/sbm-project/sbm/internal/firmware"
	"github.com/sbm-project/sbm/server"
	"github.com/sbm-project/sbm/sim"
	"github.com/sbm-project/sbm/trust"
	"github.com/sbm-project/sbm/vmcu"
)

// strOrNil returns nil for "", else a pointer to s.
func strOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// jsonSBM is the Secure Boot Manager as a device (or the tool) reports it.
type jsonSBM struct {
	// Measurement is SHA-256 of the whole SBM region (sbm.Measurement).
	Measurement *string `json:"measurement"`
	// Version is the SBM's version, when known.
	Version *string `json:"version"`
}

// jsonFlash is a flash geometry.
type jsonFlash struct {
	Size      uint32 `json:"size"`
	Sectors   int    `json:"sectors"`
	WriteSize uint32 `json:"write_size"`
	Erased    byte   `json:"erased"`
	Location  string `json:"location"`
	Endurance uint32 `json:"endurance"`
}

// jsonRegion is one region of a memory map.
type jsonRegion struct {
	Name  string `json:"name"`
	Start uint32 `json:"start"`
	Size  uint32 `json:"size"`
}

// jsonLocks is the state of the lock fuses.
type jsonLocks struct {
	Debug           bool   `json:"debug"`
	SBMWriteProtect bool   `json:"sbm_write_protect"`
	SecureHidden    bool   `json:"secure_hidden"`
	Word            uint32 `json:"word"`
}

// jsonWear summarises the sectors' erase counts.
type jsonWear struct {
	TotalErases uint64   `json:"total_erases"`
	MaxErases   uint32   `json:"max_erases"`
	MaxSector   uint32   `json:"max_sector"`
	WornOut     []uint32 `json:"worn_out"`
}

// jsonPowerCut is an armed power cut.
type jsonPowerCut struct {
	At   uint64  `json:"at"`
	Torn bool    `json:"torn"`
	Seed *uint64 `json:"seed"`
}

// jsonInstalledApp is the application in a device's signature table.
type jsonInstalledApp struct {
	Version         string  `json:"version"`
	SecurityCounter uint32  `json:"security_counter"`
	Size            uint32  `json:"size"`
	Measurement     string  `json:"measurement"`
	ManifestDigest  string  `json:"manifest_digest"`
	Signer          *string `json:"signer"`
}

// jsonOutcome is a result code with its reason.
type jsonOutcome struct {
	Code   uint8   `json:"code"`
	Reason string  `json:"reason"`
	Detail *string `json:"detail"`
}

// jsonDeviceInfo is `sbm device info --json`.
type jsonDeviceInfo struct {
	DeviceID         string        `json:"device_id"`
	Board            string        `json:"board"`
	BoardDescription string        `json:"board_description"`
	Flash            jsonFlash     `json:"flash"`
	RAMSize          uint32        `json:"ram_size"`
	Regions          []jsonRegion  `json:"regions"`
	Locks            jsonLocks     `json:"locks"`
	RootKeyHash      *string       `json:"root_key_hash"`
	Counters         []int         `json:"counters"`
	Wear             jsonWear      `json:"wear"`
	BadSectors       []uint32      `json:"bad_sectors"`
	PowerCut         *jsonPowerCut `json:"power_cut"`
	Running          bool          `json:"running"`

	Lifecycle       string            `json:"lifecycle"`
	SBM             jsonSBM           `json:"sbm"`
	Certificate     *string           `json:"certificate"`
	Application     *jsonInstalledApp `json:"application"`
	SecurityCounter uint32            `json:"security_counter"`
	InstallPending  bool              `json:"install_pending"`
	UpdateRequested bool              `json:"update_requested"`
	LastUpdate      *jsonOutcome      `json:"last_update"`
	LastError       *jsonOutcome      `json:"last_error"`
}

// flashJSON converts a device's flash geometry.
func flashJSON(g vmcu.FlashInfo) jsonFlash {
	return jsonFlash{Size: g.Size, Sectors: g.Sectors, WriteSize: g.WriteSize, Erased: g.Erased, Location: g.Location, Endurance: g.Endurance}
}

// deviceInfoJSON converts the device information to its JSON form.
func deviceInfoJSON(in *deviceInfo) *jsonDeviceInfo {
	hw := in.Info
	j := &jsonDeviceInfo{
		DeviceID: hw.ID, Board: hw.Board, BoardDescription: hw.Description,
		Flash: flashJSON(hw.Flash), RAMSize: hw.RAMSize, Regions: []jsonRegion{},
		Locks:       jsonLocks{Debug: hw.Locks.Debug, SBMWriteProtect: hw.Locks.SBMWriteProtect, SecureHidden: hw.Locks.SecureHidden, Word: hw.Locks.Word},
		RootKeyHash: strOrNil(hw.RootKeyHash), Counters: hw.Counters[:],
		Wear:       jsonWear{TotalErases: hw.Wear.TotalErases, MaxErases: hw.Wear.MaxErases, MaxSector: hw.Wear.MaxSector, WornOut: nonNil(hw.Wear.WornOut)},
		BadSectors: nonNil(hw.BadSectors), Running: hw.Running,

		Lifecycle: in.Lifecycle, SBM: jsonSBM{Measurement: strOrNil(in.SBMMeasurement), Version: strOrNil(in.SBMVersion)},
		Certificate: strOrNil(in.Certificate), SecurityCounter: in.SecurityCounter,
		InstallPending: in.InstallPending, UpdateRequested: in.UpdateRequested,
		LastUpdate: outcomeJSON(in.LastUpdate), LastError: outcomeJSON(in.LastError),
	}
	for _, r := range hw.Regions {
		j.Regions = append(j.Regions, jsonRegion{Name: r.Name, Start: r.Start, Size: r.Size})
	}
	if c := hw.PowerCut; c != nil {
		j.PowerCut = &jsonPowerCut{At: c.At, Torn: c.Torn}
		if c.Torn {
			seed := c.Seed
			j.PowerCut.Seed = &seed
		}
	}
	if a := in.Application; a != nil {
		j.Application = &jsonInstalledApp{Version: a.Version, SecurityCounter: a.SecurityCounter, Size: a.Size,
			Measurement: a.Measurement, ManifestDigest: a.ManifestDigest, Signer: strOrNil(a.Signer)}
	}
	return j
}

func outcomeJSON(o *outcome) *jsonOutcome {
	if o == nil {
		return nil
	}
	return &jsonOutcome{Code: o.Code, Reason: o.Result, Detail: strOrNil(o.Detail)}
}

// nonNil returns s, or an empty slice if s is nil, so that it encodes as
// [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// jsonBoard is one board of `sbm device boards --json`.
type jsonBoard struct {
	Board            string       `json:"board"`
	BoardDescription string       `json:"board_description"`
	Flash            jsonFlash    `json:"flash"`
	SectorRuns       []jsonRun    `json:"sector_runs"`
	RAMSize          uint32       `json:"ram_size"`
	Regions          []jsonRegion `json:"regions"`
}

// jsonRun is a run of equal sectors.
type jsonRun struct {
	Count uint32 `json:"count"`
	Size  uint32 `json:"size"`
}

// jsonBoards is `sbm device boards --json`.
type jsonBoards struct {
	Boards []jsonBoard `json:"boards"`
}

// boardJSON converts a board to its JSON form.
func boardJSON(b *vmcu.Board) jsonBoard {
	g := &b.Geometry
	j := jsonBoard{
		Board: b.Name, BoardDescription: b.Description,
		Flash: jsonFlash{Size: g.Size, Sectors: len(g.Sectors), WriteSize: g.WriteSize, Erased: g.Erased,
			Location: b.FlashLocation.String(), Endurance: b.EnduranceCycles()},
		SectorRuns: []jsonRun{}, RAMSize: b.RAMSize, Regions: []jsonRegion{},
	}
	for _, r := range b.SectorRuns {
		j.SectorRuns = append(j.SectorRuns, jsonRun{Count: r.Count, Size: r.Size})
	}
	for _, r := range g.Regions {
		j.Regions = append(j.Regions, jsonRegion{Name: r.Kind.String(), Start: r.Start, Size: r.Size})
	}
	return j
}

// jsonPackageApp is the application a package carries, as its manifest
// describes it.
type jsonPackageApp struct {
	Version         string  `json:"version"`
	SecurityCounter uint32  `json:"security_counter"`
	Size            uint32  `json:"size"`
	Measurement     string  `json:"measurement"`
	Format          *string `json:"format"`
	LoadAddress     *uint32 `json:"load_address"`
	// Signer is the key ID of the image-signing key of the manifest.
	Signer         string `json:"signer"`
	ManifestDigest string `json:"manifest_digest"`
}

// jsonEncryption is how a package's payload is encrypted.
type jsonEncryption struct {
	Algorithm string `json:"algorithm"`
	ChunkSize uint32 `json:"chunk_size"`
	Chunks    uint32 `json:"chunks"`
}

// jsonUPK describes a UPK.
type jsonUPK struct {
	UPKID          string    `json:"upk_id"`
	Recipient      string    `json:"recipient"`
	DeviceID       *string   `json:"device_id"`
	RecipientKeyID string    `json:"recipient_key_id"`
	NotBefore      time.Time `json:"not_before"`
	NotAfter       time.Time `json:"not_after"`
	Signer         string    `json:"signer"`
	// BoundToManifest reports whether a UPK inside a package names that
	// package's manifest; null for a bare UPK (there is no package).
	BoundToManifest *bool `json:"bound_to_manifest"`
}

// jsonPackage is `sbm image inspect --json` of a package.
type jsonPackage struct {
	Kind         string         `json:"kind"`
	VendorID     string         `json:"vendor_id"`
	ClassID      string         `json:"class_id"`
	Slot         string         `json:"slot"`
	Created      time.Time      `json:"created"`
	Application  jsonPackageApp `json:"application"`
	Encryption   jsonEncryption `json:"encryption"`
	ManifestSize int            `json:"manifest_size"`
	PackageSize  int            `json:"package_size"`
	UPKs         []jsonUPK      `json:"upks"`
}

// jsonBareUPK is `sbm image inspect --json` of a UPK file.
type jsonBareUPK struct {
	Kind string  `json:"kind"`
	UPK  jsonUPK `json:"upk"`
}

// packageJSON converts a package description.
func packageJSON(d *image.Description) *jsonPackage {
	j := &jsonPackage{
		Kind: "package", VendorID: d.VendorID, ClassID: d.ClassID, Slot: d.Slot, Created: d.Created,
		Application: jsonPackageApp{Version: d.Version, SecurityCounter: d.SecurityCounter, Size: d.PayloadSize,
			Measurement: d.PayloadSHA256, Format: strOrNil(d.SourceFormat), LoadAddress: d.LoadAddress,
			Signer: d.Signer, ManifestDigest: d.ManifestDigest},
		Encryption:   jsonEncryption{Algorithm: d.Encryption, ChunkSize: d.ChunkSize, Chunks: d.Chunks},
		ManifestSize: d.ManifestSize, PackageSize: d.PackageSize,
		UPKs: []jsonUPK{},
	}
	for _, u := range d.UPKs {
		ju := upkJSON(&u)
		bound := u.BoundToManifest
		ju.BoundToManifest = &bound
		j.UPKs = append(j.UPKs, ju)
	}
	return j
}

// upkJSON converts a UPK description (BoundToManifest is left null).
func upkJSON(u *image.UPKInfo) jsonUPK {
	return jsonUPK{UPKID: u.ID, Recipient: u.Recipient, DeviceID: strOrNil(u.DeviceID), RecipientKeyID: u.KeyID,
		NotBefore: u.NotBefore, NotAfter: u.NotAfter, Signer: u.Signer}
}

// jsonAttestedApp is the application an attestation token reports.
type jsonAttestedApp struct {
	Version         string       `json:"version"`
	SecurityCounter *uint32      `json:"security_counter"`
	Measurement     string       `json:"measurement"`
	Signer          *string      `json:"signer"`
	Release         *jsonRelease `json:"release"`
}

// jsonRelease is the context release an application matched.
type jsonRelease struct {
	Version        string `json:"version"`
	ManifestDigest string `json:"manifest_digest"`
}

// jsonAttestation is `sbm attest verify --json`.
type jsonAttestation struct {
	DeviceID    string           `json:"device_id"`
	Board       *string          `json:"board"`
	Lifecycle   string           `json:"lifecycle"`
	Nonce       string           `json:"nonce"`
	BootSeed    *string          `json:"boot_seed"`
	SBM         jsonSBM          `json:"sbm"`
	Application *jsonAttestedApp `json:"application"`
}

// attestationJSON converts a verified token.
func attestationJSON(r *verifier.Result) *jsonAttestation {
	j := &jsonAttestation{
		DeviceID: r.Device, Board: strOrNil(r.Board), Lifecycle: r.Lifecycle, Nonce: r.Nonce, BootSeed: strOrNil(r.BootSeed),
		SBM: jsonSBM{Measurement: strOrNil(r.SBM.Measurement), Version: strOrNil(r.SBM.Version)},
	}
	if a := r.Application; a != nil {
		j.Application = &jsonAttestedApp{Version: a.Version, SecurityCounter: a.SecurityCounter, Measurement: a.Measurement, Signer: strOrNil(a.Signer)}
		if a.Release != nil {
			j.Application.Release = &jsonRelease{Version: a.Release.Version, ManifestDigest: a.Release.ManifestDigest}
		}
	}
	return j
}

// jsonAttestRequest is `sbm attest request --json`.
type jsonAttestRequest struct {
	DeviceID string `json:"device_id"`
	Nonce    string `json:"nonce"`
	Out      string `json:"out"`
	Bytes    int    `json:"bytes"`
}

// jsonTorture is `sbm device torture --json`.
type jsonTorture struct {
	Board       string            `json:"board"`
	Application jsonTortureApp    `json:"application"`
	Seed        uint64            `json:"seed"`
	Sweep       string            `json:"sweep"`
	Seconds     float64           `json:"seconds"`
	Scenarios   []jsonTortureScen `json:"scenarios"`
	Passed      int               `json:"passed"`
	Failed      int               `json:"failed"`
}

// jsonTortureApp is the application a torture sweep installs.
type jsonTortureApp struct {
	Size int `json:"size"`
}

// jsonTortureScen is one scenario of a torture sweep.
type jsonTortureScen struct {
	Scenario  string               `json:"scenario"`
	Skipped   *string              `json:"skipped"`
	Ops       int                  `json:"ops"`
	CutPoints int                  `json:"cut_points"`
	Runs      int                  `json:"runs"`
	Passed    int                  `json:"passed"`
	Failed    int                  `json:"failed"`
	Resumed   int                  `json:"resumed"`
	ExtraCuts int                  `json:"extra_cuts"`
	Seconds   float64              `json:"seconds"`
	Failures  []jsonTortureFailure `json:"failures"`
}

// jsonTortureFailure is one failed run of a torture sweep.
type jsonTortureFailure struct {
	At       int     `json:"at"`
	Torn     bool    `json:"torn"`
	TornSeed *uint64 `json:"torn_seed"`
	Reason   string  `json:"reason"`
	Rerun    string  `json:"rerun"`
	Scenario string  `json:"scenario"`
}

// tortureJSON converts a torture report.
func tortureJSON(rep *sim.TortureReport) *jsonTorture {
	j := &jsonTorture{Board: rep.Board, Application: jsonTortureApp{Size: rep.Size}, Seed: rep.Seed, Sweep: "reduced",
		Seconds: rep.Duration.Seconds(), Scenarios: []jsonTortureScen{}, Passed: rep.Passed, Failed: rep.Failed}
	if rep.Exhaustive {
		j.Sweep = "exhaustive"
	}
	for _, s := range rep.Scenarios {
		js := jsonTortureScen{Scenario: s.Name, Skipped: strOrNil(s.Skipped), Ops: s.Ops, CutPoints: s.CutPoints, Runs: s.Runs,
			Passed: s.Passed, Failed: s.Failed, Resumed: s.Resumed, ExtraCuts: s.ExtraCuts, Seconds: s.Duration.Seconds(),
			Failures: []jsonTortureFailure{}}
		for _, f := range s.Failures {
			jf := jsonTortureFailure{Scenario: f.Scenario, At: f.At, Torn: f.Torn, Reason: f.Reason, Rerun: tortureRerun(rep, f)}
			if f.Torn {
				seed := f.TornSeed
				jf.TornSeed = &seed
			}
			js.Failures = append(js.Failures, jf)
		}
		j.Scenarios = append(j.Scenarios, js)
	}
	return j
}

// jsonVersion is `sbm version --json`.
type jsonVersion struct {
	Module        string  `json:"module"`
	ModuleVersion string  `json:"module_version"`
	GoVersion     string  `json:"go_version"`
	VCSRevision   *string `json:"vcs_revision"`
	VCSTime       *string `json:"vcs_time"`
	VCSModified   *bool   `json:"vcs_modified"`
	// SBM is the SBM that sbm provision installs.
	SBM struct {
		Version string `json:"version"`
	} `json:"sbm"`
}

// jsonContext is `sbm context show --json`. It holds no secrets.
type jsonContext struct {
	Dir          string    `json:"dir"`
	Suite        string    `json:"suite"`
	VendorID     string    `json:"vendor_id"`
	ClassID      string    `json:"class_id"`
	Organization string    `json:"organization"`
	Created      time.Time `json:"created"`
	Encrypted    bool      `json:"encrypted"`
	Keystore     string    `json:"keystore"`
	Token        *string   `json:"token"`

	RootKeyID            string `json:"root_key_id"`
	ImageSigningKeyID    string `json:"image_signing_key_id"`
	UpdateAuthorityKeyID string `json:"update_authority_key_id"`
	ClassKeyID           string `json:"class_key_id"`
	EscrowKeyID          string `json:"escrow_key_id"`
	RootCertificate      string `json:"root_certificate"`
	DeviceCACertificate  string `json:"device_ca_certificate"`
	CAChain              string `json:"ca_chain"`
}

// contextJSON converts a context summary.
func contextJSON(in *trust.Info) *jsonContext {
	return &jsonContext{
		Dir: in.Dir, Suite: string(in.Suite), VendorID: in.VendorID.String(), ClassID: in.ClassID.String(),
		Organization: in.Organization, Created: in.Created, Encrypted: in.Encrypted,
		Keystore: string(in.Keystore), Token: strOrNil(in.Token),
		RootKeyID: in.RootKeyID, ImageSigningKeyID: in.ImageSigningKeyID, UpdateAuthorityKeyID: in.UpdateAuthorityKeyID,
		ClassKeyID: in.ClassKeyID, EscrowKeyID: in.EscrowKeyID,
		RootCertificate: in.RootCertificate, DeviceCACertificate: in.DeviceCACertificate, CAChain: in.CAChain,
	}
}

// jsonCreated is `sbm image create --json`.
type jsonCreated struct {
	Out         string         `json:"out"`
	Application jsonCreatedApp `json:"application"`
	PackageSize int64          `json:"package_size"`
}

// jsonCreatedApp is the application a new package carries.
type jsonCreatedApp struct {
	Version         string  `json:"version"`
	SecurityCounter uint32  `json:"security_counter"`
	Size            int64   `json:"size"`
	Measurement     string  `json:"measurement"`
	Format          string  `json:"format"`
	LoadAddress     *uint32 `json:"load_address"`
	ManifestDigest  string  `json:"manifest_digest"`
}

// createdJSON describes the package image create wrote to out.
func createdJSON(out string, opts *image.CreateOptions, res *image.Created, in *firmware.File) *jsonCreated {
	j := &jsonCreated{Out: out, PackageSize: res.Size, Application: jsonCreatedApp{
		Version: opts.Version, SecurityCounter: opts.SecurityCounter, Size: in.Size,
		Measurement: hex.EncodeToString(res.PayloadDigest[:]), Format: string(in.Format),
		ManifestDigest: hex.EncodeToString(res.ManifestDigest[:]),
	}}
	if in.HasLoadAddress {
		la := in.LoadAddress
		j.Application.LoadAddress = &la
	}
	return j
}

// jsonProvisioned is `sbm provision --json`: the device's production
// record.
type jsonProvisioned struct {
	DeviceID    string           `json:"device_id"`
	Board       *string          `json:"board"`
	Lifecycle   string           `json:"lifecycle"`
	SBM         jsonProvisionSBM `json:"sbm"`
	Certificate string           `json:"certificate"`
}

// jsonProvisionSBM is the SBM provisioning installed.
type jsonProvisionSBM struct {
	Measurement *string `json:"measurement"`
}

// provisionedJSON converts a production record.
func provisionedJSON(r *trust.DeviceRecord) *jsonProvisioned {
	j := &jsonProvisioned{DeviceID: r.ID, Board: strOrNil(r.Board), Lifecycle: "provisioned",
		SBM: jsonProvisionSBM{Measurement: strOrNil(r.SBMMeasurement)}, Certificate: r.Certificate}
	if r.Locked {
		j.Lifecycle = "locked"
	}
	return j
}

// jsonNewDevice is `sbm device new --json`.
type jsonNewDevice struct {
	DeviceID string `json:"device_id"`
	Board    string `json:"board"`
	Dir      string `json:"dir"`
}

// jsonIssuedUPK is `sbm upk issue --json`.
type jsonIssuedUPK struct {
	Out string  `json:"out"`
	UPK jsonUPK `json:"upk"`
}

// jsonRollout is a rollout as `sbm rollout start|set|pause|resume|abort|
// status --json` prints it (and each element of `rollout list --json`).
type jsonRollout struct {
	RolloutID   string      `json:"rollout_id"`
	Release     jsonRelease `json:"release"`
	Cohort      *string     `json:"cohort"`
	State       string      `json:"state"`
	Percent     float64     `json:"percent"`
	MaxFailures *string     `json:"max_failures"`
	Targeted    int64       `json:"targeted"`
	Downloaded  int64       `json:"downloaded"`
	Updated     int64       `json:"updated"`
	Failed      int64       `json:"failed"`
	Created     time.Time   `json:"created"`
}

func newJSONRollout(st *server.RolloutStatus) jsonRollout {
	return jsonRollout{RolloutID: st.ID, Release: jsonRelease{Version: st.Release, ManifestDigest: st.ManifestDigest},
		Cohort: strOrNil(st.Cohort), State: st.State, Percent: st.Percent, MaxFailures: strOrNil(st.MaxFailures),
		Targeted: st.Targeted, Downloaded: st.Downloaded, Updated: st.Updated, Failed: st.Failed, Created: st.Created.UTC()}
}

// jsonRollouts is `sbm rollout list --json`.
type jsonRollouts struct {
	Rollouts []jsonRollout `json:"rollouts"`
}

// jsonFleet is `sbm fleet list --json`.
type jsonFleet struct {
	Fleet []jsonFleetDevice `json:"fleet"`
}

// jsonFleetDevice is one certified device as the update service sees it.
type jsonFleetDevice struct {
	DeviceID string `json:"device_id"`
	// Application is the running application its last report named; nil
	// before its first report.
	Application *jsonRelease `json:"application"`
	LastSeen    *time.Time   `json:"last_seen"`
	LastReport  *time.Time   `json:"last_report"`
	Result      *int         `json:"result"`
	Detail      *string      `json:"detail"`
	Revoked     bool         `json:"revoked"`
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func newJSONFleetDevice(d *server.FleetDevice) jsonFleetDevice {
	j := jsonFleetDevice{DeviceID: d.DeviceID, LastSeen: timeOrNil(d.LastSeen), LastReport: timeOrNil(d.LastReport),
		Result: d.Result, Detail: strOrNil(d.Detail), Revoked: d.Revoked}
	if d.Version != "" || d.ManifestDigest != "" {
		j.Application = &jsonRelease{Version: d.Version, ManifestDigest: d.ManifestDigest}
	}
	return j
}
