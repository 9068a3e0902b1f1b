// The web UI's shell: views by URL hash (#documents, #ask, #explore; Alt+1..3), the workspace and the API key.

import { getJson, session } from "./api.js";
import { setupAsk } from "./ask.js";
import { el, toast } from "./dom.js";
import { refreshDocuments, setupDocuments, stopDocuments } from "./documents.js";
import { openNode, setupExplore, showExplore } from "./explore.js";

const VIEWS = ["documents", "ask", "explore"];
let keyNeeded = false;  // the server refused the key: the key field keeps the focus until a key is typed

function show(view) {
  if (!VIEWS.includes(view)) view = "documents";
  for (const name of VIEWS) {
    document.getElementById(`view-${name}`).hidden = name !== view;
    document.getElementById(`tab-${name}`).setAttribute("aria-selected", String(name === view));
  }
  if (view === "documents") refreshDocuments();
  else stopDocuments();
  if (view === "explore") showExplore();
  const focus = keyNeeded ? "api-key" : { ask: "question", explore: "entity-search" }[view];
  if (focus) document.getElementById(focus).focus();
}

async function loadWorkspaces() {
  const select = document.getElementById("workspace");
  try {
    const { workspaces } = await getJson("/workspaces", { global: true });
    const names = workspaces.map((w) => w.name);
    if (!names.includes(session.workspace)) session.setWorkspace(names.includes("default") ? "default" : names[0] || "default");
    select.replaceChildren(...workspaces.map((w) => el("option", { value: w.name, selected: w.name === session.workspace }, w.name)));
    const current = workspaces.find((w) => w.name === session.workspace);
    document.getElementById("workspace-counts").textContent = current && current.documents !== undefined ? `${current.documents} document(s)` : "";
  } catch (error) {
    toast(error.status === 401 ? "This server needs an API key: type it at the top right." : `Workspaces: ${error.message}`);
  }
}

async function main() {
  const config = await (await fetch("config.json")).json();
  const key = document.getElementById("api-key");
  key.value = session.key;
  key.addEventListener("change", async () => {
    keyNeeded = false;
    session.setKey(key.value.trim());
    await loadWorkspaces();
    show(location.hash.slice(1));
  });
  document.getElementById("workspace").addEventListener("change", (event) => {
    session.setWorkspace(event.target.value);
    loadWorkspaces();
    show(location.hash.slice(1));
  });
  setupDocuments();
  setupAsk(config, (id) => {
    location.hash = "#explore";
    openNode(id, { expand: true });
  });
  setupExplore();
  window.addEventListener("hashchange", () => show(location.hash.slice(1)));
  document.addEventListener("graphdex:settled", loadWorkspaces);
  document.addEventListener("graphdex:key-needed", () => {
    keyNeeded = true;
    document.getElementById("api-key").focus();
  });
  document.addEventListener("keydown", (event) => {
    if (event.altKey && ["1", "2", "3"].includes(event.key)) {
      event.preventDefault();
      location.hash = `#${VIEWS[Number(event.key) - 1]}`;
    }
  });
  await loadWorkspaces();
  show(location.hash.slice(1));
}

main();
