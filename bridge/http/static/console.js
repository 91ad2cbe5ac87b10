// Shared by the console pages: the session (POST /login sets an HttpOnly cookie, so EventSource
// and <img> are authorised too; the token itself is never stored by the page), the header, fetch.
"use strict";

const Console = (() => {
  let me = null;

  function el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }

  class ApiError extends Error {
    constructor(status, body) {
      super(typeof body.detail === "string" ? body.detail : `HTTP ${status}`);
      this.status = status; this.body = body;
    }
  }

  async function api(path, opts = {}) {
    const init = { credentials: "same-origin", ...opts, headers: { ...(opts.headers || {}) } };
    if (opts.json !== undefined) {
      init.method = init.method || "POST";
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(opts.json);
    }
    const res = await fetch(path, init);
    if (res.status === 401) { showLogin("Your session ended; log in again."); throw new ApiError(401, await res.json()); }
    const type = res.headers.get("content-type") || "";
    const body = type.includes("json") ? await res.json() : await res.text();
    if (!res.ok) throw new ApiError(res.status, typeof body === "string" ? { detail: body } : body);
    return body;
  }

  function header(here) {
    const nav = el("nav", {},
      el("a", { href: "/", class: here === "live" ? "here" : "", text: "Live alerts" }),
      el("a", { href: "/static/map.html", class: here === "map" ? "here" : "", text: "Map" }),
      el("a", { href: "/static/cameras.html", class: here === "cameras" ? "here" : "", text: "Camera wall" }),
      el("a", { href: "/static/sensors.html", class: here === "sensors" ? "here" : "", text: "Sensors" }),
      el("a", { href: "/static/health.html", class: here === "health" ? "here" : "", text: "Health" }),
      el("a", { href: "/static/tune.html", class: here === "tune" ? "here" : "", text: "Tuning bench", id: "nav-tune" }),
      el("a", { href: "/static/audit.html", class: here === "audit" ? "here" : "", text: "Audit log", id: "nav-audit" }));
    const who = el("span", { class: "who", id: "who" });
    const h = el("header", {}, el("h1", { text: "雪亮 · xueliang-ingest" }), nav, el("span", { id: "conn" }), who);
    document.body.prepend(h);
  }

  function showLogin(message) {
    document.querySelectorAll("body > main").forEach(m => m.classList.add("hidden"));
    let box = document.getElementById("login");
    if (!box) {
      const input = el("input", { type: "password", id: "token", placeholder: "xl_…", autocomplete: "off" });
      const err = el("div", { class: "err", id: "login-error" });
      const form = el("form", { class: "panel", id: "login" },
        el("h2", { text: "Log in with your API token" }), input,
        el("button", { class: "primary", type: "submit", text: "Log in" }), err,
        el("p", { class: "muted", text: "Tokens are made with `xueliang tokens add`. The page keeps only a session cookie." }));
      form.addEventListener("submit", async ev => {
        ev.preventDefault();
        const res = await fetch("/login", { method: "POST", headers: { "Content-Type": "application/json" },
                                            body: JSON.stringify({ token: input.value.trim() }) });
        if (res.ok) { location.reload(); return; }
        const body = await res.json().catch(() => ({}));
        err.textContent = typeof body.detail === "string" ? body.detail : "login failed";
      });
      document.body.append(form);
      box = form;
    }
    if (message) document.getElementById("login-error").textContent = message === true ? "" : message;
  }

  async function start(here) {
    header(here);
    const res = await fetch("/whoami", { credentials: "same-origin" });
    if (!res.ok) { showLogin(true); return null; }
    me = await res.json();
    const who = document.getElementById("who");
    who.replaceChildren(`${me.name} · ${me.role}`, " ",
      el("button", { text: "Log out", id: "logout", onclick: async () => { await fetch("/logout", { method: "POST" }); location.reload(); } }));
    if (me.role !== "admin") document.getElementById("nav-audit").classList.add("hidden");
    if (me.role === "viewer") document.getElementById("nav-tune").classList.add("hidden");
    document.getElementById("app").classList.remove("hidden");  // every page's content, once logged in
    return me;
  }

  // Clear 4xx answers: the message, and for a 422 each field's problem.
  function describe(err) {
    if (!(err instanceof ApiError)) return String(err);
    if (Array.isArray(err.body.detail)) return err.body.detail.map(d => `${d.field || (d.loc || []).join(".")}: ${d.msg}`).join("; ");
    return err.message;
  }

  return { api, el, start, describe, ApiError, get me() { return me; } };
})();
