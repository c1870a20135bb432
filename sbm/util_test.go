package sbm

import (
	"context"
	"crypto/x509"
	"errors"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/vmcu"
)

func vmcuFirmware(f func(hw *hal.Hardware)) vmcu.Firmware {
	return vmcu.FirmwareFunc(func(_ context.Context, hw *hal.Hardware) { f(hw) })
}

func vmcuOpts() vmcu.PowerOnOptions { return vmcu.PowerOnOptions{} }

func errorsIs(err, target error) bool { return errors.Is(err, target) }

func parseCSR(der []byte) (*x509.CertificateRequest, error) {
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, err
	}
	return csr, csr.CheckSignature()
}
