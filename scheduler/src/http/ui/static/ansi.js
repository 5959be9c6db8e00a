/* Terminal output to DOM for the task page's live logs. Same mapping as src/http/ui/ansi.rs:
 * SGR colours and attributes become spans with ansi-* classes, every other escape or control
 * sequence is dropped, and text is only ever inserted as text nodes. */
(function () {
  "use strict";

  var ESC = "\u001b";

  function defaultStyle() {
    return { bold: false, faint: false, italic: false, underline: false, fg: null, bg: null };
  }

  function extendedColour(params, index) {
    // Returns [colour or null, parameters used] for a 38/48 tail.
    if (params[index] === 5) {
      if (index + 1 >= params.length) return [null, 1];
      var n = params[index + 1];
      return [n < 16 ? n : null, 2];
    }
    if (params[index] === 2) return [null, Math.min(4, params.length - index)];
    return [null, 0];
  }

  function applySgr(style, params) {
    if (params.length === 0) return defaultStyle();
    var i = 0;
    while (i < params.length) {
      var code = params[i++];
      if (code === 0) style = defaultStyle();
      else if (code === 1) style.bold = true;
      else if (code === 2) style.faint = true;
      else if (code === 3) style.italic = true;
      else if (code === 4) style.underline = true;
      else if (code === 22) { style.bold = false; style.faint = false; }
      else if (code === 23) style.italic = false;
      else if (code === 24) style.underline = false;
      else if (code >= 30 && code <= 37) style.fg = code - 30;
      else if (code === 39) style.fg = null;
      else if (code >= 40 && code <= 47) style.bg = code - 40;
      else if (code === 49) style.bg = null;
      else if (code >= 90 && code <= 97) style.fg = code - 90 + 8;
      else if (code >= 100 && code <= 107) style.bg = code - 100 + 8;
      else if (code === 38 || code === 48) {
        var ext = extendedColour(params, i);
        i += ext[1];
        if (code === 38) style.fg = ext[0]; else style.bg = ext[0];
      }
    }
    return style;
  }

  function classes(style) {
    var list = [];
    if (style.bold) list.push("ansi-bold");
    if (style.faint) list.push("ansi-faint");
    if (style.italic) list.push("ansi-italic");
    if (style.underline) list.push("ansi-underline");
    if (style.fg !== null) list.push("ansi-fg-" + style.fg);
    if (style.bg !== null) list.push("ansi-bg-" + style.bg);
    return list.join(" ");
  }

  function isKept(ch) {
    var code = ch.charCodeAt(0);
    return ch === "\n" || ch === "\t" || (code >= 0x20 && code !== 0x7f && !(code >= 0x80 && code < 0xa0));
  }

  /* A renderer appending to `target`; write() may be called with arbitrary chunks (a sequence
   * split across chunks is completed by the next one). */
  function createRenderer(target, maxChars) {
    var style = defaultStyle();
    var carry = "";
    var written = 0;
    var limit = maxChars || 2000000;

    function append(text) {
      if (!text) return;
      var cls = classes(style);
      var node;
      if (cls) {
        node = document.createElement("span");
        node.className = cls;
        node.textContent = text;
      } else {
        node = document.createTextNode(text);
      }
      target.appendChild(node);
      written += text.length;
      // Bound the page's memory for very chatty tasks: drop the oldest output.
      while (written > limit && target.firstChild) {
        written -= (target.firstChild.textContent || "").length;
        target.removeChild(target.firstChild);
      }
    }

    function write(chunk) {
      var input = carry + chunk;
      carry = "";
      var run = "";
      var i = 0;
      while (i < input.length) {
        var ch = input[i];
        if (ch !== ESC) {
          if (isKept(ch)) run += ch;
          i++;
          continue;
        }
        if (i + 1 >= input.length) { carry = input.slice(i); break; }
        if (input[i + 1] !== "[") {
          // A non-CSI escape (ESC ( B, ESC 7...): drop its intermediates and final byte.
          var k = i + 1;
          while (k < input.length && input.charCodeAt(k) >= 0x20 && input.charCodeAt(k) <= 0x2f) k++;
          if (k >= input.length) { carry = input.slice(i); break; }
          i = k + 1;
          continue;
        }
        var j = i + 2;
        while (j < input.length) {
          var c = input.charCodeAt(j);
          if (c >= 0x40 && c <= 0x7e) break;
          j++;
        }
        if (j >= input.length) { carry = input.slice(i); break; }
        if (input[j] === "m") {
          append(run);
          run = "";
          var body = input.slice(i + 2, j);
          var params = body === "" ? [] : body.split(/[;:]/).map(function (f) {
            var n = parseInt(f, 10);
            return isNaN(n) ? 0 : n;
          });
          style = applySgr(style, params);
        }
        i = j + 1;
      }
      append(run);
    }

    return { write: write };
  }

  window.EremeticAnsi = { createRenderer: createRenderer };
})();
