package sim

// PowerOff powers the device off, as Stop does, but leaves it open: the
// caller may then act on the unpowered board — vmcu.Device.RestoreFlash,
// as someone with a clip on an external flash chip does — and power it on
// again with StartDevice(ctx, r.Device, fw), which keeps the device's UART
// endpoints and boot-log console. Afterwards r is only good for Stop, which
// then just closes the device. PowerOff returns the error that ended the
// device's run, if any.
func (r *Running) PowerOff() error {
	r.cancel()
	r.wg.Wait()
	return r.err
}
