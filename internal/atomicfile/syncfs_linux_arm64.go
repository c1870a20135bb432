package atomicfile

// sysSyncfs is syncfs(2) on linux/arm64 (package syscall predates it).
const sysSyncfs = 267
