package sdk

import (
	"io"
	"runtime"
)

// StagingSlot is the staging slot, where an application stores a
// downloaded update package before RequestUpdate. Write each byte once
// after Erase (flash rules); writes need not be aligned.
type StagingSlot struct{}

// Staging is the device's staging slot.
var Staging StagingSlot

// Size returns the capacity of the staging slot in bytes.
func (StagingSlot) Size() (int64, error) {
	r := sbmStagingSize()
	if err := check("staging_size", r); err != nil {
		return 0, err
	}
	return int64(r), nil
}

// Erase erases the whole staging slot.
func (StagingSlot) Erase() error { return check("staging_erase", sbmStagingErase()) }

// maxChunk bounds one host call of WriteAt and ReadAt.
const maxChunk = 1 << 20

// WriteAt writes p at offset off of the staging slot (io.WriterAt).
func (StagingSlot) WriteAt(p []byte, off int64) (int, error) {
	return chunked("staging_write", p, off, func(o uint32, c []byte) int32 {
		r := sbmStagingWrite(o, ptr(c), uint32(len(c)))
		runtime.KeepAlive(c)
		return r
	})
}

// ReadAt reads len(p) bytes at offset off of the staging slot
// (io.ReaderAt).
func (StagingSlot) ReadAt(p []byte, off int64) (int, error) {
	return chunked("staging_read", p, off, func(o uint32, c []byte) int32 {
		r := sbmStagingRead(o, ptr(c), uint32(len(c)))
		runtime.KeepAlive(c)
		return r
	})
}

// Writer returns a writer that writes the staging slot sequentially from
// offset 0, for example as the destination of Fetch.
func (s StagingSlot) Writer() io.Writer { return io.NewOffsetWriter(s, 0) }

func chunked(op string, p []byte, off int64, f func(uint32, []byte) int32) (int, error) {
	if off < 0 || off+int64(len(p)) > 1<<32-1 {
		return 0, &Error{Op: op, Code: CodeBadArgument}
	}
	done := 0
	for done < len(p) || len(p) == 0 {
		c := p[done:min(len(p), done+maxChunk)]
		if err := check(op, f(uint32(off)+uint32(done), c)); err != nil {
			return done, err
		}
		done += len(c)
		if len(p) == 0 {
			break
		}
	}
	return done, nil
}
