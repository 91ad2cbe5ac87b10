// The live list: one row per incident (state, age, best evidence, review, clock light), newest
// activity first. Every live event (SSE /events/stream) refreshes its incident's row from /incidents.
"use strict";

const Incidents = (() => {
  const { api, el } = Console;
  const f = id => document.getElementById("f-" + id);
  const rows = new Map();  // incident id -> <tr>
  const REASONS = { wrong_class: "wrong class", shadow: "shadow", reflection: "reflection", parked_legally: "parked legally",
                    duplicate: "duplicate", other: "other" };

  function age(s) {
    if (s < 90) return `${Math.round(s)} s`;
    if (s < 5400) return `${Math.round(s / 60)} min`;
    if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
    return `${(s / 86400).toFixed(1)} d`;
  }

  function reviewText(r) {
    if (!r) return "";
    return r.decision === "confirmed" ? "✔ confirmed" : `✘ false alarm: ${REASONS[r.reason] || r.reason || ""}`;
  }

  function params() {
    const q = new URLSearchParams();
    const grid = f("grid").value || f("street").value;
    if (grid) q.set("grid", grid);
    for (const k of ["category", "state", "review"]) if (f(k).value) q.set(k, f(k).value);
    if (f("overdue").checked) q.set("overdue", "true");
    const at = new URLSearchParams(location.search).get("at");  // "as at": evaluate the clocks at this Unix time
    if (at) q.set("at", at);
    return q;
  }

  function row(inc, fresh, onclick) {
    const ev = inc.event, p1 = ev.priority === 1;
    const tr = el("tr", { class: `clickable ${inc.state}${p1 ? " p1" : ""}${fresh ? " fresh" : ""}`,
                          "data-incident-id": inc.incident_id, "data-event-id": ev.event_id, "data-status": inc.state,
                          "data-light": inc.light, "data-review": inc.review ? inc.review.decision : "",
                          "data-work-order": inc.work_order || "", "data-priority": ev.priority ?? "",
                          "data-camera": ev.source.camera_id ?? "", "data-sensor": ev.source.sensor_id ?? "" });
    tr.addEventListener("click", () => onclick(inc.incident_id));
    const st = el("td", {}, el("span", { class: "light " + inc.light, title: inc.light_reason }), " ",
                  el("span", { class: "status " + inc.state, text: inc.state }));
    if (ev.priority) st.append(" ", el("span", { class: "badge" + (p1 ? " p1" : ""), text: p1 ? "P1 紧急" : "P" + ev.priority }));
    if (inc.work_order) st.append(el("div", { class: "muted wo", text: `work order: ${inc.work_order}` }));
    if (inc.review) st.append(el("div", { class: "review " + inc.review.decision, text: reviewText(inc.review) }));
    const g = ev.grid ? `${ev.grid.name} ${ev.grid.code} · ${ev.grid.street ?? ""} ${ev.grid.community ?? ""}` : `no grid: ${ev.grid_reason}`;
    const thumb = el("td");
    if (inc.thumbnail) thumb.append(el("img", { src: inc.thumbnail, alt: "evidence", loading: "lazy" }));
    else thumb.textContent = "—";
    tr.append(st, el("td", { text: age(inc.age_s), title: `reported ${new Date(inc.opened_at).toLocaleString()}` }),
              el("td", { text: `${ev.category.name} (${ev.category.code})` }), el("td", { text: g }),
              el("td", { text: `${ev.source.camera_id ?? ev.source.sensor_id} / ${ev.source.zone ?? ""}` }),
              el("td", { text: `${inc.events}`, title: "events in the lifecycle" }),
              el("td", { class: "muted", text: inc.light_reason }), thumb);
    return tr;
  }

  class List {
    constructor(tbody, onclick) { this.tbody = tbody; this.onclick = onclick; }

    put(inc, fresh) {
      const tr = row(inc, fresh, this.onclick);
      const old = rows.get(inc.incident_id);
      if (old) old.remove();
      rows.set(inc.incident_id, tr);
      if (fresh) this.tbody.prepend(tr); else this.tbody.appendChild(tr);
      while (this.tbody.rows.length > 300) { const last = this.tbody.rows[this.tbody.rows.length - 1]; rows.delete(last.dataset.incidentId); last.remove(); }
      document.getElementById("count").textContent = `${this.tbody.rows.length} incident(s) shown`;
    }

    async load() {
      this.tbody.replaceChildren(); rows.clear();
      const q = params(); q.set("limit", "100");
      const page = await api("/incidents?" + q);
      page.incidents.forEach(inc => this.put(inc, false));
      document.getElementById("count").textContent = `${this.tbody.rows.length} incident(s) shown`;
    }

    // A live event: its incident's row again, moved to the top (or dropped if the filters no longer match).
    async refresh(incidentId) {
      const q = params(); q.set("incident", incidentId);
      const page = await api("/incidents?" + q);
      if (page.incidents.length) this.put(page.incidents[0], true);
      else if (rows.has(incidentId)) { rows.get(incidentId).remove(); rows.delete(incidentId); }
      return page.incidents[0];
    }
  }

  return { List, age, reviewText, REASONS };
})();
