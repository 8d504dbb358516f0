// The report page's article list: filters, pages, and links to it from the
// chart and the tables. Everything it shows is in the page; nothing is fetched.
// The filters live in the address (#actor=isis&from=2024-01-01), so a view
// can be bookmarked, sent, or gone back from.
"use strict";
(() => {
  const form = document.getElementById("filters");
  if (!form) return; // no list on this page (--list 0, or no article in the range)
  const data = JSON.parse(document.getElementById("articles-data").textContent);
  const PAGE_ROWS = 50;
  const FILTERS = ["actor", "with", "source", "language", "event", "from", "to", "q", "page"];
  const LINKABLE = /^(https?|file):/i; // never a javascript: or data: address from a feed

  const fold = (text) => (text || "").normalize("NFD").replace(/\p{M}/gu, "").toLowerCase();
  const rows = data.rows.map(([title, url, source, published, language, actors, events]) => ({
    title, url, published, day: published.slice(0, 10),
    source: data.sources[source], language: data.languages[language],
    actors: actors.map((n) => data.actors[n]), events: events.map((n) => data.events[n]),
    folded: fold(title),
  }));

  const body = document.querySelector("#articles tbody");
  const status = document.getElementById("articles-status");
  const pager = document.getElementById("pager");
  let state = {};

  const counted = (pick) => {
    const counts = new Map();
    for (const row of rows) for (const value of [].concat(pick(row))) {
      if (value) counts.set(value, (counts.get(value) || 0) + 1);
    }
    return [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  };
  const fillSelect = (name, counts, label) => {
    const select = form.elements[name];
    for (const [value, count] of counts) {
      select.add(new Option(`${label ? label(value) : value} (${count.toLocaleString("en")})`, value));
    }
  };
  const has = (object, key) => Object.prototype.hasOwnProperty.call(object, key);
  const nameOf = (id) => (has(data.names, id) ? data.names[id] : "");
  const actorLabel = (id) => (nameOf(id) ? `${id}: ${nameOf(id)}` : id);
  const actorCounts = counted((row) => row.actors);
  fillSelect("actor", actorCounts, actorLabel);
  fillSelect("with", actorCounts, actorLabel);
  fillSelect("source", counted((row) => row.source));
  fillSelect("language", counted((row) => row.language));
  fillSelect("event", counted((row) => row.events));

  const matches = (row, words) =>
    (!state.actor || row.actors.includes(state.actor)) &&
    (!state.with || row.actors.includes(state.with)) &&
    (!state.source || row.source === state.source) &&
    (!state.language || row.language === state.language) &&
    (!state.event || row.events.includes(state.event)) &&
    (!state.from || row.day >= state.from) &&
    (!state.to || row.day <= state.to) &&
    words.every((word) => row.folded.includes(word));

  const button = (text, filter, title) => {
    const element = document.createElement("button");
    element.type = "button";
    element.className = "pick";
    element.textContent = text;
    element.dataset.filter = JSON.stringify(filter);
    if (title) element.title = title;
    return element;
  };
  const cell = (label, ...children) => {
    const td = document.createElement("td");
    td.dataset.label = label;
    td.append(...children);
    return td;
  };
  const line = (row) => {
    const tr = document.createElement("tr");
    const title = row.title || row.url;
    let heading = title;
    if (LINKABLE.test(row.url)) {
      heading = document.createElement("a");
      heading.href = row.url;
      heading.rel = "noreferrer noopener";
      heading.textContent = title;
    }
    tr.append(
      cell("title", heading),
      cell("source", button(row.source, { source: row.source })),
      cell("published (UTC)", row.published),
      cell("language", row.language ? button(row.language, { language: row.language }) : ""),
      cell("actors", ...row.actors.map((id) => button(id, { actor: id }, nameOf(id)))),
      cell("event types", ...row.events.map((type) => button(type, { event: type }))),
    );
    return tr;
  };

  const render = () => {
    for (const name of FILTERS) {
      const field = form.elements[name];
      if (!field) continue;
      if (field.tagName === "SELECT") {
        // A value no listed article has (an older source, a hand-made address) stays visible,
        // and kept; only while it is chosen.
        for (const option of [...field.options]) if (option.dataset.absent) option.remove();
        const known = [...field.options].some((option) => option.value === state[name]);
        if (state[name] && !known) {
          const label = name === "actor" || name === "with" ? actorLabel(state[name]) : state[name];
          const option = new Option(`${label} (none listed)`, state[name]);
          option.dataset.absent = "yes";
          field.add(option);
        }
      }
      field.value = state[name] || "";
    }
    const words = fold(state.q).split(/\s+/).filter(Boolean);
    const found = rows.filter((row) => matches(row, words));
    const pages = Math.max(1, Math.ceil(found.length / PAGE_ROWS));
    const page = Math.min(Math.max(1, Number.parseInt(state.page, 10) || 1), pages);
    const first = (page - 1) * PAGE_ROWS;
    body.replaceChildren(...found.slice(first, first + PAGE_ROWS).map(line));
    const shown = found.length ? `${first + 1}–${Math.min(first + PAGE_ROWS, found.length)} of ` : "";
    status.textContent = `${shown}${found.length.toLocaleString("en")} matching of ` +
      `${rows.length.toLocaleString("en")} listed` +
      (data.total > rows.length ? ` (the newest of ${data.total.toLocaleString("en")} in the range: ` +
        "the tables and the chart count them all)" : "") +
      (data.partial ? " (files left out as damaged: the tables and the chart may count articles " +
        "the list lacks)" : "");
    pager.hidden = pages === 1;
    pager.querySelector("[data-page=previous]").disabled = page === 1;
    pager.querySelector("[data-page=next]").disabled = page === pages;
    pager.querySelector("output").textContent = `page ${page} of ${pages}`;
    state.page = String(page);
  };

  const address = () => {
    const kept = FILTERS.filter((name) => state[name] && !(name === "page" && state[name] === "1"));
    const query = new URLSearchParams(kept.map((name) => [name, state[name]])).toString();
    return query ? `#${query}` : location.href.replace(/#.*$/, "");
  };
  const DAY = /^\d{4}-\d\d-\d\d$/;
  const readAddress = () => {
    const given = new URLSearchParams(location.hash.slice(1));
    const usable = (name) => given.get(name) && (!["from", "to"].includes(name) || DAY.test(given.get(name)));
    state = Object.fromEntries(FILTERS.filter(usable).map((name) => [name, given.get(name)]));
    render();
    // An address of filters is rewritten as shown (a page past the last is the last);
    // any other fragment (#articles-list) is left to the browser.
    if (FILTERS.some((name) => given.has(name))) history.replaceState(null, "", address());
  };
  // A click from elsewhere is a new view (kept in history); typing refines the current one.
  const show = (filters, remember) => {
    state = filters;
    render();
    history[remember ? "pushState" : "replaceState"](null, "", address());
  };

  form.addEventListener("input", () => {
    const chosen = Object.fromEntries(FILTERS.filter((name) => form.elements[name]?.value)
      .map((name) => [name, form.elements[name].value]));
    show(chosen, false);
  });
  form.addEventListener("submit", (event) => event.preventDefault());
  form.addEventListener("reset", (event) => {
    event.preventDefault();
    show({}, true);
  });
  pager.addEventListener("click", (event) => {
    const step = event.target.closest("[data-page]")?.dataset.page;
    if (!step) return;
    show({ ...state, page: String(Number(state.page) + (step === "next" ? 1 : -1)) }, false);
  });
  const list = document.getElementById("articles-list");
  document.addEventListener("click", (event) => {
    const target = event.target.closest("[data-filter]");
    if (!target) return;
    show(JSON.parse(target.dataset.filter), true);
    list.scrollIntoView({ block: "start" });
  });
  window.addEventListener("popstate", readAddress); // back, forward, or an address edited by hand

  // A bar of the chart: its actor over the days the bar sums (a day, week or month).
  const chart = document.getElementById("articles-per-day");
  if (chart && chart.on) {
    chart.on("plotly_click", (event) => {
      const point = event.points[0];
      const days = (point.pointNumbers || [point.pointNumber]).map((n) => point.data.x[n]).sort();
      show({ actor: point.data.name, from: days[0], to: days[days.length - 1] }, true);
      list.scrollIntoView({ block: "start" });
    });
  }
  readAddress();
})();
