package sbm

import (
	"context"
	"errors"

	"github.com/sbm-project/sbm/hal"
	"github.com/sbm-project/sbm/vmcu"
)

func vmcuFirmware(f func(hw *hal.Hardware)) vmcu.Firmware {
	return vmcu.FirmwareFunc(func(_ context.Context, hw *hal.Hardware) { f(hw) })
}

func vmcuOpts() vmcu.PowerOnOptions { return vmcu.PowerOnOptions{} }

func errorsIs(err, target error) bool { return errors.Is(err, target) }
