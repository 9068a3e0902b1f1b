// The REST API as the pages use it: the chosen workspace's routes, with the key the user typed (X-API-Key).
// Nothing here grants more than the API does: the server checks every call.

const KEY_STORAGE = "graphdex.apiKey";
const WORKSPACE_STORAGE = "graphdex.workspace";

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

export const session = {
  // the key lives for the browser tab only: it is a secret, and a shared machine should not keep it
  key: sessionStorage.getItem(KEY_STORAGE) || "",
  workspace: localStorage.getItem(WORKSPACE_STORAGE) || "default",
  setKey(key) {
    this.key = key;
    sessionStorage.setItem(KEY_STORAGE, key);
  },
  setWorkspace(name) {
    this.workspace = name;
    localStorage.setItem(WORKSPACE_STORAGE, name);
  },
};

function headers(extra) {
  const result = new Headers(extra || {});
  if (session.key) result.set("X-API-Key", session.key);
  return result;
}

async function failure(response) {
  let detail = response.statusText || `HTTP ${response.status}`;
  try {
    const body = await response.json();
    if (typeof body.detail === "string") detail = body.detail;
    else if (Array.isArray(body.detail)) detail = body.detail.map((d) => d.msg || JSON.stringify(d)).join("; ");
  } catch (_) {
    // not JSON: keep the status text
  }
  return new ApiError(response.status, detail);
}

// A request to `path` of the chosen workspace (`global: true`: of the server, as /workspaces).
export async function request(path, { method = "GET", json, body, global = false, signal } = {}) {
  const prefix = global ? "" : `/workspaces/${encodeURIComponent(session.workspace)}`;
  const init = { method, headers: headers(json !== undefined ? { "Content-Type": "application/json" } : {}), signal };
  if (json !== undefined) init.body = JSON.stringify(json);
  else if (body !== undefined) init.body = body;
  const response = await fetch(prefix + path, init);
  // a refused key: the page takes the user to the key field (app.js), whatever the call was
  if (response.status === 401) document.dispatchEvent(new CustomEvent("graphdex:key-needed"));
  if (!response.ok) throw await failure(response);
  return response;
}

export async function getJson(path, options) {
  return (await request(path, options)).json();
}

// Server-sent events from a POST (EventSource only does GET): calls onEvent(name, data) for each event.
export async function postEvents(path, json, onEvent, signal) {
  const response = await request(path, { method: "POST", json, signal });
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      if (data.length) onEvent(event, JSON.parse(data.join("\n")));
    }
  }
}
