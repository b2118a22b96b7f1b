// Package jsclient holds timd's JavaScript client (timd.js, an ES module,
// and its TypeScript declarations timd.d.ts) so that the binary can serve
// it, for example to the console's test-device panel. The client's wire
// protocol is docs/client-api.md; its tests (test/*.test.js) run under
// `node --test` from js_test.go.
package jsclient

import "embed"

// Files holds timd.js and timd.d.ts at its root.
//
//go:embed timd.js timd.d.ts
var Files embed.FS

// Module is timd.js, the ES module itself.
//
//go:embed timd.js
var Module []byte

// Types is timd.d.ts, the module's TypeScript declarations.
//
//go:embed timd.d.ts
var Types []byte
