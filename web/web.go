// Package web holds the files Onramp serves to browsers, embedded in the
// binary: the tracking SDK, and the hosted sign-in and account pages
// (templates, their one stylesheet, their one script, passkey.js, and
// their messages per language), and the staff console (admin/: one page,
// one stylesheet, ES modules under admin/js).
package web

import "embed"

// Assets is the embedded file tree (sdk/onramp.js, auth/…, admin/…).
//
//go:embed sdk/onramp.js auth/templates/*.html auth/auth.css auth/locales/*.json auth/static/passkey.js admin/index.html admin/console.css admin/js
var Assets embed.FS
