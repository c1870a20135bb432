package trust

import (
	"bytes"
	"errors"
	"testing"
)

func TestParsePKCS11URI(t *testing.T) {
	tests := []struct {
		in       string
		want     PKCS11URI
		redacted string
		err      string
	}{
		{in: "pkcs11:token=sbm;object=root?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/run/pin",
			want:     PKCS11URI{Token: "sbm", Object: "root", ModulePath: "/usr/lib/softhsm/libsofthsm2.so", PINSource: "/run/pin"},
			redacted: "pkcs11:token=sbm;object=root?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/run/pin"},
		{in: "pkcs11:token=My%20Token;id=%01%a0;type=private?module-path=/m.so&pin-value=1234",
			want:     PKCS11URI{Token: "My Token", ID: []byte{1, 0xa0}, Type: "private", ModulePath: "/m.so", PINValue: "1234"},
			redacted: "pkcs11:token=My%20Token;id=%01%a0;type=private?module-path=/m.so"},
		{in: "pkcs11:token=t;module-path=/m.so;pin-source=file:/p",
			want:     PKCS11URI{Token: "t", ModulePath: "/m.so", PINSource: "/p"},
			redacted: "pkcs11:token=t?module-path=/m.so&pin-source=/p"},
		{in: "pkcs11:token=t;manufacturer=SoftHSM%20project?module-path=/m.so",
			want:     PKCS11URI{Token: "t", ModulePath: "/m.so", Other: map[string]string{"manufacturer": "SoftHSM%20project"}},
			redacted: "pkcs11:token=t;manufacturer=SoftHSM%20project?module-path=/m.so"},
		{in: "token=t?module-path=/m.so", err: "does not start with pkcs11:"},
		{in: "pkcs11:object=x?module-path=/m.so", err: "no token="},
		{in: "pkcs11:token=t", err: "no module-path="},
		{in: "pkcs11:token=t;token=u?module-path=/m.so", err: "given twice"},
		{in: "pkcs11:token=t;object?module-path=/m.so", err: "not NAME=VALUE"},
		{in: "pkcs11:token=t?module-path=/m.so&pin-value=1&pin-source=/p", err: "both pin-source and pin-value"},
		{in: "pkcs11:token=%zz?module-path=/m.so", err: "attribute token"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			u, err := ParsePKCS11URI(tt.in)
			if tt.err != "" {
				if err == nil || !errors.Is(err, ErrBadURI) || !bytes.Contains([]byte(err.Error()), []byte(tt.err)) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.Token != tt.want.Token || u.Object != tt.want.Object || !bytes.Equal(u.ID, tt.want.ID) || u.Type != tt.want.Type ||
				u.ModulePath != tt.want.ModulePath || u.PINSource != tt.want.PINSource || u.PINValue != tt.want.PINValue || len(u.Other) != len(tt.want.Other) {
				t.Fatalf("got %+v, want %+v", u, tt.want)
			}
			if got := u.Redacted(); got != tt.redacted {
				t.Fatalf("Redacted %q, want %q", got, tt.redacted)
			}
			// The redacted form parses back to the same key location.
			v, err := ParsePKCS11URI(u.Redacted())
			if err != nil || v.Redacted() != u.Redacted() {
				t.Fatalf("round trip: %v %v", v, err)
			}
		})
	}
}
