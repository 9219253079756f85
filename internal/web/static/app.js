// Callout's pages work without this script; it adds what follows.
//
// 1. A form marked data-once is sent once: a second click or Enter is
//    ignored and its buttons are disabled. (The server also stores the form's
//    one-time key with the callout, so a repeat that gets through anyway
//    changes nothing.)
// 2. A region with data-refresh-url reloads itself from that address every
//    data-refresh-ms milliseconds (the fragment may change the interval), so
//    the worklist and the order's history stay current without a reload.
// 3. A page shown again by the Back button is reloaded (see pageshow).
(function () {
  'use strict';

  document.addEventListener('submit', function (e) {
    var form = e.target;
    if (!form.hasAttribute('data-once')) return;
    if (form.dataset.sent) {
      e.preventDefault();
      return;
    }
    form.dataset.sent = '1';
    var submitter = e.submitter;
    // Disable after the browser has read the form: a button disabled now
    // would leave its name and value out of what is sent.
    setTimeout(function () {
      form.querySelectorAll('button[type="submit"]').forEach(function (b) { b.disabled = true; });
      if (submitter && submitter.textContent) submitter.textContent = 'Saving…';
    }, 0);
  });

  // Coming back with the Back button, the browser may show the page from
  // its back-forward cache as it was left — Chromium does so even for
  // pages sent with Cache-Control: no-store — and an order marked done a
  // moment ago would look pending again. Every page here shows state that
  // may have changed, so such a page is loaded again from the server.
  window.addEventListener('pageshow', function (e) {
    if (e.persisted) window.location.reload();
  });

  function keyOf(el) {
    if (!el || el === document.body) return null;
    if (el.id) return '#' + CSS.escape(el.id);
    if (el.getAttribute('href')) return 'a[href="' + CSS.escape(el.getAttribute('href')) + '"]';
    return null;
  }

  function refresh(region) {
    var url = region.dataset.refreshUrl;
    var wait = parseInt(region.dataset.refreshMs, 10) || 10000;
    function tick() {
      if (document.hidden) {
        setTimeout(tick, wait);
        return;
      }
      // Do not pull a form out from under someone using it.
      if (region.querySelector('form[data-sent]')) return;
      fetch(url, { credentials: 'same-origin', headers: { 'Accept': 'text/html' } })
        .then(function (res) {
          if (res.status === 401) {
            window.location.reload();
            return null;
          }
          return res.ok ? res.text() : null;
        })
        .then(function (html) {
          if (html != null) {
            var focused = region.contains(document.activeElement) ? keyOf(document.activeElement) : null;
            region.innerHTML = html;
            var inner = region.firstElementChild;
            if (inner && inner.dataset.refreshMs) wait = parseInt(inner.dataset.refreshMs, 10) || wait;
            if (focused) {
              var again = region.querySelector(focused);
              if (again) again.focus();
            }
          }
        })
        .catch(function () { /* offline for a moment: try again later */ })
        .then(function () { setTimeout(tick, wait); });
    }
    setTimeout(tick, wait);
  }

  document.querySelectorAll('[data-refresh-url]').forEach(refresh);
})();
