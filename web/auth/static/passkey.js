// passkey.js — the only script of the hosted pages. It runs the WebAuthn
// ceremonies the server prepares: navigator.credentials.create to add a
// passkey on /account/passkeys, navigator.credentials.get for "Use a
// passkey" on /auth/sign-in. The server speaks the WebAuthn JSON form
// (binary fields as base64url); this file converts to and from the
// ArrayBuffers the browser API wants. It is loaded with <script src>, has
// no inline parts, and reads what it needs from data- attributes and the
// page's forms, so the pages' Content-Security-Policy stays script-src
// 'self'. Without WebAuthn (or without this script) the passkey controls
// stay hidden and every other way to sign in still works.
(function () {
  "use strict";

  function toBuffer(b64url) {
    var b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) {
      b64 += "=";
    }
    var bin = atob(b64);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) {
      out[i] = bin.charCodeAt(i);
    }
    return out.buffer;
  }

  function toBase64url(buf) {
    var bytes = new Uint8Array(buf);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) {
      bin += String.fromCharCode(bytes[i]);
    }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (d) {
      var out = { type: d.type || "public-key", id: toBuffer(d.id) };
      if (d.transports) {
        out.transports = d.transports;
      }
      return out;
    });
  }

  function creationOptions(pk) {
    var o = Object.assign({}, pk);
    o.challenge = toBuffer(pk.challenge);
    o.user = Object.assign({}, pk.user, { id: toBuffer(pk.user.id) });
    o.excludeCredentials = descriptors(pk.excludeCredentials);
    return o;
  }

  function requestOptions(pk) {
    var o = Object.assign({}, pk);
    o.challenge = toBuffer(pk.challenge);
    if (pk.allowCredentials) {
      o.allowCredentials = descriptors(pk.allowCredentials);
    }
    return o;
  }

  // credentialJSON is the PublicKeyCredential as the server reads it.
  function credentialJSON(cred) {
    var r = cred.response;
    var response = { clientDataJSON: toBase64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toBase64url(r.attestationObject);
      if (typeof r.getTransports === "function") {
        response.transports = r.getTransports();
      }
    }
    if (r.authenticatorData) {
      response.authenticatorData = toBase64url(r.authenticatorData);
      response.signature = toBase64url(r.signature);
      if (r.userHandle) {
        response.userHandle = toBase64url(r.userHandle);
      }
    }
    return {
      id: cred.id,
      rawId: toBase64url(cred.rawId),
      type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      response: response,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {}
    };
  }

  // post sends JSON with the form's CSRF token in X-Onramp-CSRF and
  // answers the JSON reply, or throws with the problem's detail.
  function post(url, csrf, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Onramp-CSRF": csrf },
      body: JSON.stringify(body || {})
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (data) {
        if (!res.ok) {
          throw new Error(data.detail || data.title || ("HTTP " + res.status));
        }
        return data;
      });
    });
  }

  function showError(box, message) {
    if (!box) {
      return;
    }
    box.textContent = message;
    box.hidden = false;
    box.focus();
  }

  // Sign-in: options from the flow, the browser's passkey chooser, then
  // the continue form carries the browser on (a normal form post, so the
  // session cookie and any redirect to the client happen as for passwords).
  function setUpSignIn(root) {
    var button = root.querySelector("[data-passkey-sign-in]");
    var done = root.querySelector("form[data-passkey-continue]");
    if (!button || !done) {
      return;
    }
    var csrf = done.querySelector("input[name=csrf]").value;
    var box = root.querySelector("[data-passkey-error]");
    button.hidden = false;
    button.addEventListener("click", function () {
      button.disabled = true;
      post("/auth/passkey/options", csrf)
        .then(function (options) {
          return navigator.credentials.get({ publicKey: requestOptions(options.publicKey) });
        })
        .then(function (cred) {
          return post("/auth/passkey", csrf, credentialJSON(cred));
        })
        .then(function () {
          done.submit();
        })
        .catch(function () {
          button.disabled = false;
          showError(box, box ? box.getAttribute("data-message") : "");
        });
    });
  }

  // Account page: create a passkey and send it with its name, then reload
  // the page (the session was rotated; the fresh page has its CSRF token).
  function setUpRegistration(root) {
    var form = root.querySelector("form[data-passkey-add]");
    if (!form) {
      return;
    }
    var csrf = form.querySelector("input[name=csrf]").value;
    var box = root.querySelector("[data-passkey-error]");
    form.hidden = false;
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var submit = form.querySelector("button[type=submit]");
      submit.disabled = true;
      var name = form.querySelector("input[name=name]").value;
      var ceremony;
      post("/account/passkeys/options", csrf)
        .then(function (c) {
          ceremony = c.ceremony;
          return navigator.credentials.create({ publicKey: creationOptions(c.options.publicKey) });
        })
        .then(function (cred) {
          return post("/account/passkeys", csrf, { ceremony: ceremony, name: name, credential: credentialJSON(cred) });
        })
        .then(function (res) {
          window.location.assign(res.next || "/account/passkeys");
        })
        .catch(function () {
          submit.disabled = false;
          showError(box, box ? box.getAttribute("data-message") : "");
        });
    });
  }

  if (!window.PublicKeyCredential || !navigator.credentials) {
    return;
  }
  setUpSignIn(document);
  setUpRegistration(document);
})();
