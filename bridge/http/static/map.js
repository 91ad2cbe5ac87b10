// A simple grid map as inline SVG from GET /grids: streets outlined, grids filled, the event's
// grid highlighted and its location as a dot. No tiles, no CDN: it works offline.
"use strict";

const GridMap = (() => {
  let layer = null;
  async function load() {
    if (!layer) layer = await Console.api("/grids");
    return layer;
  }

  function draw(container, { grid = null, point = null } = {}) {
    const NS = "http://www.w3.org/2000/svg";
    const [x0, y0, x1, y1] = layer.bbox;
    const pad = 0.03 * Math.max(x1 - x0, y1 - y0);
    const kx = Math.cos(((y0 + y1) / 2) * Math.PI / 180);  // keep the aspect of the ground
    const W = (x1 - x0 + 2 * pad) * kx, H = y1 - y0 + 2 * pad;
    const px = lon => (lon - x0 + pad) * kx, py = lat => (y1 + pad - lat);
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "grid map");
    const order = { district: 0, street: 2, community: 1, grid: 1 };
    const feats = [...layer.features].sort((a, b) => (order[a.level] ?? 1) - (order[b.level] ?? 1));
    for (const f of feats) {
      if (f.level === "district" || f.level === "community") continue;
      for (const ring of f.rings) {
        const p = document.createElementNS(NS, "polygon");
        p.setAttribute("points", ring.map(([lon, lat]) => `${px(lon)},${py(lat)}`).join(" "));
        p.setAttribute("class", f.level === "street" ? "street" : "grid" + (f.code === grid ? " here" : ""));
        p.dataset.code = f.code;
        const t = document.createElementNS(NS, "title"); t.textContent = `${f.name} ${f.code}`; p.append(t);
        svg.append(p);
      }
    }
    if (point) {
      const c = document.createElementNS(NS, "circle");
      c.setAttribute("cx", px(point[0])); c.setAttribute("cy", py(point[1])); c.setAttribute("r", H / 60);
      c.setAttribute("class", "point");
      svg.append(c);
    }
    container.replaceChildren(svg);
  }

  return { load, draw, get layer() { return layer; } };
})();
