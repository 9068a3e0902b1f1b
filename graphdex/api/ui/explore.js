// Explore: search an entity, open a node (its properties and supporting chunks), expand its neighbourhood into the
// graph view. Only what is shown is loaded: each expansion asks the API for one node's strongest neighbours, so the
// view stays quick on a graph of any size.

import { getJson } from "./api.js";
import { colourOf, inkOn, KIND_COLOURS, TYPE_COLOURS } from "./colours.js";
import { el, shorten, toast, whereOf } from "./dom.js";

const NEIGHBOURS_PER_EXPANSION = 25;
// properties the panel shows otherwise (supporting chunks, links) or that mean nothing to a reader
const HIDDEN_PROPERTIES = new Set(["chunks", "documents", "embedding_digest", "digest"]);
const MAX_SHOWN = 400;

let cy = null;
let openId = null;

function graph() {
  if (cy) return cy;
  cy = window.cytoscape({
    container: document.getElementById("graph"),
    wheelSensitivity: 0.3,
    minZoom: 0.1,
    maxZoom: 4,
    style: [
      { selector: "node", style: {
        "background-color": "data(colour)", label: "data(caption)", color: "#1F2430", "font-size": 10,
        "text-valign": "bottom", "text-margin-y": 3, width: "data(size)", height: "data(size)",
        "border-width": 1, "border-color": "#00000033", "text-wrap": "ellipsis", "text-max-width": 120 } },
      { selector: "node:selected", style: { "border-width": 4, "border-color": "#1F2430" } },
      { selector: "node.expanded", style: { "border-style": "double", "border-width": 4 } },
      { selector: "edge", style: {
        width: "data(width)", "line-color": "#B8C0CC", "curve-style": "bezier", label: "data(caption)",
        "font-size": 8, color: "#5B6272", "text-rotation": "autorotate", "text-background-color": "#FBFCFD",
        "text-background-opacity": 0.8 } },
      { selector: "edge.RELATED_TO", style: { "line-color": "#E4572E" } },
      { selector: "edge.IN_COMMUNITY", style: { "line-color": "#3BA38E" } },
      { selector: "edge.CONNECTS", style: { "line-color": "#9C7BD1" } },
      { selector: "edge.HAS_CHUNK", style: { "line-color": "#A9B2C1" } },
      { selector: "edge.MENTIONS", style: { "line-color": "#C98F1C" } },
    ],
  });
  cy.on("tap", "node", (event) => openNode(event.target.id()));
  cy.on("dbltap", "node", (event) => expand(event.target.id()));
  return cy;
}

export function setupExplore() {
  document.getElementById("explore-form").addEventListener("submit", (event) => {
    event.preventDefault();
    search(document.getElementById("entity-search").value.trim());
  });
  document.getElementById("graph-clear").addEventListener("click", () => {
    graph().elements().remove();
    counted();
    openId = null;
    document.getElementById("node-panel").replaceChildren(el("p", { class: "muted" }, "The graph is empty: search an entity."));
  });
  document.addEventListener("keydown", (event) => {
    const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement?.tagName);
    if (!typing && !document.getElementById("view-explore").hidden && openId && (event.key === "e" || event.key === "E")) {
      event.preventDefault();
      expand(openId);
    }
  });
  document.getElementById("legend-items").replaceChildren(
    ...Object.entries({ ...TYPE_COLOURS, ...KIND_COLOURS }).map(([name, colour]) =>
      el("li", {}, el("span", { class: "swatch", style: `background:${colour}` }), name)));
}

// The view was hidden when Cytoscape measured it: measure again once shown.
export function showExplore() {
  if (cy) {
    cy.resize();
    if (cy.nodes().length) cy.fit(undefined, 30);
  }
}

async function search(text) {
  if (!text) return;
  const list = document.getElementById("entity-results");
  try {
    const { entities } = await getJson(`/graph/entities?q=${encodeURIComponent(text)}&limit=20`);
    list.replaceChildren(...entities.map((e) => el("li", {},
      el("button", { type: "button", class: "chip", "data-id": e.id, onclick: () => openNode(e.id, { expand: true }) },
        el("span", { class: "swatch", style: `background:${colourOf("Entity", e.label)}` }), e.name,
        e.entity_type ? el("span", { class: "muted" }, ` ${e.entity_type}`) : null))));
    if (!entities.length) list.replaceChildren(el("li", { class: "muted" }, `No entity named like “${text}”.`));
    else list.querySelector("button").focus();
  } catch (error) {
    toast(`Search refused: ${error.message}`);
  }
}

function addNode(node, near) {
  const view = graph();
  const existing = view.getElementById(node.id);
  if (existing.nonempty()) return existing;
  const colour = colourOf(node.type, node.label);
  const size = { Document: 40, Community: 44, Entity: 30, Relation: 18, Chunk: 16 }[node.type] || 24;
  const position = near ? { x: near.x + (Math.random() - 0.5) * 120, y: near.y + (Math.random() - 0.5) * 120 } : { x: 0, y: 0 };
  return view.add({ group: "nodes", data: { id: node.id, type: node.type, caption: shorten(node.name || node.id, 40), colour, ink: inkOn(colour), size }, position });
}

function addEdge(edge) {
  const view = graph();
  const id = `${edge.source}|${edge.type}|${edge.target}`;
  if (view.getElementById(id).nonempty() || view.getElementById(edge.source).empty() || view.getElementById(edge.target).empty()) return;
  const caption = edge.type === "RELATED_TO" ? shorten((edge.keywords || []).join(", "), 30) : "";
  view.add({ group: "edges", data: { id, source: edge.source, target: edge.target, caption, width: Math.min(6, 1 + Math.log2(edge.weight || 1)) }, classes: edge.type });
}

function layout(focus) {
  const view = graph();
  view.layout({ name: "cose", animate: false, randomize: false, fit: true, padding: 30, nodeRepulsion: () => 9000, idealEdgeLength: () => 90 }).run();
  if (focus) view.getElementById(focus).select();
  counted();
}

// What the view holds, on its element: for assistive technology (with the label) and for the browser test.
function counted() {
  const box = document.getElementById("graph");
  box.dataset.nodes = String(graph().nodes().length);
  box.dataset.edges = String(graph().edges().length);
  box.setAttribute("aria-label", `Graph view: ${box.dataset.nodes} nodes, ${box.dataset.edges} links. Click a node to open it, double-click to expand it.`);
}

// Open a node: show it (adding it to the graph), its properties and the chunks that support it.
export async function openNode(id, { expand: andExpand = false } = {}) {
  try {
    const details = await getJson(`/graph/nodes/${encodeURIComponent(id)}?neighbours=${NEIGHBOURS_PER_EXPANSION}`);
    openId = id;
    const view = graph();
    const isNew = view.getElementById(id).empty();
    addNode(details.node);
    view.nodes().unselect();
    view.getElementById(id).select();
    showDetails(details);
    if (andExpand) addNeighbours(details);
    else if (isNew) layout(id);
  } catch (error) {
    toast(`Cannot open the node: ${error.message}`);
  }
}

async function expand(id) {
  try {
    const details = await getJson(`/graph/nodes/${encodeURIComponent(id)}?neighbours=${NEIGHBOURS_PER_EXPANSION}`);
    openId = id;
    addNode(details.node);
    showDetails(details);
    addNeighbours(details);
  } catch (error) {
    toast(`Cannot expand the node: ${error.message}`);
  }
}

function addNeighbours(details) {
  const view = graph();
  const centre = view.getElementById(details.node.id);
  const room = MAX_SHOWN - view.nodes().length;
  const neighbours = details.neighbours.slice(0, Math.max(0, room));
  for (const neighbour of neighbours) {
    addNode(neighbour, centre.position());
    addEdge(neighbour.edge);
  }
  centre.addClass("expanded");
  if (details.neighbours.length > neighbours.length) toast(`Showing ${MAX_SHOWN} nodes at most: clear the graph to explore elsewhere.`);
  layout(details.node.id);
  document.getElementById("node-panel").dataset.expanded = details.node.id;
}

function showDetails(details) {
  const node = details.node;
  const properties = Object.entries(node.properties || {}).filter(([name, value]) =>
    !HIDDEN_PROPERTIES.has(name) && value !== null && value !== "" && !(Array.isArray(value) && !value.length));
  const panel = document.getElementById("node-panel");
  panel.replaceChildren(
    el("h2", {}, el("span", { class: "swatch", style: `background:${colourOf(node.type, node.label)}` }), node.name),
    el("p", { class: "muted" }, node.type, node.label ? ` · ${node.label}` : "", ` · ${details.neighbour_count} link(s)`),
    el("button", { type: "button", class: "secondary", onclick: () => expand(node.id) }, "Expand (E)"),
    el("dl", {}, properties.flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, shorten(Array.isArray(value) ? value.join(", ") : typeof value === "object" ? JSON.stringify(value) : String(value), 400))])),
    // the canvas is for the mouse; the same links as buttons are for the keyboard (Tab, Enter) and screen readers
    el("h3", {}, `Links (${details.neighbours.length} of ${details.neighbour_count})`),
    el("div", { class: "chips links" }, details.neighbours.map((n) => el("button", {
      type: "button", class: "chip", "data-id": n.id, onclick: () => openNode(n.id) },
      el("span", { class: "swatch", style: `background:${colourOf(n.type, n.label)}` }), shorten(n.name, 40)))),
    el("h3", {}, `Supporting chunks (${details.chunks.length})`),
    ...details.chunks.map((chunk) => el("div", { class: "chunk" },
      el("div", { class: "cite" }, chunk.title, whereOf(chunk) ? el("span", { class: "muted" }, ` · ${whereOf(chunk)}`) : null),
      el("div", {}, shorten(chunk.text, 500)))));
  panel.dataset.node = node.id;
}
