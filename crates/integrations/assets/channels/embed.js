/*! leadflow embed: first/last-touch attribution for any form on the page. No dependencies.
 *
 * <script src="https://leadflow.example/embed.js" data-source="NAME" async></script>
 *
 * On load it records UTM parameters, click ids, the referrer and the landing page:
 * first touch once (kept if already there), last touch whenever the URL carries any of
 * them. Storage is first-party localStorage, falling back to a cookie. On submit of any
 * form it adds hidden inputs: last touch under the standard names (utm_source, …,
 * referrer_url, landing_page_url, gclid, …), first touch prefixed `first_`, `_lf_t` (page
 * load time, ms since epoch: leadflow's spam check) and `_lf_sid` (one id per form fill,
 * so a double submit is one lead). Inputs are added once per form, never duplicated, and
 * fields the form already has are left alone.
 *
 * Consent: the page the form is on (without its query string, which may carry an email)
 * goes in `consent_page_url`, and the form's `data-lf-policy-version` and
 * `data-lf-consent-purposes` attributes (if set) in `consent_policy_version` and
 * `consent_purposes`, so the consent ledger records where and under which policy the
 * box was ticked.
 */
(function () {
  "use strict";
  var KEYS = ["utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term",
              "gclid", "fbclid", "li_fat_id", "msclkid"];
  var STORE = "leadflow_touch";
  var loadedAt = Date.now();
  var script = document.currentScript;
  var source = script && script.getAttribute("data-source");

  function read() {
    try {
      var v = window.localStorage.getItem(STORE);
      if (v) return JSON.parse(v);
    } catch (e) { /* storage blocked: try the cookie */ }
    var m = document.cookie.match(new RegExp("(?:^|; )" + STORE + "=([^;]*)"));
    try { return m ? JSON.parse(decodeURIComponent(m[1])) : {}; } catch (e) { return {}; }
  }

  function write(data) {
    var json = JSON.stringify(data);
    try { window.localStorage.setItem(STORE, json); return; } catch (e) { /* fall back */ }
    document.cookie = STORE + "=" + encodeURIComponent(json) +
      "; path=/; max-age=" + 60 * 60 * 24 * 180 + "; SameSite=Lax";
  }

  function currentTouch() {
    var params = new URLSearchParams(window.location.search);
    var touch = {}, found = false;
    KEYS.forEach(function (k) {
      var v = params.get(k);
      if (v) { touch[k] = v; found = true; }
    });
    var ref = document.referrer;
    var external = ref && ref.indexOf(window.location.origin) !== 0;
    if (external) { touch.referrer_url = ref; found = true; }
    touch.landing_page_url = window.location.href;
    touch.at = new Date(loadedAt).toISOString();
    return found ? touch : null;
  }

  var data = read();
  var touch = currentTouch();
  if (!data.first) {
    // The first visit counts even without campaign parameters (direct traffic).
    data.first = touch || { landing_page_url: window.location.href, at: new Date(loadedAt).toISOString() };
  }
  if (touch || !data.last) data.last = touch || data.first;
  write(data);

  function randomId() {
    if (window.crypto && window.crypto.randomUUID) return window.crypto.randomUUID();
    return loadedAt.toString(36) + "-" + Math.random().toString(36).slice(2);
  }

  function setHidden(form, name, value) {
    if (value === undefined || value === null || value === "") return;
    var existing = form.elements.namedItem(name);
    if (existing) {
      // Ours from an earlier submit: refresh it; the form's own field: leave it alone.
      if (existing.getAttribute && existing.getAttribute("data-leadflow") === "1") existing.value = value;
      return;
    }
    var input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    input.setAttribute("data-leadflow", "1");
    form.appendChild(input);
  }

  function decorate(form) {
    if (!form || form.nodeName !== "FORM") return;
    var stored = read();
    var last = stored.last || {}, first = stored.first || {};
    KEYS.concat(["referrer_url", "landing_page_url"]).forEach(function (k) {
      setHidden(form, k, last[k]);
      setHidden(form, "first_" + k, first[k]);
    });
    setHidden(form, "_lf_t", String(loadedAt));
    if (!form.getAttribute("data-leadflow-sid")) form.setAttribute("data-leadflow-sid", randomId());
    setHidden(form, "_lf_sid", form.getAttribute("data-leadflow-sid"));
    if (source) setHidden(form, "_lf_source", source);
    setHidden(form, "consent_page_url", window.location.origin + (window.location.pathname || "/"));
    setHidden(form, "consent_policy_version", form.getAttribute("data-lf-policy-version"));
    setHidden(form, "consent_purposes", form.getAttribute("data-lf-consent-purposes"));
  }

  // Capture phase: runs before the page's own submit handlers and for forms added later.
  document.addEventListener("submit", function (event) { decorate(event.target); }, true);
})();
