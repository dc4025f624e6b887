// staff.js: who works in the console and with which role; invitations by
// email; whether staff must sign in with a second factor. Owners alone may
// make, change or remove owners and change the MFA rule (auth rules the API
// enforces); the page hides those controls from everyone else.

import { h, replace, when } from '../dom.js';
import { errorBox } from '../api.js';
import { confirmDialog, field } from '../widgets.js';

const ROLES = [
  ['owner', 'Owner: everything, including owners'],
  ['admin', 'Admin: everything but owners'],
  ['developer', 'Developer: properties and people'],
  ['marketer', 'Marketer: people, imports and exports'],
  ['support', 'Support: reads people, ends sessions'],
];

export default async function render(ctx) {
  const owner = ctx.me.role === 'owner';
  const myID = ctx.me.session && ctx.me.session.person_id;
  const roles = ROLES.filter(([r]) => owner || r !== 'owner');

  const listCard = h('section', { class: 'card', 'aria-labelledby': 'staff-title' }, h('h2', { id: 'staff-title' }, 'Staff'));
  const inviteCard = h('section', { class: 'card', 'aria-labelledby': 'invite-title' });
  const mfaCard = ctx.can('auth:settings') ? h('section', { class: 'card', 'aria-labelledby': 'mfa-title' }) : null;

  // Lists name the role; the invitation form says what each one may do.
  const roleSelect = (id, value, attrs = {}, long = false) => h('select', { id, name: id, ...attrs },
    roles.map(([r, label]) => h('option', { value: r, selected: r === value, title: label }, long ? label : r)));

  const drawList = async () => {
    const res = await ctx.get('/api/staff', null, { signal: ctx.signal });
    const members = (res.data || []).slice().sort((a, b) => a.email.localeCompare(b.email));
    const rows = members.map((m, i) => {
      const mine = m.person_id === myID;
      // Non-owners may not touch an owner's row at all.
      const locked = m.role === 'owner' && !owner;
      const status = h('span', { class: 'muted', role: 'status' });
      const sel = locked ? null : roleSelect(`staff-role-${i}`, m.role, {
        class: 'staff-role', 'aria-label': `Role of ${m.email}`,
        onchange: async (ev) => {
          const s = ev.target;
          s.disabled = true;
          status.textContent = 'Saving…';
          try {
            const out = await ctx.api('PATCH', `/api/staff/${encodeURIComponent(m.person_id)}`, { body: { role: s.value } });
            m.role = out.role;
            status.textContent = 'Saved.';
          } catch (err) {
            s.value = m.role;
            status.replaceChildren(errorBox(err));
          } finally {
            s.disabled = false;
          }
        },
      });
      const remove = locked ? null : h('button', {
        type: 'button', class: 'danger small staff-remove',
        onclick: async () => {
          const ok = await confirmDialog({
            title: 'Remove from staff?',
            message: `${m.email} loses access to the console and is signed out of it. Their account and profile stay.${mine ? ' This is you.' : ''}`,
            confirmLabel: 'Remove', danger: true,
          });
          if (!ok) return;
          try {
            await ctx.api('DELETE', `/api/staff/${encodeURIComponent(m.person_id)}`);
            await drawList();
          } catch (err) {
            status.replaceChildren(errorBox(err));
          }
        },
      }, 'Remove');
      return h('tr', { dataset: { personId: m.person_id } },
        h('td', null, h('a', { href: `/admin/people/${encodeURIComponent(m.person_id)}` }, m.email), mine ? h('span', { class: 'muted' }, ' (you)') : null),
        h('td', null, sel || h('span', { class: 'badge' }, m.role), ' ', status),
        h('td', null, when(m.created_at)),
        h('td', null, remove));
    });
    replace(listCard,
      h('h2', { id: 'staff-title' }, 'Staff'),
      h('div', { class: 'data' }, h('table', { id: 'staff-table' },
        h('caption', { class: 'visually-hidden' }, 'Staff members'),
        h('thead', null, h('tr', null, ['Email', 'Role', 'Since', ''].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', null, rows))),
      owner ? null : h('p', { class: 'hint' }, 'Only an owner can make, change or remove owners.'));
  };

  const drawInvite = () => {
    const email = h('input', { type: 'email', id: 'invite-email', name: 'email', required: true, autocomplete: 'off', spellcheck: 'false', placeholder: 'name@example.com' });
    const out = h('div', { id: 'invite-result', role: 'status' });
    const form = h('form', { id: 'invite-form', class: 'filters' },
      h('div', { class: 'field grow' }, h('label', { for: 'invite-email' }, 'Email'), email),
      field('invite-role', 'Role', roleSelect('invite-role', 'support', {}, true)),
      h('button', { type: 'submit', id: 'invite-submit' }, 'Invite'));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const role = form.querySelector('#invite-role').value;
      const btn = form.querySelector('#invite-submit');
      btn.disabled = true;
      out.replaceChildren();
      try {
        const res = await ctx.api('POST', '/api/staff', { body: { email: email.value.trim(), role } });
        if (res && res.invited) {
          replace(out, h('p', { class: 'notice' }, 'Invitation sent to ', h('strong', null, res.invited.email), ` as ${res.invited.role}. The link works once, until `, when(res.invited.expires_at), '.'));
        } else {
          replace(out, h('p', { class: 'notice' }, h('strong', null, res.email), ` already had an account and is now ${res.role}.`));
        }
        email.value = '';
        await drawList();
      } catch (err) {
        replace(out, errorBox(err));
      } finally {
        btn.disabled = false;
      }
    });
    replace(inviteCard,
      h('h2', { id: 'invite-title' }, 'Invite'),
      h('p', { class: 'hint' }, 'Someone with an account joins the staff at once; anyone else gets an email with a one-time link (valid 7 days) to set a password.'),
      form, out);
  };

  const drawMFA = async () => {
    const res = await ctx.get('/api/auth/settings', null, { signal: ctx.signal });
    const status = h('span', { class: 'muted', role: 'status', id: 'mfa-status' });
    const box = h('input', {
      type: 'checkbox', id: 'staff-mfa', checked: !!res.staff_require_mfa, disabled: !owner,
      'aria-describedby': 'staff-mfa-hint',
      onchange: async (ev) => {
        const want = ev.target.checked;
        const aal = (ctx.me.session && ctx.me.session.aal) || 1;
        // Turning it on from a one-factor session locks this console out
        // (the API answers 403 until the session has a second factor).
        if (want && aal < 2 && !(await confirmDialog({
          title: 'Require a second factor?',
          message: 'You signed in without a second factor: once this is on, the console refuses you too until you set one up on your account page (/account/mfa) and sign in with it.',
          confirmLabel: 'Require it',
        }))) {
          ev.target.checked = false;
          return;
        }
        ev.target.disabled = true;
        status.textContent = 'Saving…';
        try {
          const out = await ctx.api('PUT', '/api/auth/settings', { body: { staff_require_mfa: want } });
          ev.target.checked = !!out.staff_require_mfa;
          status.textContent = 'Saved.';
        } catch (err) {
          ev.target.checked = !want;
          status.replaceChildren(errorBox(err));
        } finally {
          ev.target.disabled = false;
        }
      },
    });
    replace(mfaCard,
      h('h2', { id: 'mfa-title' }, 'Sign-in security'),
      h('div', { class: 'field check' }, h('label', { for: 'staff-mfa' }, box, ' Require a second factor (authenticator app or passkey) for staff'), status),
      h('p', { class: 'hint', id: 'staff-mfa-hint' }, owner
        ? 'Staff who signed in without one are refused by the console and the API until they add an authenticator app or a passkey on their account page and sign in with it.'
        : 'Only an owner can change this.'));
  };

  replace(ctx.main, h('h1', null, 'Staff'), h('div', { class: 'grid2' }, inviteCard, mfaCard), listCard);
  drawInvite();
  await Promise.all([drawList(), mfaCard ? drawMFA().catch((err) => replace(mfaCard, h('h2', { id: 'mfa-title' }, 'Sign-in security'), errorBox(err))) : null]);
}
