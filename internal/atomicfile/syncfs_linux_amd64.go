package atomicfile

// sysSyncfs is syncfs(2) on linux/amd64 (package syscall predates it).
const sysSyncfs = 306
