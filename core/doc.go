// Package core is Coupongate's domain: merchants and their keys, code lists, codes, imports,
// generated batches, allocation, storefront validation, redemption and the code timeline.
//
// Core speaks in its own types and errors (*Error with a stable code) and declares the ports it
// needs (ListStore, CodeStore, ImportStore, TaskQueue, …); adapters in store/, worker/ and api/
// implement or call them. It imports no gin, gorm, asynq or integration.
//
// Where the rules are: what an order does to a code (a code used at most its limit, a paid order
// counted once, over-uses recorded) is codeuse.go; who gets which code (a list's start, end and
// archive, the reassign window, a redeem link's one code, a shared code's max_assignments, which
// code is issuable now) is allocationrules.go. The store reads what they decide on under its locks
// and persists what they decide; it decides nothing itself.
package core
