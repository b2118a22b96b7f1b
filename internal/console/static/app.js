// The console's shell: sign-in gate, hash router, navigation, and the
// error banner for an expired session.

import { signedIn, current, signOut } from './api.js';
import { clear, errorBox } from './dom.js';
import * as signin from './pages/signin.js';
import * as overview from './pages/overview.js';
import * as accounts from './pages/accounts.js';
import * as audience from './pages/audience.js';
import * as compose from './pages/compose.js';
import * as pushes from './pages/pushes.js';
import * as live from './pages/live.js';
import * as device from './pages/device.js';

const pages = { overview, accounts, audience, compose, pushes, live };
const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
const banner = document.getElementById('banner');
let cleanup = null;
let token = 0;

/** route renders the page named by the location hash into a fresh view; a render overtaken by a newer route is dropped. */
async function route() {
  const mine = ++token;
  if (cleanup) { try { cleanup(); } catch { /* a page's cleanup must not block the next */ } cleanup = null; }
  const view = document.createElement('div');
  clear(main).append(view);
  banner.hidden = true;
  const name = (location.hash.replace(/^#\/?/, '').split('?')[0]) || 'overview';
  if (!signedIn()) {
    nav.hidden = true;
    who.hidden = true;
    document.title = 'Sign in · timd console';
    signin.render(view, () => {
      const target = `#/${pages[name] ? name : 'overview'}`;
      if (location.hash === target) route(); else location.hash = target; // hashchange routes
    });
    return;
  }
  const c = current();
  nav.hidden = false;
  who.hidden = false;
  document.getElementById('who-text').textContent = `${c.identifier} @ ${c.sdkAppId}`;
  for (const a of nav.querySelectorAll('a')) {
    if (a.getAttribute('href') === `#/${name}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const page = pages[name] || overview;
  document.title = `${name[0].toUpperCase()}${name.slice(1)} · timd console`;
  try {
    const done = (await page.render(view, onError)) || null;
    if (mine !== token) { if (done) done(); return; }
    cleanup = done;
  } catch (e) {
    if (mine === token) onError(e);
  }
}

/** onError shows an error; an expired session goes back to sign-in. */
function onError(e) {
  clear(banner).append(errorBox(e));
  banner.hidden = false;
  if (e && e.kind === 'expired' && current() && !current().withKey) {
    signOut();
    route().then(() => { clear(banner).append(errorBox(e)); banner.hidden = false; });
  }
}

document.getElementById('signout').addEventListener('click', () => { device.disconnect(); signOut(); location.hash = '#/overview'; route(); });
window.addEventListener('hashchange', route);
route();
