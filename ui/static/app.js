// Progressive behaviour of the page; everything works without it (forms post, pages reload).
// 1. the live stream: on each change, re-fetch this page and swap in its [data-live] parts, and show
//    what waits for her in the tab title; 2. live previews of what the tokenizer understood;
// 3. the login link's token is taken out of the address bar.
"use strict";
(function () {
  const body = document.body;
  const prefix = body.dataset.prefix || "/ui";

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // -- login -------------------------------------------------------------------------------------
  if (location.pathname === prefix + "/login" && location.search) {
    history.replaceState(null, "", prefix + "/login");
  }

  // -- live --------------------------------------------------------------------------------------
  const title = document.querySelector("title");
  const baseTitle = title ? title.dataset.base || document.title : document.title;
  let lastState = null;
  let refreshing = false;
  let again = false;

  function showCount(doc) {
    const n = doc.count;
    document.title = (n > 0 ? "(" + n + ") " : "") + baseTitle;
    document.querySelectorAll("[data-count-for]").forEach(function (b) {
      const k = Number(doc[b.dataset.countFor] || 0);
      b.textContent = String(k);
      b.hidden = k === 0;
    });
  }

  async function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    try {
      const response = await fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (!response.ok) return;
      const doc = new DOMParser().parseFromString(await response.text(), "text/html");
      document.querySelectorAll("[data-live][id]").forEach(function (part) {
        if (part.contains(document.activeElement) && document.activeElement !== document.body) return;
        const fresh = doc.getElementById(part.id);
        if (fresh) part.replaceWith(document.importNode(fresh, true));
      });
      const status = document.getElementById("live-status");
      if (status) status.textContent = "Updated " + new Date().toLocaleTimeString();
      body.dataset.liveVersion = String((Number(body.dataset.liveVersion) || 0) + 1);
    } finally {
      refreshing = false;
      if (again) { again = false; refresh(); }
    }
  }

  const streamUrl = body.dataset.liveStream;
  if (streamUrl && window.EventSource) {
    const source = new EventSource(streamUrl);
    source.addEventListener("change", function (event) {
      const doc = JSON.parse(event.data);
      showCount(doc);
      const state = JSON.stringify(doc.state);
      if (lastState !== null && state !== lastState) refresh();
      lastState = state;
      body.dataset.live = "connected";
    });
  }

  // -- previews ----------------------------------------------------------------------------------
  function chips(box, label, items, cls, sigil) {
    if (!items.length) return;
    const p = el("p");
    p.appendChild(el("strong", "", label + ": "));
    items.forEach(function (t) { p.appendChild(el("span", "chip " + (cls || ""), (sigil || "") + t)); });
    box.appendChild(p);
  }

  function renderPreview(box, input, doc) {
    box.replaceChildren();
    if (!input.value.trim()) return;
    if (!doc.ok) {
      const p = el("p", "refused", doc.message);
      if (doc.word) {
        const text = input.value;
        const at = Math.max(0, Math.min(doc.offset || 0, text.length));
        const q = el("p");
        q.appendChild(document.createTextNode(text.slice(0, at)));
        q.appendChild(el("span", "at", text.slice(at, at + doc.word.length) || doc.word));
        q.appendChild(document.createTextNode(text.slice(at + doc.word.length)));
        box.appendChild(q);
        p.textContent = doc.message + " (at \u201c" + doc.word + "\u201d)";
      }
      box.appendChild(p);
      return;
    }
    chips(box, "Tokens", doc.tokens, "", "?");
    chips(box, "Tags", doc.tags, "", "#");
    chips(box, "Vendors", doc.handles, "", "@");
    chips(box, "Constraints", Object.keys(doc.constraints).map(function (k) { return k + ": " + doc.constraints[k]; }), "constraint");
    if (doc.comparisons) chips(box, "Comparisons", doc.comparisons, "constraint");
    if (doc.words) chips(box, "Other words", doc.words, "word");
    if (doc.matches) {
      const p = el("p", "", "Would match " + doc.matches.length + " of the " + doc.heard + " intents heard so far");
      box.appendChild(p);
      if (doc.matches.length) {
        const ul = el("ul", "plain");
        doc.matches.forEach(function (m) { ul.appendChild(el("li", "", m)); });
        box.appendChild(ul);
      }
    }
  }

  document.querySelectorAll("[data-preview]").forEach(function (input) {
    const box = document.getElementById(input.dataset.preview);
    const api = prefix + (input.dataset.previewKind === "subscription" ? "/api/subscription" : "/api/parse");
    let timer = null;
    let seq = 0;
    async function update() {
      const mine = ++seq;
      const response = await fetch(api + "?text=" + encodeURIComponent(input.value), { credentials: "same-origin" });
      if (!response.ok || mine !== seq) return;
      renderPreview(box, input, await response.json());
    }
    input.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(update, 150); });
    if (input.value.trim()) update();
  });
})();
