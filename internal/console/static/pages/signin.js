// Sign-in: SDKAppID, admin identifier, and the secret key (used only in
// this page to make short-lived UserSigs) or a UserSig.

import { signIn } from '../api.js';
import { h, field, errorBox } from '../dom.js';
import { cryptoAvailable } from '../usersig.js';

export function render(main, done) {
  const app = h('input', { name: 'sdkappid', inputmode: 'numeric', autocomplete: 'off', required: true, placeholder: '1400000000' });
  const id = h('input', { name: 'identifier', autocomplete: 'username', required: true, value: 'administrator' });
  // The key and the sig have no name, so that no form submission could
  // ever carry them (the CSP's form-action 'none' refuses one anyway).
  const key = h('input', { id: 'secret', type: 'password', autocomplete: 'off', spellcheck: 'false' });
  const sig = h('textarea', { id: 'usersig', rows: 3, autocomplete: 'off', spellcheck: 'false' });
  const status = h('div', { 'aria-live': 'polite' });
  const btn = h('button', { type: 'submit', text: 'Sign in' });
  const form = h('form', { class: 'card narrow', id: 'signin' },
    h('h2', { text: 'Sign in' }),
    field('SDKAppID', app),
    field('Admin identifier', id),
    field('Secret key', key, cryptoAvailable()
      ? 'Used only in this browser to make a 10-minute UserSig; never sent, never stored.'
      : 'Not available here: key sign-in needs https or localhost.'),
    field('…or a UserSig', sig, 'Made for the admin identifier, e.g. with `timd usersig`.'),
    btn, status);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    btn.disabled = true;
    status.replaceChildren(h('p', { text: 'Checking…' }));
    try {
      await signIn({ sdkAppId: app.value.trim(), identifier: id.value.trim(), secret: key.value, userSig: sig.value });
      key.value = '';
      sig.value = '';
      done();
    } catch (e) {
      status.replaceChildren(errorBox(e));
    } finally {
      btn.disabled = false;
    }
  });
  main.append(form);
  app.focus();
}
