/* Ludao (鹭岛) chat bubble for any intranet page, with one tag:
 *   <script src="https://ludao.example/widget.js" data-title="问答" data-position="bottom-right"
 *           data-color="#0b5cad" data-lang="zh" defer></script>
 * It adds one <ludao-widget> element whose shadow DOM holds the launcher and the panel, so no
 * style goes in or out. The panel is an iframe of <server>/widget, made on the first open only.
 * The server is where this script came from (its own src), never the page's URL or query. */
(function () {
  "use strict";
  var me = document.currentScript;
  if (!me || !me.src || document.querySelector("ludao-widget")) return;
  var base = new URL(".", me.src);
  if (!/^https?:$/.test(base.protocol)) return;
  var d = me.dataset;
  var en = d.lang === "en";
  var t = en
    ? { title: "Ask the documents", open: "Open chat: ", close: "Close chat" }
    : { title: "鹭岛问答", open: "打开问答：", close: "关闭问答" };
  var title = (d.title || t.title).slice(0, 80);
  var color = d.color && window.CSS && CSS.supports("color", d.color) ? d.color : "#0b5cad";
  var left = d.position === "bottom-left";

  var css =
    ":host{all:initial!important}" +
    ".w{font:14px/1.4 system-ui,'PingFang SC','Microsoft YaHei',sans-serif;color:#1f2933}" +
    ".l,.x{cursor:pointer;border:0;padding:0;color:#fff;background:var(--c);display:flex;" +
    "align-items:center;justify-content:center}" +
    ".l{position:fixed;bottom:20px;right:20px;z-index:2147483646;width:56px;height:56px;" +
    "border-radius:50%;box-shadow:0 4px 14px rgba(0,0,0,.3)}" +
    ".left .l,.left .p{right:auto;left:20px}" +
    ".l:focus-visible,.x:focus-visible{outline:3px solid #1f2933;outline-offset:2px;" +
    "box-shadow:0 0 0 2px #fff}" +
    ".p{position:fixed;bottom:88px;right:20px;z-index:2147483647;width:380px;height:600px;" +
    "max-width:calc(100vw - 40px);max-height:calc(100vh - 108px);display:flex;" +
    "flex-direction:column;background:#fff;border-radius:12px;overflow:hidden;" +
    "box-shadow:0 8px 30px rgba(0,0,0,.3)}" +
    ".p[hidden]{display:none}" +
    ".h{display:flex;align-items:center;gap:8px;padding:6px 6px 6px 14px;color:#fff;" +
    "background:var(--c)}" +
    ".h span{flex:1;font-size:15px;font-weight:600;overflow:hidden;text-overflow:ellipsis;" +
    "white-space:nowrap}" +
    ".x{width:36px;height:36px;border-radius:6px;font-size:24px;line-height:1}" +
    "iframe{flex:1;width:100%;border:0;background:#fff}" +
    "@media (max-width:480px){.p,.left .p{top:0;right:0;bottom:0;left:0;width:auto;" +
    "height:auto;max-width:none;max-height:none;border-radius:0}}";
  var icon =
    '<svg width="28" height="28" viewBox="0 0 24 24" aria-hidden="true" focusable="false">' +
    '<path fill="currentColor" d="M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2' +
    '-2V5a2 2 0 0 1 2-2zm3 6.5a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1 0' +
    ' 0 .01z"/></svg>';

  var host = document.createElement("ludao-widget");
  var root = host.attachShadow({ mode: "open" });
  root.innerHTML =
    '<div class="w" part="widget">' +
    '<div class="p" id="p" role="dialog" hidden><div class="h"><span></span>' +
    '<button class="x" type="button">\u00d7</button></div></div>' +
    '<button class="l" type="button" aria-haspopup="dialog" aria-expanded="false" ' +
    'aria-controls="p">' + icon + "</button></div>";
  // A constructed sheet is not an inline <style>, so a host page's strict CSP allows it.
  if (root.adoptedStyleSheets && window.CSSStyleSheet && CSSStyleSheet.prototype.replaceSync) {
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(css);
    root.adoptedStyleSheets = [sheet];
  } else {
    var style = document.createElement("style");
    style.textContent = css;
    root.appendChild(style);
  }
  var wrap = root.querySelector(".w");
  var panel = root.querySelector(".p");
  var launcher = root.querySelector(".l");
  var closer = root.querySelector(".x");
  wrap.style.setProperty("--c", color);
  if (left) wrap.classList.add("left");
  root.querySelector(".h span").textContent = title;
  panel.setAttribute("aria-label", title);
  launcher.setAttribute("aria-label", t.open + title);
  launcher.title = title;
  closer.setAttribute("aria-label", t.close);
  var frame = null;

  function focusChat() {
    if (!frame) return;
    frame.focus();
    frame.contentWindow.postMessage({ ludao: "focus" }, base.origin);
  }

  function open() {
    if (!frame) {
      frame = document.createElement("iframe");
      frame.title = title;
      frame.src = new URL("widget?lang=" + (en ? "en" : "zh"), base).href;
      frame.addEventListener("load", function () {
        if (!panel.hidden) focusChat();
      });
      panel.appendChild(frame);
    }
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    focusChat();
  }

  function close() {
    if (panel.hidden) return;
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    launcher.focus();
  }

  launcher.addEventListener("click", function () {
    if (panel.hidden) open();
    else close();
  });
  closer.addEventListener("click", close);
  root.addEventListener("keydown", function (e) {
    if (e.key === "Escape") close();
  });
  // The panel's own page asks to close on Escape; only that frame, from the Ludao origin.
  window.addEventListener("message", function (e) {
    if (frame && e.source === frame.contentWindow && e.origin === base.origin &&
        e.data && e.data.ludao === "close") close();
  });
  if (document.body) document.body.appendChild(host);
  else document.addEventListener("DOMContentLoaded", function () {
    document.body.appendChild(host);
  });
})();
