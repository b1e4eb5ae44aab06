// Minimal DOM stand-in to exercise embed.js: load, two submits, no duplicates.
const fs = require('fs'); const vm = require('vm');
const inputs = [];
const form = { nodeName: 'FORM', attrs: { 'data-lf-policy-version': 'v7' }, children: inputs,
  elements: { namedItem: n => inputs.find(i => i.name === n) || null },
  getAttribute(k) { return this.attrs[k] || null }, setAttribute(k, v) { this.attrs[k] = v },
  appendChild(c) { inputs.push(c) } };
let handler; const store = {};
const ctx = {
  window: { location: { search: '?utm_source=news&gclid=G1', pathname: '/p', href: 'https://site.example/p?utm_source=news&gclid=G1', origin: 'https://site.example' },
            localStorage: { getItem: k => store[k] || null, setItem: (k, v) => { store[k] = v } }, crypto: { randomUUID: () => 'uuid-1' } },
  document: { currentScript: { getAttribute: () => 'demo' }, referrer: 'https://google.com/', cookie: '',
    addEventListener: (t, h) => { handler = h },
    createElement: () => ({ attrs: {}, setAttribute(k, v) { this.attrs[k] = v }, getAttribute(k) { return this.attrs[k] || null } }) },
  URLSearchParams, Date, Math, JSON, RegExp, String, encodeURIComponent, decodeURIComponent };
vm.runInNewContext(fs.readFileSync(require('path').join(__dirname, 'embed.js'), 'utf8'), ctx);
handler({ target: form }); handler({ target: form });
const names = inputs.map(i => i.name);
const dup = names.filter((n, i) => names.indexOf(n) !== i);
console.log(names.join(','));
if (dup.length) throw new Error('duplicates ' + dup);
const get = n => inputs.find(i => i.name === n).value;
if (get('utm_source') !== 'news' || get('first_utm_source') !== 'news' || get('gclid') !== 'G1' || get('_lf_sid') !== 'uuid-1') throw new Error('values');
if (get('referrer_url') !== 'https://google.com/') throw new Error('referrer');
if (get('consent_page_url') !== 'https://site.example/p' || get('consent_policy_version') !== 'v7') throw new Error('consent');
if (names.includes('consent_purposes')) throw new Error('an unset attribute adds no input');
handler({ target: { nodeName: 'DIV' } }); // not a form: no-op
console.log('embed ok');
