// widgets.js holds pieces the properties, staff, audit and imports screens
// share: a confirm dialog (a real <dialog>, so it is keyboard friendly,
// styled like the console, and testable without a browser-native prompt),
// a copy button, and small form helpers.

import { h } from './dom.js';

// confirmDialog asks a yes/no question in a modal <dialog> and resolves to
// true when the person confirms. The dialog is removed afterwards.
export function confirmDialog({ title, message, confirmLabel = 'Confirm', danger = false }) {
  return new Promise((resolve) => {
    const dlg = h('dialog', { class: 'confirm', 'aria-labelledby': 'confirm-title', 'aria-describedby': 'confirm-message' },
      h('h2', { id: 'confirm-title' }, title),
      h('p', { id: 'confirm-message' }, message),
      h('form', { method: 'dialog', class: 'actions' },
        h('button', { type: 'submit', value: 'cancel', class: 'ghost', id: 'confirm-cancel' }, 'Cancel'),
        h('button', { type: 'submit', value: 'ok', class: danger ? 'danger' : null, id: 'confirm-ok' }, confirmLabel)));
    dlg.addEventListener('close', () => {
      resolve(dlg.returnValue === 'ok');
      dlg.remove();
    });
    document.body.append(dlg);
    dlg.showModal();
    // Cancel has the focus: a stray Enter must not rotate a key.
    dlg.querySelector('#confirm-cancel').focus();
  });
}

// copyText puts text on the clipboard. Where the Clipboard API is missing
// or refused (no permission, an insecure origin), it selects the text of
// fallbackEl instead so that Ctrl+C copies it, and says so.
export async function copyText(text, fallbackEl) {
  try {
    if (!navigator.clipboard) throw new Error('no clipboard API');
    await navigator.clipboard.writeText(text);
    return 'Copied.';
  } catch {
    if (fallbackEl) {
      const range = document.createRange();
      range.selectNodeContents(fallbackEl);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
    }
    return 'The browser did not allow copying: the text is selected, press Ctrl+C (⌘C) to copy it.';
  }
}

// copyButton is a "Copy" button for the text of el (or what text() returns),
// with a status line announced to screen readers.
export function copyButton(label, el, text = () => el.textContent, id) {
  const status = h('span', { class: 'copy-status muted', role: 'status' });
  const btn = h('button', {
    type: 'button', class: 'secondary', id,
    onclick: async () => { status.textContent = await copyText(text(), el); },
  }, label);
  return h('span', { class: 'copy' }, btn, ' ', status);
}

// lines splits a textarea's value into its non-empty trimmed lines.
export function lines(value) {
  return String(value || '').split(/\r?\n/).map((s) => s.trim()).filter(Boolean);
}

// field is a labelled form control with an optional hint.
export function field(id, label, control, hint) {
  if (hint) control.setAttribute('aria-describedby', `${id}-hint`);
  return h('div', { class: 'field' },
    h('label', { for: id }, label),
    control,
    hint ? h('span', { class: 'hint', id: `${id}-hint` }, hint) : null);
}

// checkbox is a labelled checkbox with an optional hint.
export function checkbox(id, label, checked, hint) {
  return h('div', { class: 'field check' },
    h('label', { for: id }, h('input', { type: 'checkbox', id, name: id, checked, 'aria-describedby': hint ? `${id}-hint` : null }), ' ', label),
    hint ? h('span', { class: 'hint', id: `${id}-hint` }, hint) : null);
}
