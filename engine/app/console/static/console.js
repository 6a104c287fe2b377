// The cronwright console's one script: the grid refreshes itself without a reload.
// It polls the grid's HTML fragment (GET /grid, the page's own range) every few seconds
// while the page is visible; an unchanged grid costs a 304. No build step, no library.
"use strict";
(function () {
  const grid = document.getElementById("grid");
  if (!grid) return;
  const stamp = document.getElementById("refreshed");
  const every = Math.max(1, Number(grid.dataset.refresh) || 5) * 1000;
  let etag = grid.dataset.etag || null;
  let busy = false;

  function scroller() { return grid.querySelector(".scroller"); }
  const first = scroller();
  if (first) first.scrollLeft = first.scrollWidth; // open at the newest slots

  async function refresh() {
    if (busy || document.hidden) return;
    busy = true;
    try {
      const headers = { Accept: "text/html" };
      if (etag) headers["If-None-Match"] = etag;
      const r = await fetch(grid.dataset.src, { headers, cache: "no-store", credentials: "same-origin" });
      if (r.status === 200) {
        const old = scroller();
        const atEnd = !old || old.scrollLeft + old.clientWidth >= old.scrollWidth - 4;
        const left = old ? old.scrollLeft : 0;
        const html = await r.text();
        etag = r.headers.get("ETag");
        grid.innerHTML = html;
        const now = scroller();
        if (now) now.scrollLeft = atEnd ? now.scrollWidth : left;
      } else if (r.status !== 304) {
        throw new Error((await r.text()).trim() || String(r.status));
      }
      stamp.textContent = "updated " + new Date().toLocaleTimeString();
      stamp.classList.remove("stale");
    } catch (e) {
      stamp.textContent = "refresh failed: " + e.message + "; trying again";
      stamp.classList.add("stale");
    } finally {
      busy = false;
    }
  }

  setInterval(refresh, every);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });
})();
