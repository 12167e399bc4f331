// kqbroker console: a page per hash route, drawn from the /api JSON.
"use strict";

const page = document.getElementById("page");

const fmt = {
  num: (n) => Number(n).toLocaleString("en-US"),
  bytes: (n) => {
    if (n < 0) return "?";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
  },
  time: (t) => new Date(t).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z"),
};

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

async function api(path, options) {
  const resp = await fetch("/api" + path, options);
  const body = await resp.json().catch(() => ({ error: "the broker answered " + resp.status }));
  if (!resp.ok) {
    const err = new Error(body.error || resp.statusText);
    err.field = body.field;
    throw err;
  }
  return body;
}

function post(path, body) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

// chart draws samples ({at, value}) as an SVG line with its max and last values.
function chart(samples, label) {
  if (!samples || samples.length < 2) {
    return `<div class="chart"><div class="muted">${esc(label)}: collecting samples (one every few seconds)…</div></div>`;
  }
  const w = 600, h = 140;
  const max = Math.max(1, ...samples.map((s) => s.value));
  const t0 = new Date(samples[0].at).getTime(), t1 = new Date(samples[samples.length - 1].at).getTime();
  const x = (s) => ((new Date(s.at).getTime() - t0) / Math.max(1, t1 - t0)) * (w - 10) + 5;
  const y = (s) => h - 5 - (s.value / max) * (h - 25);
  const points = samples.map((s) => `${x(s).toFixed(1)},${y(s).toFixed(1)}`).join(" ");
  const last = samples[samples.length - 1].value;
  return `<div class="chart"><div>${esc(label)}: now <b>${fmt.num(Math.round(last))}</b>, max ${fmt.num(Math.round(max))}
    <span class="muted">(${Math.round((t1 - t0) / 1000)} s)</span></div>
    <svg viewBox="0 0 ${w} ${h}" preserveAspectRatio="none" role="img" aria-label="${esc(label)}">
    <polyline fill="none" stroke="#2f6fdb" stroke-width="2" points="${points}"/></svg></div>`;
}

// lagChart draws one line per partition from the group's lag samples.
function lagChart(history) {
  if (!history || history.length < 2) {
    return `<div class="chart"><div class="muted">lag per partition: collecting samples (one every few seconds)…</div></div>`;
  }
  const colors = ["#2f6fdb", "#d9480f", "#2b8a3e", "#862e9c", "#c92a2a", "#0b7285", "#5c940d", "#e67700", "#364fc7", "#a61e4d"];
  const keys = [...new Set(history.flatMap((s) => Object.keys(s.partitions || {})))].sort();
  const w = 600, h = 140;
  const max = Math.max(1, ...history.flatMap((s) => Object.values(s.partitions || {})));
  const t0 = new Date(history[0].at).getTime(), t1 = new Date(history[history.length - 1].at).getTime();
  const x = (s) => ((new Date(s.at).getTime() - t0) / Math.max(1, t1 - t0)) * (w - 10) + 5;
  const y = (v) => h - 5 - (v / max) * (h - 25);
  const lines = keys.map((k, i) => {
    const points = history.filter((s) => k in (s.partitions || {})).map((s) => `${x(s).toFixed(1)},${y(s.partitions[k]).toFixed(1)}`).join(" ");
    return `<polyline data-partition="${esc(k)}" fill="none" stroke="${colors[i % colors.length]}" stroke-width="2" points="${points}"/>`;
  }).join("");
  const last = history[history.length - 1].partitions || {};
  const legend = keys.map((k, i) => `<span style="color:${colors[i % colors.length]}">■</span> ${esc(k)}: ${fmt.num(last[k] ?? 0)}`).join(" &nbsp; ");
  return `<div class="chart"><div>lag per partition (records), max ${fmt.num(max)} <span class="muted">(${Math.round((t1 - t0) / 1000)} s)</span></div>
    <svg viewBox="0 0 ${w} ${h}" preserveAspectRatio="none" role="img" aria-label="lag per partition">${lines}</svg>
    <div class="legend">${legend}</div></div>`;
}

function table(headers, rows) {
  const th = headers.map((h) => `<th class="${h.num ? "num" : ""}">${esc(h.label)}</th>`).join("");
  const body = rows.map((r) => "<tr>" + r.map((c, i) => `<td class="${headers[i].num ? "num" : ""}">${c}</td>`).join("") + "</tr>").join("");
  return `<table><thead><tr>${th}</tr></thead><tbody>${body}</tbody></table>`;
}

async function overview() {
  const o = await api("/overview");
  page.innerHTML = `<h1>Overview</h1>
    <div class="cards">
      <div class="card"><div class="label">Brokers</div><div class="value" id="brokers">${o.cluster.brokers.length}</div></div>
      <div class="card"><div class="label">Topics</div><div class="value" id="topic-count">${o.cluster.topics}</div></div>
      <div class="card"><div class="label">Partitions</div><div class="value">${o.cluster.partitions}</div></div>
      <div class="card"><div class="label">Records</div><div class="value">${fmt.num(o.records)}</div></div>
      <div class="card"><div class="label">Size on disk</div><div class="value">${fmt.bytes(o.size_bytes)}</div></div>
      <a class="card ${o.cluster.under_replicated_partitions > 0 ? "warn" : ""}" href="#/cluster"><div class="label">Under-replicated</div><div class="value">${o.cluster.under_replicated_partitions}</div></a>
      <a class="card ${o.cluster.offline_partitions > 0 ? "bad" : ""}" href="#/cluster"><div class="label">Offline partitions</div><div class="value">${o.cluster.offline_partitions}</div></a>
    </div>
    <h2>Throughput</h2>${chart(o.throughput, "records produced per second")}
    <h2>Brokers</h2>
    ${table([{ label: "Node" }, { label: "Host" }, { label: "Port", num: true }],
      o.cluster.brokers.map((b) => [b.node_id + (b.node_id === o.cluster.controller_id ? " (controller)" : "") + (b.fenced ? " (fenced)" : ""), esc(b.host), b.port]))}
    <p class="muted">Cluster id ${esc(o.cluster.cluster_id)}</p>`;
}

// replicaList shows a partition's replicas, each marked in sync, out of
// sync (not in the ISR) or offline (its broker is down).
function replicaList(p) {
  return p.replicas.map((id) => {
    const state = p.offline_replicas.includes(id) ? "offline" : p.isr.includes(id) ? "in-sync" : "out-of-sync";
    return `<span class="replica ${state}" title="broker ${id}: ${state.replace(/-/g, " ")}">${id}</span>`;
  }).join("");
}

// cluster is the brokers and partitions page; it redraws itself every few
// seconds while it is open.
async function cluster() {
  const c = await api("/cluster");
  if (location.hash !== "#/cluster") return; // the user moved on meanwhile
  const fenced = c.brokers.filter((b) => b.fenced).length;
  const card = (label, value, id, level) => `<div class="card ${value > 0 ? level : ""}"><div class="label">${label}</div><div class="value" id="${id}">${value}</div></div>`;
  const status = (p) => p.offline ? `<span class="badge bad">offline</span>` :
    p.under_replicated ? `<span class="badge warn">under-replicated</span>` : `<span class="badge good">in sync</span>`;
  page.innerHTML = `<h1>Brokers &amp; partitions</h1>
    <div class="cards">
      <div class="card"><div class="label">Brokers in service</div><div class="value" id="brokers-in-service">${c.brokers.length - fenced}</div></div>
      ${card("Fenced brokers", fenced, "fenced-count", "bad")}
      <div class="card"><div class="label">Partitions</div><div class="value">${c.partitions.length}</div></div>
      ${card("Under-replicated", c.under_replicated_partitions, "under-replicated-count", "warn")}
      ${card("Offline", c.offline_partitions, "offline-count", "bad")}
    </div>
    <h2>Brokers</h2>
    <table id="broker-list"><thead><tr><th class="num">Node</th><th>Host</th><th class="num">Port</th><th>State</th><th>Controller</th></tr></thead><tbody>
    ${c.brokers.map((b) => `<tr data-broker="${b.node_id}" class="${b.fenced ? "fenced" : ""}"><td class="num">${b.node_id}</td><td>${esc(b.host)}</td><td class="num">${b.port}</td>
      <td>${b.fenced ? `<span class="badge bad">fenced</span>` : `<span class="badge good">in service</span>`}</td><td>${b.controller ? "controller" : ""}</td></tr>`).join("")}
    </tbody></table>
    <h2>Partitions</h2>
    ${c.partitions.length === 0 ? `<p class="muted">No topics yet.</p>` :
      `<table id="partition-list"><thead><tr><th>Topic</th><th class="num">Partition</th><th class="num">Leader</th><th class="num">Leader epoch</th><th>Replicas</th><th>ISR</th><th>Offline replicas</th><th>Status</th></tr></thead><tbody>
      ${c.partitions.map((p) => `<tr data-partition="${esc(p.topic)}-${p.partition}" class="${p.offline ? "offline" : p.under_replicated ? "under-replicated" : ""}">
        <td><a href="#/topics/${encodeURIComponent(p.topic)}">${esc(p.topic)}</a></td><td class="num">${p.partition}</td><td class="num">${p.leader < 0 ? "none" : p.leader}</td>
        <td class="num">${p.leader_epoch}</td><td>${replicaList(p)}</td><td class="isr">${p.isr.join(", ")}</td><td>${p.offline_replicas.join(", ")}</td><td>${status(p)}</td></tr>`).join("")}
      </tbody></table>`}
    <p class="muted">Under-replicated: fewer replicas in sync than assigned. Offline: no leader, so no produce or consume. Redrawn every 5 s. Cluster id ${esc(c.cluster_id)}</p>`;
  clearTimeout(cluster.timer);
  cluster.timer = setTimeout(() => { if (location.hash === "#/cluster") route(); }, 5000);
}

async function topics() {
  const ts = await api("/topics");
  page.innerHTML = `<h1>Topics</h1>
    ${table([{ label: "Topic" }, { label: "Partitions", num: true }, { label: "Replication", num: true }, { label: "Records", num: true }, { label: "Size", num: true }],
      ts.filter((t) => !t.internal).map((t) => [`<a href="#/topics/${encodeURIComponent(t.name)}">${esc(t.name)}</a>`, t.partitions, t.replication, fmt.num(t.records), fmt.bytes(t.size_bytes)]))}
    <p><a href="#/create-topic">Create a topic</a></p>`;
}

async function topic(name, params) {
  const t = await api("/topics/" + encodeURIComponent(name));
  const partition = Number(params.get("partition") || 0);
  const offset = params.get("offset") ?? String(t.partition_details[partition]?.start_offset ?? 0);
  const at = params.get("time") || "";
  let query = `partition=${partition}&limit=50`;
  query += at ? `&time=${encodeURIComponent(at)}` : `&offset=${encodeURIComponent(offset)}`;
  const msgs = await api(`/topics/${encodeURIComponent(name)}/messages?${query}`);
  page.innerHTML = `<h1>Topic ${esc(t.name)}</h1>
    <div class="cards">
      <div class="card"><div class="label">Partitions</div><div class="value">${t.partitions}</div></div>
      <div class="card"><div class="label">Records</div><div class="value">${fmt.num(t.records)}</div></div>
      <div class="card"><div class="label">Size</div><div class="value">${fmt.bytes(t.size_bytes)}</div></div>
    </div>
    <h2>Partitions</h2>
    ${table([{ label: "Partition", num: true }, { label: "Leader", num: true }, { label: "Start offset", num: true }, { label: "End offset", num: true }, { label: "Size", num: true }],
      t.partition_details.map((p) => [p.partition, p.leader, fmt.num(p.start_offset), fmt.num(p.end_offset), fmt.bytes(p.size_bytes)]))}
    <h2>Messages</h2>
    <form class="inline" id="browse">
      <label>Partition <select name="partition">${t.partition_details.map((p) => `<option ${p.partition === partition ? "selected" : ""}>${p.partition}</option>`).join("")}</select></label>
      <label>From offset <input name="offset" type="number" min="0" value="${esc(at ? "" : offset)}"></label>
      <label>or from time (RFC 3339) <input name="time" placeholder="2026-11-22T10:00:00Z" value="${esc(at)}"></label>
      <button type="submit">Show</button>
    </form>
    <div id="messages">${msgs.length === 0 ? `<p class="muted">No messages there.</p>` :
      table([{ label: "Offset", num: true }, { label: "Timestamp" }, { label: "Key" }, { label: "Value" }, { label: "Headers" }],
        msgs.map((m) => [m.offset, fmt.time(m.timestamp), esc(m.key ?? "null"),
          `<pre class="value">${esc(m.json ? JSON.stringify(JSON.parse(m.value), null, 2) : m.value ?? "null")}</pre>`,
          esc(Object.entries(m.headers || {}).map(([k, v]) => `${k}=${v}`).join(", "))]))}</div>
    <h2>Configs</h2>
    ${table([{ label: "Name" }, { label: "Value" }, { label: "Source" }], (t.configs || []).map((c) => [esc(c.name), esc(c.value), esc(c.source)]))}`;
  document.getElementById("browse").addEventListener("submit", (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const q = new URLSearchParams({ partition: f.get("partition") });
    if (f.get("time")) q.set("time", f.get("time")); else q.set("offset", f.get("offset") || "0");
    location.hash = `#/topics/${encodeURIComponent(name)}?${q}`;
  });
}

async function groups() {
  const gs = await api("/groups");
  page.innerHTML = `<h1>Consumer groups</h1>
    ${gs.length === 0 ? `<p class="muted">No consumer groups yet.</p>` :
      table([{ label: "Group" }, { label: "State" }, { label: "Members", num: true }, { label: "Lag", num: true }],
        gs.map((g) => [`<a href="#/groups/${encodeURIComponent(g.group)}">${esc(g.group)}</a>`, `<span class="state">${esc(g.state)}</span>`, g.members, fmt.num(g.lag)]))}`;
}

async function group(id) {
  const { group: g, lag_history: history } = await api("/groups/" + encodeURIComponent(id));
  const topicsOfGroup = [...new Set(g.partitions.map((p) => p.topic))];
  page.innerHTML = `<h1>Group ${esc(g.group)}</h1>
    <div class="cards">
      <div class="card"><div class="label">State</div><div class="value state" id="group-state">${esc(g.state)}</div></div>
      <div class="card"><div class="label">Members</div><div class="value">${g.members?.length ?? 0}</div></div>
      <div class="card"><div class="label">Total lag</div><div class="value" id="group-lag">${fmt.num(g.lag)}</div></div>
    </div>
    <h2>Lag over time</h2>${lagChart(history)}
    <h2>Partitions</h2>
    ${table([{ label: "Topic" }, { label: "Partition", num: true }, { label: "Committed", num: true }, { label: "Log end", num: true }, { label: "Lag", num: true }, { label: "Member" }],
      g.partitions.map((p) => [esc(p.topic), p.partition, p.current_offset < 0 ? "—" : fmt.num(p.current_offset), fmt.num(p.log_end_offset), fmt.num(p.lag), esc(p.consumer_id ? `${p.client_id} ${p.host}` : "")]))}
    <h2>Members</h2>
    ${(g.members || []).length === 0 ? `<p class="muted">No active members.</p>` :
      table([{ label: "Member" }, { label: "Client" }, { label: "Host" }, { label: "Assigned" }],
        g.members.map((m) => [esc(m.member_id), esc(m.client_id), esc(m.host), esc((m.assigned || []).join(", "))]))}
    <h2>Reset offsets</h2>
    <form class="inline" id="reset">
      <label>Topic <select name="topic">${topicsOfGroup.map((t) => `<option>${esc(t)}</option>`).join("")}</select></label>
      <label>To <input name="to" value="earliest" placeholder="earliest, latest, offset:N, shift:N, time"></label>
      <button type="submit" class="secondary">Preview</button>
    </form>
    <div id="reset-result"></div>`;
  const form = document.getElementById("reset");
  const result = document.getElementById("reset-result");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { topic: form.topic.value, to: form.to.value, execute: false };
    try {
      const plan = await post(`/groups/${encodeURIComponent(id)}/reset`, body);
      result.innerHTML = table([{ label: "Topic" }, { label: "Partition", num: true }, { label: "Current", num: true }, { label: "New", num: true }],
        plan.offsets.map((r) => [esc(r.topic), r.partition, r.current_offset < 0 ? "—" : fmt.num(r.current_offset), fmt.num(r.new_offset)])) +
        `<p>Apply these offsets to group ${esc(id)}? The group must have no active members.</p>
         <button id="confirm-reset" class="danger">Confirm reset</button> <button id="cancel-reset" class="secondary">Cancel</button>`;
      document.getElementById("cancel-reset").onclick = () => { result.innerHTML = ""; };
      document.getElementById("confirm-reset").onclick = async () => {
        try {
          await post(`/groups/${encodeURIComponent(id)}/reset`, { ...body, execute: true });
          result.innerHTML = `<div class="ok" id="reset-done">Offsets reset.</div>`;
          setTimeout(() => group(id), 500);
        } catch (err) {
          result.innerHTML = `<div class="error">${esc(err.message)}</div>`;
        }
      };
    } catch (err) {
      result.innerHTML = `<div class="error">${esc(err.message)}</div>`;
    }
  });
}

function createTopic() {
  page.innerHTML = `<h1>Create topic</h1>
    <form id="create" novalidate>
      <label>Name <input name="name" required pattern="[a-zA-Z0-9._-]+" maxlength="249"></label>
      <div class="field-error" id="name-error"></div>
      <label>Partitions <input name="partitions" type="number" value="3" min="1" max="10000"></label>
      <div class="field-error" id="partitions-error"></div>
      <label>Retention (ms, empty: the broker default) <input name="retention" type="number" min="-1"></label>
      <p><button type="submit">Create</button></p>
    </form><div id="create-result"></div>`;
  const form = document.getElementById("create");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    for (const id of ["name-error", "partitions-error"]) document.getElementById(id).textContent = "";
    const name = form.name.value.trim();
    // The same rules the broker applies, said before the round trip.
    if (!/^[a-zA-Z0-9._-]{1,249}$/.test(name) || name === "." || name === "..") {
      document.getElementById("name-error").textContent = "Use 1 to 249 letters, digits, '.', '_' or '-'.";
      return;
    }
    const partitions = Number(form.partitions.value);
    if (!Number.isInteger(partitions) || partitions < 1) {
      document.getElementById("partitions-error").textContent = "Partitions must be a whole number, at least 1.";
      return;
    }
    const configs = form.retention.value ? { "retention.ms": form.retention.value } : {};
    try {
      await post("/topics", { name, partitions, configs });
      document.getElementById("create-result").innerHTML = `<div class="ok" id="created">Created <a href="#/topics/${encodeURIComponent(name)}">${esc(name)}</a> with ${partitions} partitions.</div>`;
    } catch (err) {
      const target = err.field ? document.getElementById(err.field + "-error") : null;
      if (target) target.textContent = err.message;
      else document.getElementById("create-result").innerHTML = `<div class="error">${esc(err.message)}</div>`;
    }
  });
}

async function route() {
  const [path, query] = (location.hash.slice(1) || "/").split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const section = parts[0] || "overview";
  document.querySelectorAll("header nav a").forEach((a) => a.classList.toggle("active", a.dataset.nav === section));
  try {
    if (section === "overview") await overview();
    else if (section === "cluster") await cluster();
    else if (section === "topics" && parts[1]) await topic(parts[1], params);
    else if (section === "topics") await topics();
    else if (section === "groups" && parts[1]) await group(parts[1]);
    else if (section === "groups") await groups();
    else if (section === "create-topic") createTopic();
    else page.innerHTML = `<p class="error">No such page. <a href="#/">Overview</a></p>`;
  } catch (err) {
    page.innerHTML = `<div class="error">${esc(err.message)}</div>`;
  }
  document.body.dataset.loaded = location.hash || "#/";
}

window.addEventListener("hashchange", route);
route();
