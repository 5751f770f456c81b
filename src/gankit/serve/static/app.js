// gankit serve: one page of plain JavaScript. Every control change sends the whole view as a
// query string to /api/grid; while a request is in flight only the latest change is kept and
// sent when it returns, so dragging a slider never queues up stale grids.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { info: null, label: 0, sliders: [], a: null, b: null,
                busy: false, pending: false, updates: 0 };

function showError(msg) {
  const box = $("error");
  box.textContent = msg || "";
  box.hidden = !msg;
}

async function getJSON(url) {
  const res = await fetch(url);
  let body;
  try { body = await res.json(); } catch (e) { body = { error: `HTTP ${res.status}` }; }
  if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
  return body;
}

function viewParams() {
  const info = state.info;
  const p = new URLSearchParams();
  if (info.num_classes > 0) {
    p.set("class", state.label);
    const to = $("to").value;
    if (to !== "") { p.set("to", to); p.set("t", $("t").value); }
    if (Number($("label_noise").value) > 0) p.set("label_noise", $("label_noise").value);
  }
  p.set("n", $("n").value);
  p.set("seed", $("seed").value.trim());
  p.set("basis", $("basis").value);
  if (state.sliders.some((s) => Number(s.value) !== 0))
    p.set("sliders", state.sliders.map((s) => s.value).join(","));
  if (Number($("z_noise").value) > 0) p.set("z_noise", $("z_noise").value);
  return p;
}

function pathParams() {
  const p = viewParams();
  p.set("a", state.a); p.set("b", state.b);
  p.set("steps", $("steps").value.trim()); p.set("method", $("method").value);
  return p;
}

function setOutputs() {
  document.querySelectorAll("output").forEach((o) => {
    o.textContent = Number($(o.getAttribute("for")).value).toFixed(2);
  });
}

function markPicks() {
  $("pick-a").textContent = `A: ${state.a === null ? "–" : state.a}`;
  $("pick-b").textContent = `B: ${state.b === null ? "–" : state.b}`;
  document.querySelectorAll(".tile").forEach((t) => {
    const i = Number(t.dataset.index);
    t.classList.toggle("a", i === state.a);
    t.classList.toggle("b", i === state.b);
  });
}

// D's probability that a sample is real; null when the model has no discriminator (pretrained).
function scoreText(score) {
  return score === null ? "no D" : `D ${score.toFixed(3)}`;
}

function renderGrid(data) {
  const cols = Math.ceil(Math.sqrt(data.n));
  const q = viewParams();
  data.runs.forEach((run, r) => {
    const box = $(`run-${r}`);
    q.set("run", r);
    box.querySelector(".dl-grid").href = `/api/grid.png?${q}`;
    const grid = box.querySelector(".grid");
    grid.style.gridTemplateColumns = `repeat(${cols}, auto)`;
    grid.replaceChildren(...run.images.map((b64, i) => {
      const fig = document.createElement("figure");
      fig.className = "tile"; fig.dataset.index = i;
      const img = document.createElement("img");
      img.src = `data:image/png;base64,${b64}`; img.alt = `sample ${i}`;
      const cap = document.createElement("figcaption");
      cap.textContent = scoreText(run.scores[i]);
      fig.append(img, cap);
      fig.addEventListener("click", () => pick(i));
      return fig;
    }));
  });
  markPicks();
}

function renderPath(data) {
  const q = pathParams();
  data.runs.forEach((run, r) => {
    const box = $(`run-${r}`);
    q.set("run", r);
    const link = box.querySelector(".dl-gif");
    link.href = `/api/path.gif?${q}`; link.hidden = false;
    box.querySelector(".path").replaceChildren(...run.images.map((b64, i) => {
      const img = document.createElement("img");
      img.src = `data:image/png;base64,${b64}`; img.alt = `step ${i}`;
      img.title = scoreText(run.scores[i]);
      return img;
    }));
  });
}

function clearPath() {
  document.querySelectorAll(".path").forEach((p) => p.replaceChildren());
  document.querySelectorAll(".dl-gif").forEach((a) => { a.hidden = true; });
}

async function update() {
  if (state.busy) { state.pending = true; return; }
  state.busy = true;
  document.body.dataset.state = "busy";
  const t0 = performance.now();
  try {
    const data = await getJSON(`/api/grid?${viewParams()}`);
    renderGrid(data);
    if (state.a !== null && state.b !== null && state.a < data.n && state.b < data.n)
      renderPath(await getJSON(`/api/path?${pathParams()}`));
    else clearPath();
    showError("");
    $("status").textContent = `grid in ${(performance.now() - t0).toFixed(0)} ms (model ${data.ms} ms)`;
  } catch (e) {
    showError(e.message);
  } finally {
    state.busy = false;
    state.updates += 1;
    document.body.dataset.updates = state.updates;
    if (state.pending) { state.pending = false; update(); }
    else document.body.dataset.state = "ready";
  }
}

function pick(i) {
  if (state.a === null || state.b !== null) { state.a = i; state.b = null; }
  else state.b = i;
  markPicks();
  update();
}

function setLabel(k) {
  state.label = k;
  document.querySelectorAll("#classes button").forEach((b) => {
    b.classList.toggle("active", Number(b.dataset.class) === k);
  });
  update();
}

function build(info) {
  state.info = info;
  $("models").textContent = info.models.map((m) => `${m.name} (epoch ${m.epoch}, nz ${m.nz})`).join(" · ");
  document.title = `gankit serve: ${info.models.map((m) => m.name).join(" vs ")}`;
  const counts = [4, 9, 16, 25, 36, 49, 64].filter((c) => c <= info.limits.max_samples);
  $("n").replaceChildren(...counts.map((c) => new Option(c, c, c === 16, c === 16)));
  if (info.num_classes > 0) {
    $("classes").replaceChildren(...info.class_names.map((name, k) => {
      const b = document.createElement("button");
      b.type = "button"; b.textContent = name; b.dataset.class = k;
      b.addEventListener("click", () => setLabel(k));
      return b;
    }));
    $("to").replaceChildren(new Option("(none)", ""),
      ...info.class_names.map((name, k) => new Option(name, k)));
  } else {
    ["class-section", "label-section", "label-noise-row"].forEach((id) => { $(id).hidden = true; });
  }
  const share = info.models[0].directions;
  const lim = Math.min(3, info.limits.slider);
  state.sliders = [];
  $("sliders").replaceChildren(...Array.from({ length: info.limits.directions }, (_, i) => {
    const label = document.createElement("label");
    label.className = "range";
    const s = document.createElement("input");
    Object.assign(s, { type: "range", min: -lim, max: lim, step: 0.05, value: 0, id: `slider-${i}` });
    s.className = "slider"; s.dataset.index = i;
    const out = document.createElement("output");
    out.setAttribute("for", s.id); out.textContent = "0.00";
    const name = document.createElement("span");
    name.className = "dir-name";
    label.append(name, s, out);
    state.sliders.push(s);
    return label;
  }));
  const names = () => {
    const basis = $("basis").value;
    document.querySelectorAll(".dir-name").forEach((el, i) => {
      const sh = share[basis] && share[basis][i];
      el.textContent = basis === "z" ? `z[${i}]` : `dir ${i + 1}`;
      el.title = sh == null ? "" : `${(100 * sh).toFixed(1)}% of G's response`;
    });
  };
  names();
  $("runs").replaceChildren(...info.models.map((m, r) => {
    const box = document.createElement("section");
    box.className = "run"; box.id = `run-${r}`;
    box.innerHTML = `<h3><span class="run-name"></span><a class="dl-grid" download>grid PNG</a>` +
      `<a class="dl-gif" download hidden>path GIF</a></h3><div class="grid"></div><div class="path"></div>`;
    box.querySelector(".run-name").textContent = m.name;
    return box;
  }));
  document.querySelectorAll("input[type=range]").forEach((s) => s.addEventListener("input", () => { setOutputs(); update(); }));
  ["n", "to", "method"].forEach((id) => $(id).addEventListener("change", update));
  $("basis").addEventListener("change", () => { names(); update(); });
  ["seed", "steps"].forEach((id) => $(id).addEventListener("change", update));
  $("lock").addEventListener("change", () => { $("reseed").disabled = $("lock").checked; $("seed").readOnly = $("lock").checked; });
  $("reseed").addEventListener("click", () => {
    if ($("lock").checked) return;
    $("seed").value = Math.floor(Math.random() * 1e6); state.a = state.b = null; update();
  });
  $("reset").addEventListener("click", () => { state.sliders.forEach((s) => { s.value = 0; }); setOutputs(); update(); });
  setOutputs();
  setLabel(0);
}

getJSON("/api/info").then(build).catch((e) => {
  showError(`cannot reach the server: ${e.message}`);
  document.body.dataset.state = "ready";
});
