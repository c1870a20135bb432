// Package auditlog is the production service's tamper-evident audit log.
//
// Every production event (an order loaded or revoked, a device certificate
// or a UPK issued, a unit spoiled) is an Entry, appended to a Log in its
// canonical CBOR encoding. The entries are the leaves of an RFC 6962 Merkle
// tree (golang.org/x/mod/sumdb/tlog); after every append, of one entry or
// of a batch (Log.AppendBatch), the log key signs a Checkpoint (size and
// root) as a COSE_Sign1. The Log answers inclusion
// and consistency proofs and exports itself; Audit verifies an export
// offline with the log key and the orders' quotas and names what is wrong
// as an *AuditError: a deleted, modified, reordered or inserted entry, a
// truncated or forked log, an order over its quota.
//
// The formats and the audit are specified in docs/production.md ("Audit
// log"), with test vectors in testdata/auditlog.
package auditlog
