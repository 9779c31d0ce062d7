/* Prime Portal: the small helpers every page script shares (window.PortalPage).
 *
 * Loaded by base.html right after format.js and before every other script, so the
 * pages' scripts (portal.js, dashboard.js, order-ticket.js, close-panel.js,
 * trading-forms.js, linked.js) find it; they keep no copies of their own.
 *
 * - DOM: q, field, setField, setText, say, el, svg, svgPath, clear.
 * - Timing: debounce.
 * - Live pages: liveSocket (a WebSocket that reconnects by itself), socketStatusShow
 *   (its state in a #live-status).
 * - The server: getJSON, post, postForm; each resolves to an answer
 *   {ok, status, body}, where body is the JSON the server sent ({"code", "message"}
 *   on refusal) or {message} when the answer was not JSON. They reject only when
 *   the server could not be reached.
 * - Orders: newOrderId (a fresh client_order_id); healthText (a Margin Health).
 */
(function () {
  "use strict";

  var SVG_NS = "http://www.w3.org/2000/svg";
  var format = window.PortalFormat;

  // --- DOM ---------------------------------------------------------------------------

  function q(selector, scope) {
    return (scope || document).querySelector(selector);
  }

  // The element marked data-field="<name>" within `scope` (the document by default).
  function field(name, scope) {
    return q('[data-field="' + name + '"]', scope);
  }

  // Set a node's text only when it differs; `changed(node)` is told when it did.
  function setText(node, text, changed) {
    if (!node || node.textContent === text) return;
    node.textContent = text;
    if (changed) changed(node);
  }

  // A figure: its raw value in data-value ("" for none) and its text. Returns the
  // node (null when the page has no such field).
  function setField(name, value, text, scope, changed) {
    var node = field(name, scope);
    if (!node) return null;
    node.setAttribute("data-value", format.isBlank(value) ? "" : String(value));
    setText(node, text, changed);
    return node;
  }

  // A message line: its text and data-kind (info | success | warning | error).
  function say(node, text, kind) {
    if (!node) return;
    node.textContent = text;
    node.setAttribute("data-kind", kind || "info");
  }

  // An HTML element: attributes (the key "text" sets its text) and children.
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) {
      node.appendChild(child);
    });
    return node;
  }

  // An SVG element with its attributes and, optionally, its text.
  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs || {}).forEach(function (key) {
      node.setAttribute(key, attrs[key]);
    });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // An SVG path through [x, y] points: "M x y L x y …" (one decimal).
  function svgPath(points) {
    return points.map(function (point, i) {
      return (i ? "L" : "M") + point[0].toFixed(1) + " " + point[1].toFixed(1);
    }).join(" ");
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  // --- Timing ------------------------------------------------------------------------

  // `fn` once calls stop for `wait` ms, with the last call's arguments.
  function debounce(fn, wait) {
    var timer = null;
    return function () {
      var args = arguments;
      clearTimeout(timer);
      timer = setTimeout(function () {
        fn.apply(null, args);
      }, wait);
    };
  }

  // --- The server --------------------------------------------------------------------

  function answerOf(response) {
    return response.json().then(function (body) {
      return { ok: response.ok, status: response.status, body: body };
    }, function () {
      return { ok: false, status: response.status, body: { message: "The server gave an unexpected answer. Please try again." } };
    });
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(answerOf);
  }

  // POST `data` (FormData, with the CSRF token) and read the JSON answer.
  function post(url, data) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      body: data,
    }).then(answerOf);
  }

  function postForm(form) {
    return post(form.action, new FormData(form));
  }

  // --- Orders ------------------------------------------------------------------------

  // --- Live pages ----------------------------------------------------------------------

  var BACKOFF_BASE_MS = 500;
  var BACKOFF_MAX_MS = 30000;

  // A WebSocket to this site's `path` that reconnects by itself: exponential backoff
  // with jitter, and at once when the browser comes back online or the page back into
  // view, until the server refuses it for good (4401 signed out, 4403 not yours).
  // `handlers`: onState(state) with connecting | open | reconnecting | unauthorized |
  // forbidden (also "unsupported" without WebSocket), onOpen() (re-read what a push may
  // have been missed meanwhile: pushes are hints), onMessage(message) with each JSON
  // message. Returns {stop()}: a signed-out page stops it too.
  function liveSocket(path, handlers) {
    var socket = null;
    var attempt = 0;
    var timer = null;
    var stopped = false;

    function state(name) {
      if (name === "unauthorized" || name === "forbidden") stopped = true;
      if (handlers.onState) handlers.onState(name);
    }

    function connect() {
      timer = null;
      if (stopped) return;
      state(attempt ? "reconnecting" : "connecting");
      var scheme = location.protocol === "https:" ? "wss://" : "ws://";
      socket = new WebSocket(scheme + location.host + path);
      socket.onopen = function () {
        attempt = 0;
        state("open");
        if (handlers.onOpen) handlers.onOpen();
      };
      socket.onmessage = function (event) {
        var message;
        try {
          message = JSON.parse(event.data);
        } catch (error) {
          return;
        }
        if (message && handlers.onMessage) handlers.onMessage(message);
      };
      socket.onclose = function (event) {
        socket = null;
        if (stopped) return;
        if (event.code === 4401) return state("unauthorized");
        if (event.code === 4403) return state("forbidden");
        state("reconnecting");
        var delay = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * Math.pow(2, attempt));
        attempt += 1;
        timer = setTimeout(connect, delay * (0.75 + Math.random() * 0.5));
      };
    }

    function now() {
      if (socket || stopped) return;
      if (timer) clearTimeout(timer);
      connect();
    }

    if (!("WebSocket" in window)) {
      state("unsupported");
      return { stop: function () {} };
    }
    window.addEventListener("online", now);
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") now();
    });
    connect();
    return {
      stop: function () {
        stopped = true;
        if (timer) clearTimeout(timer);
        if (socket) socket.close();
      },
    };
  }

  // A live page's #live-status: its data-socket and its words for a liveSocket state.
  var SOCKET_LABELS = {
    connecting: "Connecting…",
    open: "Live",
    reconnecting: "Reconnecting…",
    unauthorized: "Signed out: reload to sign in",
    forbidden: "Not your account",
    unsupported: "Not live: this browser has no WebSocket",
  };

  function socketStatusShow(node, state) {
    node.setAttribute("data-socket", state);
    setField("socket_label", state, SOCKET_LABELS[state] || state, node);
  }

  // A fresh client_order_id: a retry with the same one cannot place an order twice.
  function newOrderId() {
    if (window.crypto && crypto.randomUUID) return "web-" + crypto.randomUUID().replace(/-/g, "");
    return "web-" + Date.now().toString(16) + Math.random().toString(16).slice(2);
  }

  // A Margin Health ("1.53"; none: no borrowing).
  function healthText(value) {
    return format.ratio(value, "No borrowing");
  }

  window.PortalPage = {
    q: q,
    field: field,
    setText: setText,
    setField: setField,
    say: say,
    el: el,
    svg: svg,
    svgPath: svgPath,
    clear: clear,
    debounce: debounce,
    liveSocket: liveSocket,
    socketStatusShow: socketStatusShow,
    getJSON: getJSON,
    post: post,
    postForm: postForm,
    newOrderId: newOrderId,
    healthText: healthText,
  };
})();
