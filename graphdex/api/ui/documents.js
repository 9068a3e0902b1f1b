// Documents: upload (drag and drop or a file dialog, several at once), each document's status as it is indexed,
// delete and retry, filter by text and status, the workspace's counts.

import { getJson, request } from "./api.js";
import { el, toast } from "./dom.js";

const UNSETTLED = new Set(["pending", "processing", "deleting"]);
const POLL_MS = 1500;

let documents = [];
let pollTimer = null;

export function setupDocuments() {
  const drop = document.getElementById("drop");
  const input = document.getElementById("files");
  drop.addEventListener("click", () => input.click());
  drop.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      input.click();
    }
  });
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    upload([...event.dataTransfer.files]);
  });
  input.addEventListener("change", () => {
    upload([...input.files]);
    input.value = "";
  });
  document.getElementById("doc-filter").addEventListener("input", render);
  document.getElementById("doc-status").addEventListener("change", refreshDocuments);
}

async function upload(files) {
  if (!files.length) return;
  const status = document.getElementById("upload-status");
  const form = new FormData();
  for (const file of files) form.append("files", file, file.name);
  status.textContent = `Uploading ${files.length} file(s)…`;
  try {
    const body = await (await request("/documents", { method: "POST", body: form })).json();
    status.textContent = `Queued ${body.documents.length} document(s) from ${files.length} file(s).`;
  } catch (error) {
    status.textContent = "";
    toast(`Upload refused: ${error.message}`);
  }
  await refreshDocuments();
}

export async function refreshDocuments() {
  clearTimeout(pollTimer);
  const status = document.getElementById("doc-status").value;
  try {
    const body = await getJson(`/documents?limit=1000${status ? `&status=${status}` : ""}`);
    documents = body.documents;
    renderCounts(body.counts, body.total);
  } catch (error) {
    toast(`Documents: ${error.message}`);
    documents = [];
  }
  render();
  const unsettled = documents.some((d) => UNSETTLED.has(d.status));
  if (!unsettled) document.dispatchEvent(new CustomEvent("graphdex:settled"));  // the header's counts follow
  // follow indexing while something is in flight, and only while the view is shown
  if (unsettled && !document.getElementById("view-documents").hidden) pollTimer = setTimeout(refreshDocuments, POLL_MS);
}

export function stopDocuments() {
  clearTimeout(pollTimer);
}

function renderCounts(counts, total) {
  const box = document.getElementById("doc-counts");
  box.replaceChildren(el("span", {}, `${total} listed`),
    ...Object.entries(counts || {}).filter(([, n]) => n > 0).map(([name, n]) => el("span", { class: `status status-${name}` }, `${name}: ${n}`)));
}

function render() {
  const filter = document.getElementById("doc-filter").value.trim().toLowerCase();
  const shown = documents.filter((d) => !filter || `${d.title} ${d.source}`.toLowerCase().includes(filter));
  const rows = shown.map((d) => el("tr", { "data-id": d.id },
    el("td", {}, d.title || d.id),
    el("td", { class: "source" }, d.source || ""),
    el("td", {}, el("span", { class: `status status-${d.status}`, "data-status": d.status }, d.status),
      d.error ? el("div", { class: "error" }, d.error) : null),
    el("td", {}, d.status === "done" && d.chunks !== undefined ? `${d.chunks} chunk(s), ${d.words} words` : ""),
    el("td", {}, d.updated_at ? new Date(d.updated_at).toLocaleString() : ""),
    el("td", {},
      d.status === "failed" ? el("button", { class: "secondary", type: "button", onclick: () => act(d, "retry") }, "Retry") : null,
      d.status !== "deleting" ? el("button", { class: "danger", type: "button", "aria-label": `Delete ${d.title}`, onclick: () => act(d, "delete") }, "Delete") : null)));
  document.querySelector("#documents tbody").replaceChildren(...rows);
  document.getElementById("documents-empty").hidden = documents.length > 0;
}

async function act(doc, action) {
  if (action === "delete" && !confirm(`Delete “${doc.title}” and everything indexed from it?`)) return;
  try {
    if (action === "delete") await request(`/documents/${encodeURIComponent(doc.id)}`, { method: "DELETE" });
    else await request(`/documents/${encodeURIComponent(doc.id)}/retry`, { method: "POST" });
  } catch (error) {
    toast(`${action === "delete" ? "Delete" : "Retry"} refused: ${error.message}`);
  }
  await refreshDocuments();
}
