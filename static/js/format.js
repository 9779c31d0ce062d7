/* Prime Portal: the one formatting layer of the pages' scripts (window.PortalFormat).
 *
 * The same rules as portal/format.py, which renders the pages on the server:
 * money "12,345.67 USDC" (half up, grouped, never "-0.00"); binary prices in cents
 * ("89¢", "45.36¢"); perp prices "67,250.50"; quantities "1,086.96" (no spurious
 * decimals); ratios "1.53" (none: "∞"); percentages "42.5%"; times in the reader's
 * zone with the zone shown ("7 Dec 2026, 09:03 UTC"). Decimals arrive as exact
 * strings and are rounded as strings, never through binary floats.
 *
 * It also stores the reader's IANA time zone in the `tz` cookie, so the pages the
 * server renders show times in the same zone (portal.middleware.TimeZoneMiddleware).
 */
(function () {
  "use strict";

  var DASH = "—";

  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    var current = (document.cookie.match(/(?:^|; )tz=([^;]*)/) || [])[1];
    if (zone && decodeURIComponent(current || "") !== zone) {
      document.cookie = "tz=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; samesite=lax";
    }
  } catch (error) { /* no Intl: times stay in UTC, labelled so */ }

  function isBlank(value) {
    return value === null || value === undefined || value === "";
  }

  function isNumeric(value) {
    return /^\s*[+-]?(\d+(\.\d*)?|\.\d+)\s*$/.test(String(value));
  }

  // Round a decimal string half up to `places`: {negative, integer, fraction}.
  function decimalRound(value, places) {
    var text = String(value).trim();
    var negative = text.charAt(0) === "-";
    if (negative || text.charAt(0) === "+") text = text.slice(1);
    var parts = text.split(".");
    var integer = parts[0].replace(/^0+(?=\d)/, "") || "0";
    var fraction = (parts[1] || "").replace(/\D/g, "");
    while (fraction.length < places + 1) fraction += "0";
    var digits = (integer + fraction.slice(0, places)).split("");
    if (fraction.charCodeAt(places) - 48 >= 5) {
      var i = digits.length - 1;
      while (i >= 0 && digits[i] === "9") {
        digits[i] = "0";
        i -= 1;
      }
      if (i < 0) digits.unshift("1");
      else digits[i] = String(Number(digits[i]) + 1);
    }
    var kept = digits.join("");
    var intPart = kept.slice(0, kept.length - places) || "0";
    var fracPart = places ? kept.slice(kept.length - places) : "";
    var zero = /^0*$/.test(intPart + fracPart);
    return { negative: negative && !zero, integer: intPart, fraction: fracPart };
  }

  function groupDigits(integer) {
    return integer.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  // `value` rounded half up to `places`, grouped unless group === false.
  function fixed(value, places, group) {
    var r = decimalRound(value, places);
    return (r.negative ? "-" : "") + (group === false ? r.integer : groupDigits(r.integer)) +
      (places ? "." + r.fraction : "");
  }

  function trimmed(value, places) {
    var text = fixed(value, places);
    if (text.indexOf(".") >= 0) text = text.replace(/0+$/, "").replace(/\.$/, "");
    return text === "-0" ? "0" : text;
  }

  // value × 10^shift as a decimal string (moves the point; exact).
  function shifted(value, shift) {
    var text = String(value).trim();
    var sign = "";
    if (text.charAt(0) === "-" || text.charAt(0) === "+") {
      sign = text.charAt(0) === "-" ? "-" : "";
      text = text.slice(1);
    }
    var parts = text.split(".");
    var integer = parts[0] || "0";
    var fraction = parts[1] || "";
    while (fraction.length < shift) fraction += "0";
    return sign + (integer + fraction.slice(0, shift)).replace(/^0+(?=\d)/, "") +
      "." + (fraction.slice(shift) || "0");
  }

  function signed(text) {
    return text.charAt(0) === "-" || /^[0.,]+$/.test(text) ? text : "+" + text;
  }

  function shown(value) {
    return isBlank(value) ? DASH : String(value);
  }

  function humanized(code) {
    var words = code.replace(/_/g, " ");
    return words.charAt(0).toUpperCase() + words.slice(1) + ".";
  }

  function pad(number) {
    return (number < 10 ? "0" : "") + number;
  }

  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

  function zoneName(date) {
    try {
      var parts = new Intl.DateTimeFormat("en-GB", { timeZoneName: "short" }).formatToParts(date);
      for (var i = 0; i < parts.length; i += 1) {
        if (parts[i].type === "timeZoneName") return parts[i].value;
      }
    } catch (error) { /* fall through */ }
    return "";
  }

  var format = {
    isBlank: isBlank,
    fixed: fixed,
    money: function (value, places) {
      if (!isNumeric(value)) return shown(value);
      return fixed(value, places === undefined ? 2 : places) + " USDC";
    },
    moneySigned: function (value, places) {
      if (!isNumeric(value)) return shown(value);
      return signed(fixed(value, places === undefined ? 2 : places)) + " USDC";
    },
    // Money in a table cell whose header says "(USDC)" (portal.format.amount): "1,234.57".
    amount: function (value, places) {
      if (!isNumeric(value)) return shown(value);
      return fixed(value, places === undefined ? 2 : places);
    },
    // A P&L or movement in such a cell (portal.format.amount_signed): "+1,000.00".
    amountSigned: function (value, places) {
      if (!isNumeric(value)) return shown(value);
      return signed(fixed(value, places === undefined ? 2 : places));
    },
    // The reader's time-zone abbreviation at `value` (now by default): "UTC", "CET".
    zone: function (value) {
      var date = isBlank(value) ? new Date() : value instanceof Date ? value : new Date(value);
      return isNaN(date.getTime()) ? "" : zoneName(date);
    },
    ratio: function (value, unbounded) {
      if (isBlank(value)) return unbounded === undefined ? "∞" : unbounded;
      return isNumeric(value) ? fixed(value, 2) : String(value);
    },
    percent: function (value, places) {
      if (!isNumeric(value)) return shown(value);
      return fixed(shifted(value, 2), places === undefined ? 1 : places) + "%";
    },
    percentSigned: function (value, places) {
      if (!isNumeric(value)) return shown(value);
      return signed(fixed(shifted(value, 2), places === undefined ? 1 : places)) + "%";
    },
    cents: function (value) {
      if (!isNumeric(value)) return shown(value);
      return trimmed(shifted(value, 2), 2) + "¢";
    },
    perpPrice: function (value) {
      if (!isNumeric(value)) return shown(value);
      return fixed(value, Math.abs(Number(value)) >= 1 ? 2 : 4);
    },
    price: function (value, binary) {
      return binary ? format.cents(value) : format.perpPrice(value);
    },
    qty: function (value, places) {
      if (!isNumeric(value)) return shown(value);
      if (places === undefined) places = Math.abs(Number(value)) >= 1 ? 2 : 6;
      return trimmed(value, places);
    },
    // Django's floatformat:"-N": no decimals for a whole number, else N.
    number: function (value, places, group) {
      if (!isNumeric(value)) return shown(value);
      var fraction = String(value).split(".")[1] || "";
      return fixed(value, /^0*$/.test(fraction) ? 0 : places, group);
    },
    sign: function (value) {
      if (!isNumeric(value) || /^[+-]?[0.]*$/.test(String(value).trim())) return "zero";
      return String(value).trim().charAt(0) === "-" ? "negative" : "positive";
    },
    // An amount where every micro-USDC counts: 2 to 6 decimals ("100.000001 USDC").
    moneyExact: function (value) {
      if (!isNumeric(value)) return shown(value);
      var parts = fixed(value, 6).split(".");
      var fraction = parts[1].replace(/0+$/, "");
      while (fraction.length < 2) fraction += "0";
      return parts[0] + "." + fraction + " USDC";
    },
    // An error or reason as a sentence with no machine code (portal.format.sentence):
    // "card_declined: the issuer said no" → "The issuer said no.".
    sentence: function (value, known) {
      if (isBlank(value)) return "";
      var text = String(value).split(/\s+/).filter(Boolean).join(" ");
      if (!text) return "";
      known = known || {};
      var code = /^[a-z][a-z0-9]*(?:_[a-z0-9]+)+/;
      var bare = new RegExp("^(" + code.source.slice(1) + ")\\.?$").exec(text);
      if (bare) return known[bare[1]] || humanized(bare[1]);
      var lead = new RegExp("^(" + code.source.slice(1) + ")\\s*:\\s*").exec(text);
      if (lead) {
        if (Object.prototype.hasOwnProperty.call(known, lead[1])) return known[lead[1]];
        text = text.slice(lead[0].length) || humanized(lead[1]);
      }
      text = text.replace(/(^|[^.…])\.\.(?!\.)/g, "$1.");
      text = text.charAt(0).toUpperCase() + text.slice(1);
      return /[.!?…]$/.test(text) ? text : text + ".";
    },
    // "7 Dec 2026, 09:03 UTC" in the reader's zone.
    when: function (value) {
      if (isBlank(value)) return DASH;
      var date = value instanceof Date ? value : new Date(value);
      if (isNaN(date.getTime())) return String(value);
      var zone = zoneName(date);
      return date.getDate() + " " + MONTHS[date.getMonth()] + " " + date.getFullYear() + ", " +
        pad(date.getHours()) + ":" + pad(date.getMinutes()) + (zone ? " " + zone : "");
    },
    // "09:03:40": a clock time, for chart axes and live "as of" stamps.
    clock: function (value) {
      var date = value instanceof Date ? value : new Date(value);
      if (isNaN(date.getTime())) return DASH;
      return pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" + pad(date.getSeconds());
    },
    day: function (value) {
      var date = value instanceof Date ? value : new Date(value);
      if (isNaN(date.getTime())) return DASH;
      return date.getDate() + " " + MONTHS[date.getMonth()];
    },
  };

  window.PortalFormat = format;
})();
