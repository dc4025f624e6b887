// Package web holds the files Onramp serves to browsers, embedded in the
// binary: the tracking SDK today, the console and hosted pages later.
package web

import "embed"

// Assets is the embedded file tree (sdk/onramp.js, …).
//
//go:embed sdk/onramp.js
var Assets embed.FS
