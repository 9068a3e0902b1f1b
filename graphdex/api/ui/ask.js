// Ask: a question with its mode and top k; the ranked passages with their citations and the graph nodes that led
// to each; the answer streamed as the model writes it, when the server has one.

import { postEvents, request } from "./api.js";
import { el, toast, whereOf } from "./dom.js";

let config = { modes: ["graph"], default_mode: "graph", answers: false, max_top_k: 50 };
let running = null;

export function setupAsk(serverConfig, openNode) {
  config = serverConfig;
  const mode = document.getElementById("mode");
  mode.replaceChildren(...config.modes.map((m) => el("option", { value: m, selected: m === config.default_mode }, m)));
  document.getElementById("top-k").max = String(config.max_top_k);
  document.getElementById("ask-form").addEventListener("submit", (event) => {
    event.preventDefault();
    ask(openNode);
  });
}

async function ask(openNode) {
  const question = document.getElementById("question").value.trim();
  if (!question) return;
  running?.abort();
  running = new AbortController();
  const body = {
    query: question,
    mode: document.getElementById("mode").value,
    top_k: Number(document.getElementById("top-k").value) || 10,
  };
  const status = document.getElementById("ask-status");
  const answer = document.getElementById("answer");
  const answerText = document.getElementById("answer-text");
  answer.hidden = true;
  answerText.textContent = "";
  document.getElementById("passages").replaceChildren();
  status.textContent = "Searching…";
  try {
    if (config.answers) {
      await postEvents("/query/stream", body, (event, data) => {
        if (event === "context") {
          showPassages(data.results, openNode);
          status.textContent = `${data.results.length} passage(s); writing the answer…`;
          answer.hidden = false;
        } else if (event === "token") {
          answerText.textContent += data.text;
        } else if (event === "done") {
          status.textContent = `${document.getElementById("passages").children.length} passage(s); answer cites ${data.citations.length}.`;
        } else if (event === "error") {
          toast(`The model failed: ${data.detail}`);
        }
      }, running.signal);
    } else {
      const result = await (await request("/query", { method: "POST", json: { ...body, answer: false }, signal: running.signal })).json();
      showPassages(result.results, openNode);
      status.textContent = `${result.results.length} passage(s) in ${(result.seconds * 1000).toFixed(0)} ms (${result.mode} mode).`;
    }
  } catch (error) {
    if (error.name === "AbortError") return;
    status.textContent = "";
    toast(`Query refused: ${error.message}`);
  }
}

function showPassages(results, openNode) {
  const items = results.map((hit, index) => {
    const where = whereOf(hit);
    const via = (hit.via || []).map((node) => el("button", {
      class: "chip", type: "button", title: `${node.type}: open in the explorer`,
      onclick: () => openNode(node.id),
    }, `${node.type === "Relation" ? "↔ " : ""}${node.name}`));
    return el("li", { class: "passage" },
      el("div", { class: "cite" }, `[${index + 1}] ${hit.title}`, where ? el("span", { class: "where" }, ` · ${where}`) : null,
        el("span", { class: "where" }, ` · score ${hit.score.toFixed(3)}`)),
      el("div", { class: "text" }, hit.text),
      via.length ? el("div", { class: "chips", "aria-label": "Graph nodes that led here" }, el("span", { class: "muted" }, "via"), via) : null);
  });
  document.getElementById("passages").replaceChildren(...items);
}
