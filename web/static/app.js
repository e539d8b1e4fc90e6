// Coupongate dashboard script. Hand-written, no build step, no dependencies.
//
// Outside the Shopify admin every page works without it; it only adds progress polling, copy
// buttons, confirmations and in-place "Load more". Inside the admin (<html data-embedded="1">)
// it also navigates: links and forms under /app are fetched with the App Bridge ID token as a
// bearer token and only <main> is swapped, so a click never reloads the document (and never
// bounces through Shopify). The bounce page (<html data-bounce="...">) asks App Bridge for a
// fresh ID token and reloads the page it was given.
(function () {
  "use strict";

  var root = document.documentElement;
  var embedded = root.getAttribute("data-embedded") === "1";
  var FRAGMENT = "X-Coupongate-Fragment";

  // The shop and host of an embedded load ride along on every URL the app pushes, so a reload
  // inside the admin is again an embedded document load.
  var embedParams = (function () {
    var q = new URLSearchParams(location.search);
    return { shop: q.get("shop") || "", host: q.get("host") || "" };
  })();

  function withEmbedParams(href) {
    var u = new URL(href, location.href);
    if (embedded && u.origin === location.origin) {
      u.searchParams.set("embedded", "1");
      if (embedParams.shop) u.searchParams.set("shop", embedParams.shop);
      if (embedParams.host) u.searchParams.set("host", embedParams.host);
      u.searchParams.delete("id_token");
    }
    return u;
  }

  function idToken() {
    if (!window.shopify || typeof window.shopify.idToken !== "function") {
      return Promise.reject(new Error("App Bridge is not loaded"));
    }
    return window.shopify.idToken();
  }

  // request fetches url as a fragment; inside the admin with a fresh ID token, and once more
  // with another one when the gateway answers 401 with X-Shopify-Retry-Invalid-Session-Request.
  function request(url, init, retried) {
    init = init || {};
    var headers = new Headers(init.headers || {});
    headers.set(FRAGMENT, "1");
    var ready = embedded
      ? idToken().then(function (t) { headers.set("Authorization", "Bearer " + t); })
      : Promise.resolve();
    return ready.then(function () {
      return fetch(url, {
        method: init.method || "GET", body: init.body, headers: headers,
        credentials: "same-origin", redirect: "follow"
      });
    }).then(function (res) {
      if (res.status === 401 && embedded && !retried &&
          res.headers.get("X-Shopify-Retry-Invalid-Session-Request") === "1") {
        return request(url, init, true);
      }
      return res;
    });
  }

  function parse(html) {
    return new DOMParser().parseFromString(html, "text/html");
  }

  function attachmentName(res) {
    var cd = res.headers.get("Content-Disposition") || "";
    if (!/attachment/i.test(cd)) return null;
    var m = /filename\*=UTF-8''([^;]+)/i.exec(cd) || /filename="?([^";]+)"?/i.exec(cd);
    return m ? decodeURIComponent(m[1]) : "download";
  }

  function saveBlob(res, name) {
    return res.blob().then(function (blob) {
      var a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = name;
      document.body.appendChild(a);
      a.click();
      setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
    });
  }

  // ---- Embedded navigation -------------------------------------------------------------

  var main = function () { return document.getElementById("main"); };

  // swap puts a fetched page into <main>. history is "push" for a new page, "replace" when going
  // back or forward, "" for the answer to a form post that was not redirected (a form shown again
  // with its errors keeps the address it had).
  function swap(res, history_) {
    var name = attachmentName(res);
    if (name) return saveBlob(res, name);
    return res.text().then(function (html) {
      var m = main();
      m.innerHTML = html;
      var title = res.headers.get("X-Coupongate-Title");
      if (title) document.title = decodeURIComponent(title);
      var target = withEmbedParams(res.url || location.href);
      var address = target.pathname + target.search + target.hash;
      if (history_ === "push") history.pushState({ coupongate: true }, "", address);
      else if (history_ === "replace") history.replaceState({ coupongate: true }, "", address);
      markNav(location.pathname);
      enhance(m);
      m.focus({ preventScroll: true });
      window.scrollTo(0, 0);
    });
  }

  function navigate(url, init, push) {
    var m = main();
    if (m) m.setAttribute("aria-busy", "true");
    var method = (init && init.method) || "GET";
    return request(url, init).then(function (res) {
      var how = push ? "push" : "replace";
      if (method !== "GET" && !res.redirected) how = "";
      return swap(res, how);
    })
      .catch(function (err) {
        // The page cannot be fetched (App Bridge missing, network down): load it the plain way.
        console.error("coupongate: navigation failed", err);
        location.assign(withEmbedParams(url).toString());
      })
      .finally(function () { var m = main(); if (m) m.removeAttribute("aria-busy"); });
  }

  function markNav(path) {
    var links = document.querySelectorAll(".nav a[data-section]");
    var section = sectionOf(path);
    for (var i = 0; i < links.length; i++) {
      if (links[i].getAttribute("data-section") === section) links[i].setAttribute("aria-current", "page");
      else links[i].removeAttribute("aria-current");
    }
  }

  function sectionOf(path) {
    var m = /^\/app\/([^/]+)/.exec(path);
    if (!m || m[1] === "lists") return "lists";
    return m[1];
  }

  function appURL(href) {
    if (!href) return null;
    var u = new URL(href, location.href);
    if (u.origin !== location.origin) return null;
    if (!/^\/app(\/|$)/.test(u.pathname) || /^\/app\/static\//.test(u.pathname)) return null;
    return u;
  }

  if (embedded) {
    document.addEventListener("click", function (e) {
      if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
      var a = e.target.closest && e.target.closest("a[href]");
      if (!a || (a.target && a.target !== "_self") || a.hasAttribute("data-no-fetch")) return;
      var u = appURL(a.getAttribute("href"));
      if (!u) return;
      e.preventDefault();
      if (a.hasAttribute("download")) {
        request(u.toString()).then(function (res) {
          return saveBlob(res, attachmentName(res) || a.getAttribute("download") || "download");
        });
        return;
      }
      navigate(u.toString(), null, true);
    });
    window.addEventListener("popstate", function () {
      navigate(location.href, null, false);
    });
  }

  // One submit listener: confirmations first, then (inside the admin) the fetch.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      e.preventDefault();
      return;
    }
    if (!embedded || e.defaultPrevented) return;
    var u = appURL(form.getAttribute("action") || location.href);
    if (!u) return;
    e.preventDefault();
    var method = (form.getAttribute("method") || "GET").toUpperCase();
    var data = new FormData(form);
    if (e.submitter && e.submitter.name) data.append(e.submitter.name, e.submitter.value);
    if (method === "GET") {
      u.search = new URLSearchParams(data).toString();
      navigate(u.toString(), null, true);
      return;
    }
    var body = form.enctype === "multipart/form-data" ? data : new URLSearchParams(data);
    navigate(u.toString(), { method: method, body: body }, true);
  });

  // ---- Enhancements (outside and inside the admin) ----------------------------------------

  function enhance(scope) {
    poll(scope);
    authImages(scope);
    scanner(scope);
  }

  // Elements with data-poll="url" (and an id) are replaced every two seconds (data-poll-interval,
  // in milliseconds, says otherwise) by the element with the same id in that URL's fragment, until
  // the new one carries no data-poll.
  function poll(scope) {
    var els = scope.querySelectorAll("[data-poll][id]");
    for (var i = 0; i < els.length; i++) schedule(els[i].id);
  }

  var polling = {};
  function pollEvery(el) {
    var ms = parseInt(el && el.getAttribute("data-poll-interval"), 10);
    return ms >= 500 ? ms : 2000;
  }
  function schedule(id) {
    if (polling[id]) return;
    polling[id] = true;
    setTimeout(function tick() {
      var el = document.getElementById(id);
      var url = el && el.getAttribute("data-poll");
      if (!url) { delete polling[id]; return; }
      request(url).then(function (res) {
        if (!res.ok) throw new Error("status " + res.status);
        return res.text();
      }).then(function (html) {
        var fresh = parse(html).getElementById(id);
        var now = document.getElementById(id);
        if (fresh && now) now.replaceWith(document.importNode(fresh, true));
        var next = document.getElementById(id);
        if (next && next.getAttribute("data-poll")) setTimeout(tick, pollEvery(next));
        else delete polling[id];
      }).catch(function () {
        setTimeout(tick, 5000);
      });
    }, pollEvery(document.getElementById(id)));
  }

  // Copy buttons: data-copy="text" or data-copy-target="#element".
  document.addEventListener("click", function (e) {
    var b = e.target.closest && e.target.closest("[data-copy], [data-copy-target]");
    if (!b) return;
    e.preventDefault();
    var text = b.getAttribute("data-copy");
    if (text === null) {
      var t = document.querySelector(b.getAttribute("data-copy-target"));
      text = t ? (t.value !== undefined ? t.value : t.textContent) : "";
    }
    var label = b.textContent;
    var done = function () {
      b.textContent = "Copied";
      setTimeout(function () { b.textContent = label; }, 1500);
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text); done(); });
    } else {
      fallbackCopy(text);
      done();
    }
  });

  function fallbackCopy(text) {
    var ta = document.createElement("textarea");
    ta.value = text;
    ta.setAttribute("readonly", "");
    ta.className = "visually-hidden";
    document.body.appendChild(ta);
    ta.select();
    try { document.execCommand("copy"); } catch (err) { /* nothing more to try */ }
    ta.remove();
  }

  // "Load more": <a data-load-more="#rows" href="next page">, inside an element with
  // data-load-more-box; the next page's rows are appended and its own box replaces this one.
  document.addEventListener("click", function (e) {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    var a = e.target.closest && e.target.closest("a[data-load-more]");
    if (!a) return;
    var u = appURL(a.getAttribute("href"));
    if (!u) return;
    e.preventDefault();
    e.stopImmediatePropagation();
    var sel = a.getAttribute("data-load-more");
    var box = a.closest("[data-load-more-box]");
    a.setAttribute("aria-busy", "true");
    request(u.toString()).then(function (res) { return res.text(); }).then(function (html) {
      var doc = parse(html);
      var rows = doc.querySelector(sel);
      var target = document.querySelector(sel);
      if (rows && target) {
        Array.prototype.forEach.call(rows.childNodes, function (n) {
          target.appendChild(document.importNode(n, true));
        });
      }
      var nextBox = doc.querySelector("[data-load-more-box]");
      if (box) {
        if (nextBox) box.replaceWith(document.importNode(nextBox, true));
        else box.remove();
      }
    }).catch(function () {
      location.assign(withEmbedParams(u.toString()).toString());
    });
  }, true);

  // ---- The bounce page ----------------------------------------------------------------------

  var reload = root.getAttribute("data-bounce");
  if (reload) {
    var target = new URL(reload, location.href);
    if (target.origin === location.origin && /^\/app(\/|$)/.test(target.pathname)) {
      var tries = 0;
      (function bounce() {
        if (!window.shopify || typeof window.shopify.idToken !== "function") {
          if (++tries < 100) setTimeout(bounce, 50);
          return;
        }
        window.shopify.idToken().then(function (t) {
          target.searchParams.set("id_token", t);
          location.replace(target.toString());
        });
      })();
    }
  }

  // ---- Images behind the sign-in (the code page's QR code) ------------------------------------

  // Inside the admin an <img> cannot carry the ID token, so images under /app are written
  // <img data-auth-src="url">: fetched with the token and shown as a data: URL (the CSP allows
  // data: images, not blob: ones).
  function authImages(scope) {
    var imgs = scope.querySelectorAll("img[data-auth-src]");
    Array.prototype.forEach.call(imgs, function (img) {
      var u = appURL(img.getAttribute("data-auth-src"));
      img.removeAttribute("data-auth-src");
      if (!u) return;
      request(u.toString()).then(function (res) {
        if (!res.ok) throw new Error("status " + res.status);
        return res.blob();
      }).then(function (blob) {
        var r = new FileReader();
        r.onload = function () { img.src = r.result; };
        r.readAsDataURL(blob);
      }).catch(function (err) { console.error("coupongate: image", err); });
    });
  }

  // ---- The scanner (/app/scan, api/dashboard_scan.go) -------------------------------------
  // [data-scanner] loads the QR reader its data-reader names (the vendored jsQR, which only this
  // page loads), reads the rear camera, and submits [data-scanner-form] with the code it read.
  // data-autostart starts the camera at once; otherwise a button does.

  function scanner(scope) {
    var box = scope.querySelector("[data-scanner]");
    if (!box || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return;
    var start = box.querySelector("[data-scanner-start]");
    start.hidden = false;
    start.addEventListener("click", function () { startScanner(box); });
    if (box.hasAttribute("data-autostart")) startScanner(box);
  }

  var reader;
  function loadReader(src) {
    if (!reader) {
      reader = new Promise(function (resolve, reject) {
        if (window.jsQR) { resolve(window.jsQR); return; }
        var s = document.createElement("script");
        s.src = src;
        s.onload = function () { resolve(window.jsQR); };
        s.onerror = function () { reader = null; reject(new Error("the QR reader did not load")); };
        document.head.appendChild(s);
      });
    }
    return reader;
  }

  function startScanner(box) {
    if (box.hasAttribute("data-running")) return;
    box.setAttribute("data-running", "");
    var video = box.querySelector("[data-scanner-video]");
    var status = box.querySelector("[data-scanner-status]");
    var form = box.querySelector("[data-scanner-form]");
    var start = box.querySelector("[data-scanner-start]");
    var stream;
    var stop = function () { if (stream) stream.getTracks().forEach(function (t) { t.stop(); }); };
    status.textContent = "Starting the camera…";
    Promise.all([
      loadReader(box.getAttribute("data-reader")),
      navigator.mediaDevices.getUserMedia({ video: { facingMode: { ideal: "environment" } }, audio: false })
    ]).then(function (r) {
      var jsQR = r[0];
      stream = r[1];
      video.srcObject = stream;
      video.hidden = false;
      start.hidden = true;
      return video.play().then(function () {
        status.textContent = "Hold the code's QR code in front of the camera.";
        var canvas = document.createElement("canvas");
        var ctx = canvas.getContext("2d", { willReadFrequently: true });
        (function tick() {
          if (!box.isConnected) { stop(); return; }
          var w = video.videoWidth, h = video.videoHeight;
          if (w && h) {
            var scale = Math.min(1, 960 / Math.max(w, h));
            canvas.width = Math.round(w * scale);
            canvas.height = Math.round(h * scale);
            ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
            var img = ctx.getImageData(0, 0, canvas.width, canvas.height);
            var found = jsQR(img.data, img.width, img.height, { inversionAttempts: "attemptBoth" });
            if (found && found.data) {
              stop();
              video.hidden = true;
              box.removeAttribute("data-running");
              form.elements.code.value = found.data;
              status.textContent = "Read the code " + found.data + ".";
              if (form.requestSubmit) form.requestSubmit(); else form.submit();
              return;
            }
          }
          setTimeout(tick, 120);
        })();
      });
    }).catch(function (err) {
      stop();
      box.removeAttribute("data-running");
      video.hidden = true;
      start.hidden = false;
      status.textContent = "The camera did not start (" + (err && err.message || err) + "). Type the code instead.";
    });
  }

  enhance(document);
})();
