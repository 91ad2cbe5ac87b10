// The incident's detail: its clock and work order, the whole evidence of one of its events (before
// and after side by side, the clip, the crop, sha256s, the detector's provenance, the bundle), the
// operator's review, the camera live, the map, its sources and its lifecycle.
"use strict";

const IncidentDetail = (() => {
  const { api, el } = Console;
  let liveTile = null;

  // `clipEv`: the incident's event with the clip, when `ev` has none (the clip follows the opening).
  function evidence(ev, clipEv) {
    const e = Object.assign({}, ev.evidence || {});
    if (!e.clip && clipEv) e.clip = clipEv.evidence.clip;
    const box = el("div", { class: "evidence", "data-event-id": ev.event_id });
    const pair = el("div", { class: "imgs pair" });
    if (e.before) pair.append(el("figure", { class: "before" }, el("a", { href: e.before, target: "_blank" }, el("img", { src: e.before, alt: "before" })),
                                el("figcaption", { text: "before" })));
    if (e.snapshot) pair.append(el("figure", { class: "after" }, el("a", { href: e.snapshot, target: "_blank" }, el("img", { src: e.snapshot, alt: "snapshot" })),
                                  el("figcaption", { text: e.before ? "after" : "snapshot" })));
    if (e.crop) pair.append(el("figure", { class: "crop" }, el("a", { href: e.crop, target: "_blank" }, el("img", { src: e.crop, alt: "crop" })),
                              el("figcaption", { text: "crop" })));
    box.append(pair);
    if (e.clip) {
      if (e.clip.endsWith(".mp4")) box.append(el("video", { class: "clip", src: e.clip, controls: true, muted: true, preload: "metadata", playsinline: true }));
      else box.append(el("p", {}, "clip in a format browsers cannot play: ", el("a", { href: e.clip, download: "", text: "download " + e.clip.split(".").pop().toUpperCase() })));
    }
    const sums = Object.entries(e.sha256 || {});
    if (sums.length) box.append(el("table", { class: "sha" }, el("tbody", {}, ...sums.map(([k, v]) => el("tr", {}, el("td", { text: k }), el("td", { class: "mono", text: v }))))));
    const d = ev.detector || {};
    box.append(el("p", { class: "muted provenance", text: `detector: ${d.model}${d.model_sha256 ? " · model sha256 " + d.model_sha256.slice(0, 16) + "…" : ""} · rule ${d.rule} · config ${d.config_hash}` }),
               el("a", { class: "bundle", href: `/events/${encodeURIComponent(ev.event_id)}/bundle`, download: "", text: "⬇ evidence bundle (zip)" }));
    return box;
  }

  function reviewForm(inc, done) {
    const form = el("form", { class: "review-form", id: "review-form" });
    const reason = el("select", { id: "review-reason" }, ...Object.entries(Incidents.REASONS).map(([k, v]) => el("option", { value: k, text: v })));
    const note = el("input", { id: "review-note", placeholder: "note (optional)", maxlength: "500" });
    const err = el("div", { class: "err" });
    async function send(decision) {
      try {
        await api(`/incidents/${encodeURIComponent(inc.incident_id)}/review`, { json: {
          decision, reason: decision === "false_alarm" ? reason.value : null, note: note.value.trim() || null, event_id: inc.event.event_id } });
        done();
      } catch (e) { err.textContent = Console.describe(e); }
    }
    form.addEventListener("submit", e => e.preventDefault());
    form.append(el("button", { type: "button", class: "primary", id: "review-confirm", text: "Confirm", onclick: () => send("confirmed") }), " ",
                reason, " ", note, " ", el("button", { type: "button", id: "review-false", text: "False alarm", onclick: () => send("false_alarm") }), err);
    return form;
  }

  async function show(box, id, onchange) {
    box.replaceChildren(el("h2", { text: "Incident" }), el("p", { class: "muted", text: "loading…" }));
    const at = new URLSearchParams(location.search).get("at");
    let d;
    try { d = await api(`/incidents/${encodeURIComponent(id)}${at ? "?at=" + encodeURIComponent(at) : ""}`); }
    catch (e) { box.append(el("p", { class: "err", text: Console.describe(e) })); return; }
    const inc = d.incident, ev = inc.event;
    const withEvidence = d.lifecycle.filter(e => e.evidence && (e.evidence.snapshot || e.evidence.clip));
    const shown = withEvidence.find(e => e.event_id === inc.best_event_id) || withEvidence[withEvidence.length - 1] || ev;
    const clipEv = d.lifecycle.find(e => e.evidence && e.evidence.clip);
    const evBox = el("div", { id: "evidence" }, evidence(shown, clipEv));
    const map = el("div", { class: "map", id: "detail-map" });
    const life = el("table", { class: "lifecycle" }, el("thead", {}, el("tr", {}, ...["seq", "status", "time", "conf."].map(t => el("th", { text: t })))),
      el("tbody", {}, ...d.lifecycle.map(e => {
        const has = e.evidence && (e.evidence.snapshot || e.evidence.clip);
        const tr = el("tr", { "data-event-id": e.event_id, class: has ? "clickable" : "" },
          el("td", { text: e.seq }), el("td", {}, el("span", { class: "status " + e.status, text: e.status }),
            e.review ? el("span", { class: "muted", text: " " + Incidents.reviewText(e.review) + ` (${e.review.reviewer})` }) : null),
          el("td", { text: new Date(e.occurred_at).toLocaleTimeString() }), el("td", { text: e.confidence.toFixed(2) }));
        if (has) tr.addEventListener("click", () => evBox.replaceChildren(evidence(e, clipEv)));
        return tr;
      })));
    if (liveTile) { liveTile.close(); liveTile = null; }
    const live = [];
    if (ev.source.camera_id) {  // the camera now, live, with what it sees
      liveTile = new Live.Tile(ev.source.camera_id);
      live.push(el("div", { class: "live-wrap" }, el("h2", { text: `Live · ${ev.source.camera_id}` }), liveTile.root));
      api(`/cameras/${encodeURIComponent(ev.source.camera_id)}`).then(c => liveTile && liveTile.camera(c)).catch(e => console.warn(e));
    }
    const routing = ev.routing ? `${ev.routing.unit} · priority ${ev.routing.priority}` : "—";
    const clockLine = el("p", { id: "clock", "data-light": inc.light }, el("span", { class: "light " + inc.light }), " ",
      `${inc.step ?? "clock"}: ${inc.light_reason}${inc.due_at ? " · due " + new Date(inc.due_at * 1000).toLocaleString() : ""}`);
    const wos = el("ul", { id: "work-orders" }, ...d.work_orders.map(w => el("li", { text: `${w.state} · ${new Date(w.at).toLocaleString()}` })));
    const review = el("div", { id: "review" }, inc.review ? el("p", { class: "review " + inc.review.decision,
      text: `${Incidents.reviewText(inc.review)} · ${inc.review.reviewer} · ${new Date(inc.review.at).toLocaleString()}${inc.review.note ? " · " + inc.review.note : ""}` }) : null);
    if (Console.me && Console.me.role !== "viewer") review.append(reviewForm(inc, () => { onchange(inc.incident_id); show(box, id, onchange); }));
    box.replaceChildren(el("h2", { text: "Incident" }),
      el("div", {}, el("span", { class: "status " + inc.state, text: inc.state }), " ", el("strong", { text: ev.category.name }),
         " ", el("span", { class: "muted", text: ev.category.code })),
      el("p", { class: "muted", text: `reported ${new Date(inc.opened_at).toLocaleString()} · ${Incidents.age(inc.age_s)} ago · incident ${inc.incident_id} · routing: ${routing}` }),
      el("p", { text: ev.grid ? `${ev.grid.street ?? ""} ${ev.grid.community ?? ""} · ${ev.grid.name} ${ev.grid.code}` : `no grid: ${ev.grid_reason}` }),
      clockLine, el("h2", { text: "Work order" }), d.work_orders.length ? wos : el("p", { class: "muted", text: "no work-order state from the platform yet" }),
      el("h2", { text: "Review" }), review,
      el("h2", { text: "Evidence" }), evBox, ...live, el("h2", { text: "Location" }), map,
      el("h2", { text: "Sources" }), el("ul", {}, ...d.sources.map(s => el("li", { text: `${s.kind}: ${s.camera_id ?? s.sensor_id}${s.zone ? " / " + s.zone : ""}` }))),
      el("h2", { text: "Lifecycle" }), life);
    try { await GridMap.load(); GridMap.draw(map, { grid: ev.grid && ev.grid.code, point: d.point_wgs84 }); }
    catch (e) { map.textContent = "map unavailable: " + Console.describe(e); }
  }

  return { show };
})();
