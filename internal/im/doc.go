// Package im holds timd's domain vocabulary: apps, accounts, attributes,
// tags, audience conditions and push tasks; the store interfaces every
// backend implements; and the error type that carries Tencent's numeric
// codes. It imports nothing from timd.
package im
