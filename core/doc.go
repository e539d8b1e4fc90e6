// Package core is Coupongate's domain: merchants and their keys, code lists, codes, imports,
// generated batches, allocation, storefront validation, redemption and the code timeline.
//
// Core speaks in its own types and errors (*Error with a stable code) and declares the ports it
// needs (ListStore, CodeStore, ImportStore, TaskQueue, …); adapters in store/, worker/ and api/
// implement or call them. It imports no gin, gorm, asynq or integration.
package core
