//go:build wasip1

package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/sbm-project/sbm/sdk"
)

func info([]string) error {
	b, err := sdk.BootInfo()
	if err != nil {
		return err
	}
	fmt.Printf("application %s on SBM %s\n", b.AppVersion, b.SBMVersion)
	fmt.Printf("device %s, %s, security counter %d\n", b.DeviceIDString(), b.LifecycleName(), b.SecurityCounter)
	fmt.Printf("measurement %x\n", b.AppDigest)
	switch {
	case !b.ServicesAvailable:
		fmt.Println("last update: unknown (services unavailable)")
	case b.LastUpdate != sdk.CodeOK:
		fmt.Printf("last update: refused: %s: %s\n", b.LastUpdate, b.LastUpdateDetail)
	case b.UpdatedThisBoot:
		fmt.Println("last update: installed at this boot")
	default:
		fmt.Println("last update: none")
	}
	return nil
}

func hexArg(args []string, what string) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("want one argument: %s in hex", what)
	}
	b, err := hex.DecodeString(args[0])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return b, nil
}

func attest(args []string) error {
	nonce, err := hexArg(args, "nonce")
	if err != nil {
		return err
	}
	tok, err := sdk.Attest(nonce)
	if err != nil {
		return err
	}
	fmt.Printf("token %x\n", tok)
	return nil
}

func sign(args []string) error {
	d, err := hexArg(args, "sha-256 digest")
	if err != nil {
		return err
	}
	if len(d) != 32 {
		return errors.New("the digest must be 32 bytes")
	}
	sig, err := sdk.Sign([32]byte(d))
	if err != nil {
		return err
	}
	fmt.Printf("signature %x\n", sig)
	return nil
}

func chain([]string) error {
	certs, err := sdk.CertificateChain()
	if err != nil {
		return err
	}
	fmt.Printf("chain: %d certificates\n", len(certs))
	if err := sdk.VerifyChain(certs); err != nil {
		return fmt.Errorf("verifying the chain: %w", err)
	}
	fmt.Println("chain: verified against the trust anchors")
	return nil
}

func update(args []string) error {
	if len(args) != 1 && len(args) != 2 {
		return errors.New("want the package URL and optionally the URL of this device's UPK")
	}
	var upk []byte
	if len(args) == 2 {
		fmt.Printf("update: fetching the upk %s\n", args[1])
		rc, err := sdk.Open(args[1])
		if err != nil {
			return fmt.Errorf("upk: %w", err)
		}
		upk, err = io.ReadAll(io.LimitReader(rc, maxUPK+1))
		rc.Close()
		switch {
		case err != nil:
			return fmt.Errorf("upk: %w", err)
		case len(upk) == 0 || len(upk) > maxUPK:
			return fmt.Errorf("upk: %d bytes", len(upk))
		}
	}
	size, err := sdk.Staging.Size()
	if err != nil {
		return err
	}
	fmt.Printf("update: erasing the staging slot (%d bytes)\n", size)
	if err := sdk.Staging.Erase(); err != nil {
		return err
	}
	fmt.Printf("update: downloading %s\n", args[0])
	var w io.Writer = sdk.Staging.Writer()
	var sp *sdk.UPKSplicer
	if upk != nil {
		sp = sdk.SpliceUPK(w, upk)
		w = sp
	}
	n, err := sdk.Fetch(args[0], w)
	if err != nil {
		return fmt.Errorf("download: %w", err)
	}
	if sp != nil && !sp.Done() {
		return fmt.Errorf("download: %w", sdk.ErrNotPackage)
	}
	fmt.Printf("update: %d bytes staged; requesting the update\n", n)
	if err := sdk.RequestUpdate(); err != nil {
		return fmt.Errorf("request update: %w", err)
	}
	fmt.Println("update: requested")
	return nil
}

// maxUPK bounds a UPK (the SBM's limit, secpkg.MaxUPKSize).
const maxUPK = 2048

// reportContentType is the media type of a COSE_Sign1 (RFC 9052 §9).
const reportContentType = `application/cose; cose-type="cose-sign1"`

// makeReport returns an install report for the optional nonce argument.
func makeReport(args []string) ([]byte, error) {
	var nonce []byte
	if len(args) > 1 {
		return nil, errors.New("want at most one argument: a nonce in hex")
	}
	if len(args) == 1 {
		var err error
		if nonce, err = hex.DecodeString(args[0]); err != nil {
			return nil, fmt.Errorf("nonce: %w", err)
		}
	}
	return sdk.Report(nonce)
}

func report(args []string) error {
	rep, err := makeReport(args)
	if err != nil {
		return err
	}
	fmt.Printf("report %x\n", rep)
	return nil
}

func sendReport(args []string) error {
	if len(args) < 1 {
		return errors.New("want the URL to post the report to, then optionally a nonce in hex")
	}
	rep, err := makeReport(args[1:])
	if err != nil {
		return err
	}
	rc, err := sdk.Post(args[0], reportContentType, rep)
	if err != nil {
		return fmt.Errorf("post: %w", err)
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, io.LimitReader(rc, 1<<20))
	if err != nil {
		return fmt.Errorf("post: %w", err)
	}
	fmt.Printf("report: %d bytes posted, %d bytes answered\n", len(rep), n)
	return nil
}

func recovery([]string) error {
	return sdk.RequestRecovery()
}
