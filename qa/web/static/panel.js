/* The compact chat inside the bubble's panel (<server>/widget). Replies are rendered by the
 * server (qa/web/render.py: everything from a document is escaped there); this script only
 * sends questions, shows what comes back, sends like/dislike and tells the host page to close
 * the panel on Escape. Labels come from data-* attributes of <main>, in the page's language.
 * The conversation's earlier turns live here, in the page, and go with each question as
 * `history` (as for POST /api/ask), so a follow-up ("那2020年呢？") is answered from them. */
(function () {
  "use strict";
  var main = document.querySelector("main");
  var L = main.dataset;
  var status = document.getElementById("ludao-status");

  if (window.parent !== window) {
    document.addEventListener("keydown", function (e) {
      if (e.key === "Escape") window.parent.postMessage({ ludao: "close" }, "*");
    });
  }
  window.addEventListener("message", function (e) {
    if (e.source === window.parent && e.data && e.data.ludao === "focus") {
      var field = document.querySelector("textarea, input");
      if (field) field.focus();
    }
  });

  function post(path, body, form) {
    var init = { method: "POST", credentials: "same-origin" };
    if (form) {
      init.body = new URLSearchParams(new FormData(form));
    } else {
      init.headers = { "content-type": "application/json" };
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        return { ok: r.ok, status: r.status, body: j };
      });
    }, function () {
      return { ok: false, status: 0, body: {} };
    });
  }

  function say(text) {
    status.textContent = "";
    window.setTimeout(function () { status.textContent = text; }, 50);
  }

  var login = document.getElementById("ludao-login");
  if (login) {
    login.addEventListener("submit", function (e) {
      e.preventDefault();
      post("login", null, login).then(function (res) {
        if (res.ok) window.location.reload();
        else say(L.loginFailed);
      });
    });
    return;
  }

  var log = document.getElementById("ludao-log");
  var form = document.getElementById("ludao-form");
  var box = document.getElementById("ludao-question");
  var send = form.querySelector("button");
  var turns = []; // {question, answer?}, oldest first: the turns the server answered
  var MAX_TURNS = 20, MAX_BYTES = 12 * 1024; // the server refuses more turns, or 16 KB bodies

  function request(question) {
    var body = { question: question, history: turns.slice(-MAX_TURNS) };
    while (body.history.length &&
           new TextEncoder().encode(JSON.stringify(body)).length > MAX_BYTES) {
      body.history.shift(); // the oldest turns matter least to a follow-up
    }
    return body;
  }

  function add(cls) {
    var item = document.createElement("div");
    item.className = "msg " + cls;
    log.appendChild(item);
    return item;
  }

  function scrollDown() {
    log.scrollTop = log.scrollHeight;
  }

  function feedback(item, question, reply) {
    var group = document.createElement("div");
    group.className = "fb";
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", L.rate);
    [["like", L.like], ["dislike", L.dislike]].forEach(
      function (spec) {
        var b = document.createElement("button");
        b.type = "button";
        b.dataset.rating = spec[0];
        b.setAttribute("aria-pressed", "false");
        b.textContent = spec[1];
        b.addEventListener("click", function () {
          post("widget/feedback", {
            question: question, rating: spec[0], answer: reply.answer,
            passage_ids: reply.passage_ids
          }).then(function (res) {
            if (!res.ok) { say(L.failed); return; }
            group.querySelectorAll("button").forEach(function (other) {
              other.setAttribute("aria-pressed", String(other === b));
            });
            say(L.thanks);
          });
        });
        group.appendChild(b);
      });
    item.appendChild(group);
  }

  function ask(question) {
    add("user").textContent = question;
    scrollDown();
    send.disabled = true;
    log.setAttribute("aria-busy", "true");
    say(L.busy);
    post("widget/ask", request(question)).then(function (res) {
      send.disabled = false;
      log.removeAttribute("aria-busy");
      if (res.ok) {
        var item = add("bot");
        // Server-rendered by qa/web/render.py, which escapes every document-derived string.
        item.insertAdjacentHTML("beforeend", res.body.html);
        feedback(item, question, res.body);
        var turn = { question: question };
        if (typeof res.body.answer === "string") turn.answer = res.body.answer.slice(0, 2000);
        turns.push(turn);
        say("");
      } else {
        var detail = res.body && typeof res.body.detail === "string" ? res.body.detail : "";
        add("error").textContent = res.status === 401 ? L.login : detail || L.failed;
        say("");
      }
      scrollDown();
    });
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var question = box.value.trim();
    if (!question || send.disabled) return;
    box.value = "";
    ask(question);
  });
  box.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
})();
