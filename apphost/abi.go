package apphost

import (
	"context"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/sbm-project/sbm/sbm"
)

// ModuleName is the import module of the runtime services.
const ModuleName = "sbm"

// Bounds on arguments (docs/spec/services.md).
const (
	// MaxChainSize bounds the certificate chain given to verify_chain (the
	// SBM's bound).
	MaxChainSize = sbm.MaxChainSize
	// MinNonceSize and MaxNonceSize bound the attestation nonce.
	MinNonceSize, MaxNonceSize = 8, 64
	// MaxReportNonceSize bounds the nonce given to report (0, or at least
	// MinNonceSize).
	MaxReportNonceSize = 64
	// MaxPostSize bounds the body given to fetch_post (64 KiB).
	MaxPostSize = 64 << 10
	// MaxContentTypeSize bounds fetch_post's content type.
	MaxContentTypeSize = 128
	// MaxURLSize bounds the URL given to fetch_open.
	MaxURLSize = 2048
	// maxFetchRead bounds one fetch_read.
	maxFetchRead = 1 << 20
)

const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// hostFunc is one host function: its name, parameter types and body. The
// body returns the i32 result: >= 0 success, -code on failure.
type hostFunc struct {
	name   string
	params []api.ValueType
	body   func(c *call) int32
}

// functions is the ABI, in the order of docs/spec/services.md.
var functions = []hostFunc{
	{"boot_info", []api.ValueType{i32, i32}, (*call).bootInfo},
	{"cert_chain", []api.ValueType{i32, i32}, (*call).certChain},
	{"verify_chain", []api.ValueType{i32, i32, i64}, (*call).verifyChain},
	{"sign", []api.ValueType{i32, i32, i32}, (*call).sign},
	{"tls_sign", []api.ValueType{i32, i32, i32, i32}, (*call).tlsSign},
	{"report", []api.ValueType{i32, i32, i32, i32}, (*call).report},
	{"attest", []api.ValueType{i32, i32, i32, i32}, (*call).attest},
	{"staging_size", nil, (*call).stagingSize},
	{"staging_erase", nil, (*call).stagingErase},
	{"staging_write", []api.ValueType{i32, i32, i32}, (*call).stagingWrite},
	{"staging_read", []api.ValueType{i32, i32, i32}, (*call).stagingRead},
	{"request_update", nil, (*call).requestUpdate},
	{"request_recovery", nil, (*call).requestRecovery},
	{"fetch_open", []api.ValueType{i32, i32}, (*call).fetchOpen},
	{"fetch_post", []api.ValueType{i32, i32, i32, i32, i32, i32}, (*call).fetchPost},
	{"fetch_read", []api.ValueType{i32, i32, i32}, (*call).fetchRead},
	{"fetch_close", []api.ValueType{i32}, (*call).fetchClose},
}

// hostModule builds the "sbm" import module for this run.
func (h *host) hostModule(r wazero.Runtime) wazero.HostModuleBuilder {
	b := r.NewHostModuleBuilder(ModuleName)
	for i := range functions {
		f := &functions[i]
		fn := api.GoModuleFunc(func(_ context.Context, mod api.Module, stack []uint64) {
			res := h.invoke(f, mod, stack)
			stack[0] = api.EncodeI32(res)
		})
		b.NewFunctionBuilder().
			WithGoModuleFunction(fn, f.params, []api.ValueType{i32}).
			WithName(f.name).
			Export(f.name)
	}
	return b
}

// call is one host function call: the module's memory and the arguments.
type call struct {
	h    *host
	mem  api.Memory
	args []uint64
}

func (c *call) u32(i int) uint32 { return api.DecodeU32(c.args[i]) }
func (c *call) i64(i int) int64  { return int64(c.args[i]) }

// view returns the module memory [ptr, ptr+n), or false if it is not all
// inside the memory. The slice aliases the module's memory.
func (c *call) view(ptr, n uint32) ([]byte, bool) {
	if c.mem == nil {
		return nil, n == 0 && ptr == 0
	}
	return c.mem.Read(ptr, n)
}

// reply delivers a variable-size result into out (a view of the caller's
// buffer): it copies data and returns its length if it fits; otherwise it
// writes nothing and returns the length needed.
func reply(out, data []byte) int32 {
	if len(data) <= len(out) {
		copy(out, data)
	}
	return int32(len(data))
}

// invoke runs f's body. A device stop inside a hal call ends the module
// (see host.guard); any other panic in the host code becomes
// CodeHostInternal, never a crash.
func (h *host) invoke(f *hostFunc, mod api.Module, stack []uint64) (res int32) {
	defer func() {
		if v := recover(); v != nil {
			if _, ok := v.(*sys.ExitError); ok {
				panic(v)
			}
			h.logf("%s: internal error: %v", f.name, v)
			res = -CodeHostInternal
		}
	}()
	c := &call{h: h, mem: mod.Memory(), args: stack[:len(f.params)]}
	h.guard(func() { res = f.body(c) })
	if res < 0 {
		h.logf("%s: error %d", f.name, -res)
	} else {
		h.logf("%s: %d", f.name, res)
	}
	return res
}
