package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/sbm-project/sbm/image"
	"github.com/sbm-project/sbm/internal/atomicfile"
	"github.com/sbm-project/sbm/internal/firmware"
	"github.com/sbm-project/sbm/internal/secpkg"
	"github.com/sbm-project/sbm/trust"
)

// The host commands stream packages: image create, image verify
// [--extract], image inspect and upk issue hold a few chunk buffers and the
// package's records, never the payload, so their memory does not depend on
// the image size (ELF and Intel HEX inputs excepted: see firmware.Open).

// createPackageFile packages the input file in (format f) into the package
// file out, streaming, and saves the escrow record in the context. out
// appears only if everything succeeded.
func createPackageFile(c *trust.Context, in string, f firmware.Format, out string, opts *image.CreateOptions) (*image.Created, *firmware.File, error) {
	src, err := firmware.Open(in, f)
	if err != nil {
		if _, ok := err.(*fs.PathError); ok {
			return nil, nil, err // it names the file
		}
		return nil, nil, fmt.Errorf("%s: %w", in, err)
	}
	defer src.Close()
	dst, err := atomicfile.New(out, 0o644)
	if err != nil {
		return nil, nil, err
	}
	defer dst.Abort()
	res, err := image.CreateTo(c, &image.Source{R: src, Size: src.Size, Format: src.Format, LoadAddress: src.LoadAddress, HasLoadAddress: src.HasLoadAddress}, dst, opts)
	if err != nil {
		return nil, nil, err
	}
	rel := &trust.Release{
		ManifestDigest: hex.EncodeToString(res.ManifestDigest[:]), Version: opts.Version, SecurityCounter: opts.SecurityCounter,
		PayloadSHA256: hex.EncodeToString(res.PayloadDigest[:]), PayloadSize: uint32(src.Size), Created: time.Now().UTC().Truncate(time.Second),
	}
	if err := c.SaveRelease(rel, res.Escrow); err != nil {
		return nil, nil, fmt.Errorf("save escrow record: %w", err)
	}
	if err := dst.Commit(); err != nil {
		return nil, nil, err
	}
	return res, src, nil
}

// packageFile is a package file opened for streaming.
type packageFile struct {
	*image.File
	f *os.File
}

// Close closes the file.
func (p *packageFile) Close() error { return p.f.Close() }

// openPackage opens the package file at path, reading its records but not
// its payload.
func openPackage(path string) (*packageFile, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := fd.Stat()
	switch {
	case err != nil:
	case fi.IsDir():
		err = fmt.Errorf("%s is a directory", path)
	case fi.Size() == 0:
		err = fmt.Errorf("%s: empty file", path)
	}
	if err != nil {
		fd.Close()
		return nil, err
	}
	p, err := image.Open(fd, fi.Size())
	if err != nil {
		fd.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &packageFile{File: p, f: fd}, nil
}

// inspectPath describes the package, or the bare UPK, at path.
func inspectPath(path string) (*image.Description, *image.UPKInfo, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer fd.Close()
	if fi, err := fd.Stat(); err != nil || fi.IsDir() || fi.Size() == 0 {
		// openPackage says what is wrong.
		fd.Close()
		_, err := openPackage(path)
		return nil, nil, err
	}
	var head [8]byte
	n, _ := io.ReadFull(fd, head[:])
	if !bytes.Equal(head[:n], image.Magic[:]) {
		// Not a package: perhaps a bare UPK.
		b, err := io.ReadAll(io.MultiReader(bytes.NewReader(head[:n]), io.LimitReader(fd, secpkg.MaxUPKSize)))
		if err != nil {
			return nil, nil, err
		}
		if u, uerr := image.InspectUPK(b); uerr == nil {
			return nil, u, nil
		}
	}
	fd.Close()
	p, err := openPackage(path)
	if err != nil {
		return nil, nil, err
	}
	defer p.Close()
	d, err := image.InspectFile(p.File)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil, nil
}

// plaintextOut is the --extract output of image verify: written through a
// buffer to a temporary file that becomes path only on Commit.
type plaintextOut struct {
	*bufio.Writer
	f *atomicfile.File
}

func newPlaintextOut(path string) (*plaintextOut, error) {
	f, err := atomicfile.New(path, 0o600)
	if err != nil {
		return nil, err
	}
	return &plaintextOut{Writer: bufio.NewWriterSize(f, 256<<10), f: f}, nil
}

// Commit flushes and moves the plaintext into place.
func (o *plaintextOut) Commit() error {
	if err := o.Flush(); err != nil {
		o.f.Abort()
		return err
	}
	return o.f.Commit()
}

// Abort discards the plaintext; it does nothing after Commit.
func (o *plaintextOut) Abort() { o.f.Abort() }
