// The example intranet page's script (see intranet.html): where the Ludao server is, then the
// <gradio-app> web component and the iframe pointing at it.
(function () {
  "use strict";
  var params = new URLSearchParams(window.location.search);
  var fallback = "http://127.0.0.1:7860/";
  var servedByLudao = /^https?:$/.test(window.location.protocol) &&
    /\/examples\/intranet\.html$/.test(window.location.pathname);
  var own = window.location.href.replace(/examples\/intranet\.html.*$/, "");
  var src = params.get("src") || (servedByLudao ? own : fallback);
  var url = new URL(src, window.location.href);
  if (!/^https?:$/.test(url.protocol)) {
    throw new Error("Ludao src must be an http(s) URL");
  }
  if (servedByLudao && url.origin !== window.location.origin) {
    // On Ludao's own origin a foreign script could read the chat as the user: refuse it.
    console.warn("ignoring ?src= of another origin on Ludao's own page:", url.origin);
    url = new URL(own);
  }
  if (!url.pathname.endsWith("/")) { url.pathname += "/"; }
  url.search = "";
  url.hash = "";
  var base = url.href;
  document.getElementById("ludao-src").textContent = base;

  // The web component's loader comes from the Ludao server itself (no CDN needed).
  var loader = document.createElement("script");
  loader.type = "module";
  loader.src = base + "gradio.js";
  document.head.appendChild(loader);

  var widget = document.createElement("gradio-app");
  widget.setAttribute("src", base);
  widget.setAttribute("info", "false");
  widget.setAttribute("container", "true");
  widget.setAttribute("eager", "true");
  widget.setAttribute("initial_height", "640px");
  widget.setAttribute("theme_mode", "light");
  document.getElementById("ludao-widget").appendChild(widget);

  document.getElementById("ludao-iframe").src = base;

  // 3. The chat bubble (docs/embedding.md): one script from the Ludao server, which finds the
  // server from its own src. On a page with a fixed address it is just the <script> tag.
  var bubble = document.createElement("script");
  bubble.src = base + "widget.js";
  bubble.dataset.title = "鹭岛问答";
  bubble.dataset.lang = "zh";
  document.body.appendChild(bubble);
})();
