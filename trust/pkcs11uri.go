package trust

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
)

// PKCS11URI is a parsed RFC 7512 pkcs11: URI naming a token and, for a
// key, one object in it. The attributes sbm uses:
//
//	path:  token=LABEL  object=LABEL  id=%01%02…  type=private|public|secret
//	       serial=…  slot-id=N  (others are kept and ignored)
//	query: module-path=/path/to/module.so  pin-source=FILE  pin-value=PIN
//
// Both parts are also accepted in the other's place (a ;-separated
// module-path in the path, say). Values are percent-decoded.
type PKCS11URI struct {
	// Token is the token label (token=); required.
	Token string
	// Object is the object label (object=), or for Init a label prefix.
	Object string
	// ID is the object's CKA_ID (id=), raw bytes.
	ID []byte
	// Type is the object type (type=).
	Type string
	// Serial is the token serial number (serial=).
	Serial string
	// ModulePath is the PKCS#11 module to load (module-path=); required.
	ModulePath string
	// PINSource is a file whose first line is the PIN (pin-source=, a path
	// or a file: URI).
	PINSource string
	// PINValue is the PIN itself (pin-value=). It is never written to a
	// context.
	PINValue string
	// Other holds attributes sbm does not use, kept verbatim (encoded).
	Other map[string]string
}

// ErrBadURI is wrapped by every ParsePKCS11URI error.
var ErrBadURI = errors.New("invalid pkcs11: URI")

// ParsePKCS11URI parses an RFC 7512 URI. It requires token= and
// module-path=.
func ParsePKCS11URI(s string) (*PKCS11URI, error) {
	rest, ok := strings.CutPrefix(s, "pkcs11:")
	if !ok {
		return nil, fmt.Errorf("%w: %q does not start with pkcs11:", ErrBadURI, s)
	}
	path, query, _ := strings.Cut(rest, "?")
	u := &PKCS11URI{}
	seen := map[string]bool{}
	parse := func(part, sep string) error {
		if part == "" {
			return nil
		}
		for _, attr := range strings.Split(part, sep) {
			k, v, ok := strings.Cut(attr, "=")
			if !ok || k == "" {
				return fmt.Errorf("%w: attribute %q is not NAME=VALUE", ErrBadURI, attr)
			}
			k = strings.ToLower(k)
			if seen[k] {
				return fmt.Errorf("%w: attribute %s given twice", ErrBadURI, k)
			}
			seen[k] = true
			dv, err := url.PathUnescape(v)
			if err != nil {
				return fmt.Errorf("%w: attribute %s: %v", ErrBadURI, k, err)
			}
			switch k {
			case "token":
				u.Token = dv
			case "object":
				u.Object = dv
			case "id":
				u.ID = []byte(dv)
			case "type":
				u.Type = dv
			case "serial":
				u.Serial = dv
			case "module-path":
				u.ModulePath = dv
			case "pin-source":
				u.PINSource = strings.TrimPrefix(dv, "file:")
			case "pin-value":
				u.PINValue = dv
			default:
				if u.Other == nil {
					u.Other = map[string]string{}
				}
				u.Other[k] = v
			}
		}
		return nil
	}
	if err := parse(path, ";"); err != nil {
		return nil, err
	}
	if err := parse(query, "&"); err != nil {
		return nil, err
	}
	switch {
	case u.Token == "":
		return nil, fmt.Errorf("%w: %q has no token= (the token label)", ErrBadURI, u.Redacted())
	case u.ModulePath == "":
		return nil, fmt.Errorf("%w: %q has no module-path= (such as /usr/lib/softhsm/libsofthsm2.so)", ErrBadURI, u.Redacted())
	case u.PINSource != "" && u.PINValue != "":
		return nil, fmt.Errorf("%w: both pin-source and pin-value given", ErrBadURI)
	}
	return u, nil
}

// String returns the URI, with its PIN value if it has one.
func (u *PKCS11URI) String() string { return u.format(true) }

// Redacted returns the URI without pin-value: what a context records.
func (u *PKCS11URI) Redacted() string { return u.format(false) }

func (u *PKCS11URI) format(withPIN bool) string {
	var path, query []string
	add := func(list *[]string, k, v string) {
		if v != "" {
			*list = append(*list, k+"="+escape(v))
		}
	}
	add(&path, "token", u.Token)
	add(&path, "serial", u.Serial)
	add(&path, "object", u.Object)
	if len(u.ID) > 0 {
		var b strings.Builder
		for _, c := range u.ID {
			fmt.Fprintf(&b, "%%%02x", c)
		}
		path = append(path, "id="+b.String())
	}
	add(&path, "type", u.Type)
	keys := make([]string, 0, len(u.Other))
	for k := range u.Other {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		path = append(path, k+"="+u.Other[k])
	}
	add(&query, "module-path", u.ModulePath)
	add(&query, "pin-source", u.PINSource)
	if withPIN {
		add(&query, "pin-value", u.PINValue)
	}
	s := "pkcs11:" + strings.Join(path, ";")
	if len(query) > 0 {
		s += "?" + strings.Join(query, "&")
	}
	return s
}

// escape percent-encodes everything but RFC 7512's unreserved characters
// and the path characters a module path needs.
func escape(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~/:", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// withObject returns a copy of u naming one object.
func (u *PKCS11URI) withObject(label string, id []byte, typ string) *PKCS11URI {
	v := *u
	v.Object, v.ID, v.Type, v.PINValue = label, id, typ, ""
	return &v
}

// pin returns the token PIN: pin-value, else the first line of pin-source,
// else what ask returns (the context's passphrase callback).
func (u *PKCS11URI) pin(ask func() ([]byte, error)) (string, error) {
	switch {
	case u.PINValue != "":
		return u.PINValue, nil
	case u.PINSource != "":
		b, err := os.ReadFile(u.PINSource)
		if err != nil {
			return "", fmt.Errorf("pin-source: %w", err)
		}
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[:i]
		}
		b = bytes.TrimSuffix(b, []byte("\r"))
		if len(b) == 0 {
			return "", fmt.Errorf("pin-source %s: empty PIN", u.PINSource)
		}
		return string(b), nil
	case ask != nil:
		b, err := ask()
		if err != nil {
			return "", fmt.Errorf("the token PIN (the URI has no pin-source): %w", err)
		}
		if len(b) > 0 {
			return string(b), nil
		}
	}
	return "", ErrPINRequired
}
