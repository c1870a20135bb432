package apphost

// BuiltApp returns an example application built by TestMain, for the
// external tests.
func BuiltApp(name string) []byte { return apps[name] }

// TestCache is the compilation cache shared by the test binary.
var TestCache = cache

// CheckHostileOutput checks the hostile application's report.
var CheckHostileOutput = checkHostileOutput
