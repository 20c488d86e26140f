"""What a page in an opaque origin lacks and real apps need, given back inside it.

The proxy serves every forwarded page in an opaque origin (proxy.py, docs/ports.md). Apps
that read storage at start-up (TensorBoard) then fail with SecurityError, and a Worker's
script must be same-origin, which nothing but the page's own blob: URLs is. `STORAGE_SHIM`
is put first into each page the tab loads. It grants nothing the page could not write itself.
"""

from __future__ import annotations

import re

# Storage in memory for one page load, workers started from a blob: URL, an empty cookie.
STORAGE_SHIM = b"""<script>/* sm-debug: an opaque origin, storage in memory (docs/ports.md) */
(function () {
  function memory() {
    var data = new Map();
    return {
      getItem: function (k) { k = String(k); return data.has(k) ? data.get(k) : null; },
      setItem: function (k, v) { data.set(String(k), String(v)); },
      removeItem: function (k) { data.delete(String(k)); },
      clear: function () { data.clear(); },
      key: function (i) {
        var keys = Array.from(data.keys());
        return i < keys.length ? keys[i] : null;
      },
      get length() { return data.size; }
    };
  }
  ["localStorage", "sessionStorage"].forEach(function (name) {
    try { window[name]; } catch (e) {
      try {
        Object.defineProperty(window, name, { value: memory(), configurable: true });
      } catch (e2) {}
    }
  });
  // A worker's script must be same-origin, and nothing is same-origin with an opaque
  // origin but its own blob: URLs: start the worker from one that loads the script.
  var Native = window.Worker;
  if (Native) {
    var Shimmed = function (url, options) {
      try { return new Native(url, options); } catch (e) {
        var src = JSON.stringify(new URL(url, document.baseURI).href);
        var code = options && options.type === "module" ? "import " + src + ";"
          : "importScripts(" + src + ");";
        var blob = new Blob([code], { type: "text/javascript" });
        return new Native(URL.createObjectURL(blob), options);
      }
    };
    Shimmed.prototype = Native.prototype;
    window.Worker = Shimmed;
  }
  try { document.cookie; } catch (e) {
    try {
      Object.defineProperty(document, "cookie", {
        get: function () { return ""; }, set: function () {}, configurable: true
      });
    } catch (e2) {}
  }
})();
</script>"""
HEAD_TAG = re.compile(rb"<head(?:\s[^>]*)?>", re.I)
DOCTYPE = re.compile(rb"<!doctype[^>]*>", re.I)
SNIFF = 65536  # bytes of a page searched for <head>


def with_shim(page: bytes) -> bytes:
    """The page with STORAGE_SHIM first in its head (after the doctype, which must stay
    first, when there is no <head> tag)."""
    found = HEAD_TAG.search(page) or DOCTYPE.search(page)
    at = found.end() if found else 0
    return page[:at] + STORAGE_SHIM + page[at:]
