// Package bad is a fixture that breaks every device-side rule.
package bad

import (
	"fmt"
	"reflect"

	"github.com/sbm-project/sbm/cmd/sbm"
	_ "github.com/spf13/cobra"
)

// F breaks the rules.
func F() {
	go fmt.Println(reflect.TypeOf(sbm.X))
	panic("boom")
}
