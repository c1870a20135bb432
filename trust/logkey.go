package trust

import (
	"crypto"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sbm-project/sbm/internal/atomicfile"
)

// LogKeyFile is the file, in the context's service directory, holding the
// production audit log's key (PKCS#8 PEM, 0600, encrypted like the
// operator credential).
const LogKeyFile = "log.key"

// LogKey returns the key that signs the service's audit-log checkpoints,
// creating it (of the context's suite) on first use. It signs nothing else.
// Service instances sharing a database must share the context directory
// (or a copy of this file): they sign one log.
func (c *Context) LogKey() (crypto.Signer, error) {
	pass, err := c.getPassphrase()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(c.Path(OperatorDir), LogKeyFile)
	key, err := LoadSigner(path, pass)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		if err != nil {
			return nil, fmt.Errorf("log key: %w", err)
		}
		return key, nil
	}
	key, err = c.Suite().GenerateSigningKey()
	if err != nil {
		return nil, err
	}
	pem, err := MarshalPrivateKey(key, pass)
	if err != nil {
		return nil, fmt.Errorf("log key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("log key: %w", err)
	}
	if err := atomicfile.Create(path, pem, 0o600); err != nil {
		// Another process created it first: use that one.
		if k, lerr := LoadSigner(path, pass); lerr == nil {
			return k, nil
		}
		return nil, fmt.Errorf("log key: %w", err)
	}
	return key, nil
}
