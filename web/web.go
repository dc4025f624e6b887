// Package web holds the files Onramp serves to browsers, embedded in the
// binary: the tracking SDK, and the hosted sign-in and account pages
// (templates, their one stylesheet, their one script, passkey.js, and
// their messages per language).
package web

import "embed"

// Assets is the embedded file tree (sdk/onramp.js, auth/…).
//
//go:embed sdk/onramp.js auth/templates/*.html auth/auth.css auth/locales/*.json auth/static/passkey.js
var Assets embed.FS
