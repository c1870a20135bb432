package store

import "context"

// FleetSummary counts the fleet for the operator's dashboard.
type FleetSummary struct {
	// Devices is the number of certified devices.
	Devices int64
	// Failing is the number whose last report names a failed update.
	Failing int64
	// Versions counts the devices per running version (from their last
	// report), most devices first, at most 20.
	Versions []VersionCount
}

// VersionCount is the number of devices running one version.
type VersionCount struct {
	Version string
	Devices int64
}

// Summary is what the dashboard reads of the fleet: counts and a few
// devices, never the whole fleet. Implemented by every Store.
type Summary interface {
	// FleetSummary counts the fleet.
	FleetSummary(ctx context.Context) (*FleetSummary, error)
	// NotableDevices returns up to limit devices: the failing ones, most
	// recent report first, then the most recently seen.
	NotableDevices(ctx context.Context, limit int) ([]FleetState, error)
}
