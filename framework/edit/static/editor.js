// The page of `agenthost edit`: a form built from agent.yaml's schema (json-editor, vendored), the YAML as it
// will be saved, the validator's findings at their field and line, Save, and Try it. Every check is the
// server's (the same messages as `agenthost validate`); the form library's own validation is switched off.
"use strict";

(() => {
  const TOKEN = document.querySelector('meta[name="agenthost-token"]').content;
  const DEBOUNCE_MS = 300;
  const $ = (id) => document.getElementById(id);

  const ui = {
    form: $("form"), text: $("yaml-text"), gutter: $("gutter"), findings: $("findings"),
    findingsNone: $("findings-none"), save: $("save"), reason: $("save-reason"), saved: $("saved"),
    file: $("file-name"), chatForm: $("chat-form"), chatTarget: $("chat-target"), chatMessage: $("chat-message"),
    chatSend: $("chat-send"), chatKey: $("chat-key"), answer: $("chat-answer"), tools: $("chat-tools"),
    stats: $("chat-stats"),
  };

  /** A JSON request to the editor's server: the token header on every call (the server refuses /api/* without). */
  async function api(path, body) {
    const init = { headers: { "X-Agenthost-Token": TOKEN }, credentials: "same-origin" };
    if (body !== undefined) {
      init.method = "POST";
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    let payload = {};
    try {
      payload = await response.json();
    } catch {
      payload = { error: `The editor's server answered ${response.status} without JSON.` };
    }
    return { status: response.status, body: payload };
  }

  // ---- the schema, prepared for json-editor -------------------------------------------------------------

  /** The node a local JSON pointer ("#/$defs/sessions/properties/store") names. */
  function pointerTarget(root, ref) {
    return ref.slice(2).split("/").reduce((node, part) =>
      node[part.replace(/~1/g, "/").replace(/~0/g, "~")], root);
  }

  const UNIT = /\bin (seconds|minutes|hours|days|MB|GB)\b|^(Seconds|Minutes|Hours|Days)\b/;

  /**
   * The assembled 2020-12 schema rewritten into the subset json-editor renders well. Why each step:
   * - $ref is inlined here (siblings such as examples win over the target's): json-editor resolves
   *   "#/definitions/x"-style names, not deep pointers such as #/$defs/sessions/properties/store;
   * - ["object", "null"] becomes "object": a platform written as `aws:` (no settings) is an empty section,
   *   not a type switcher;
   * - if/then/else (a tool: MCP when it has `mcp`, else HTTP) becomes a titled oneOf, which json-editor
   *   shows as a choice; it does not evaluate if/then/else;
   * - an enum gets its values' type: without one json-editor puts a type switcher before the choice;
   * - propertyNames and x-message are dropped: names and messages are the server's validator's business;
   * - each field gets a title with its unit, a description with its default and limits, and its first
   *   example as the input's placeholder.
   */
  function prepare(node, root, key, depth = 0) {
    if (Array.isArray(node)) return node.map((item) => prepare(item, root, key, depth + 1));
    if (node === null || typeof node !== "object") return node;
    if (depth > 40) return {};
    let source = node;
    if (typeof node.$ref === "string" && node.$ref.startsWith("#/")) {
      const { $ref, ...siblings } = node;
      source = { ...pointerTarget(root, $ref), ...siblings };
    }
    const out = {};
    for (const [name, value] of Object.entries(source)) {
      if (["$schema", "$id", "$defs", "$ref", "propertyNames", "x-message", "if", "then", "else"].includes(name)) continue;
      if (name === "properties" || name === "patternProperties") {
        out[name] = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, prepare(v, root, k, depth + 1)]));
      } else if (name === "additionalProperties" && typeof value === "object") {
        out[name] = prepare(value, root, "", depth + 1);
      } else if (name === "items") {
        out[name] = prepare(value, root, key, depth + 1);
      } else if (["oneOf", "anyOf", "allOf"].includes(name)) {
        out[name] = value.map((item) => prepare(item, root, key, depth + 1));
      } else {
        out[name] = value;
      }
    }
    if (source.if && source.then && source.else) {
      out.oneOf = [
        { title: "HTTP request", ...prepare(source.else, root, key, depth + 1) },
        { title: "MCP server", ...prepare(source.then, root, key, depth + 1) },
      ];
    }
    if (Array.isArray(out.enum) && out.type === undefined) {
      // an enum without a type is, to json-editor, "any type" with a type switcher in front of the choice
      const types = [...new Set(out.enum.map((v) => (Number.isInteger(v) ? "integer" : typeof v)))];
      if (types.length === 1) out.type = types[0];
    }
    if (Array.isArray(out.type) && out.type.includes("null") && out.type.length === 2) {
      out.type = out.type.find((t) => t !== "null");
    }
    return describe(out, key);
  }

  /** Title (key and unit), description (default, limits) and placeholder of one field. */
  function describe(node, key) {
    if (!key) return node;
    const description = node.description || "";
    const unit = description.match(UNIT);
    node.title = node.title || (unit ? `${key} (${(unit[1] || unit[2]).toLowerCase().replace("mb", "MB").replace("gb", "GB")})` : key);
    const extra = [];
    if (node.minimum !== undefined && node.maximum !== undefined) extra.push(`From ${node.minimum} to ${node.maximum}.`);
    else if (node.minimum !== undefined) extra.push(`At least ${node.minimum}.`);
    else if (node.maximum !== undefined) extra.push(`At most ${node.maximum}.`);
    if (node.default !== undefined && typeof node.default !== "object") extra.push(`Default: ${node.default}.`);
    if (extra.length) node.description = [description, ...extra].filter(Boolean).join(" ");
    const example = Array.isArray(node.examples) ? node.examples[0] : undefined;
    if (example !== undefined && typeof example !== "object" && !node.enum) {
      node.options = { ...node.options, inputAttributes: { ...(node.options || {}).inputAttributes, placeholder: `e.g. ${example}` } };
    }
    return node;
  }

  /** The prompt: a large text area, or the file it is read from. */
  function preparePrompt(schema) {
    const prompt = schema.properties && schema.properties.prompt;
    if (!prompt || !Array.isArray(prompt.oneOf)) return;
    const [text, file] = prompt.oneOf;
    Object.assign(text, { title: "The prompt's text", format: "textarea", options: { inputAttributes: { rows: 10 } } });
    Object.assign(file, { title: "Read from a file" });
    if (file.properties && file.properties.file) file.properties.file.title = "prompt file (relative to agent.yaml)";
  }

  /** One argument of an HTTP tool, as the model is told it: the JSON Schema keywords tools use most. */
  const ARGUMENT = {
    type: "object",
    properties: {
      type: { type: "string", title: "type", enum: ["string", "number", "integer", "boolean", "array", "object"],
              description: "What the model fills in." },
      description: { type: "string", title: "description", description: "What it is, for the model." },
      enum: { type: "array", title: "enum", format: "table", items: { type: "string", title: "value" },
              description: "The only values allowed." },
      pattern: { type: "string", title: "pattern", description: "A regular expression the value must match." },
    },
    defaultProperties: ["type", "description"],
  };

  /**
   * A tool's parameters (free JSON Schema in agent.yaml's schema) shown as a list of named arguments, each
   * with its type and description, and the names the model must fill in: json-editor shows an untyped
   * object as fields of any type, each behind a type switcher.
   */
  function prepareParameters(schema) {
    const tool = schema.properties && schema.properties.tools && schema.properties.tools.items;
    const http = tool && Array.isArray(tool.oneOf) ? tool.oneOf[0] : null;
    const parameters = http && http.properties && http.properties.parameters;
    if (!parameters) return;
    http.properties.parameters = {
      title: "parameters", description: parameters.description, type: "object",
      properties: {
        type: { type: "string", title: "type", enum: ["object"], description: "Always object: the arguments by name." },
        properties: { type: "object", title: "arguments", additionalProperties: ARGUMENT,
                      description: "Each argument by its name: add one with \u201cAdd or remove fields\u201d." },
        required: { type: "array", title: "required", format: "table", items: { type: "string", title: "argument" },
                    description: "The arguments the model must always fill in." },
      },
      defaultProperties: ["type", "properties", "required"],
    };
  }

  /** Fields in the order the file writes them (json-editor's propertyOrder), the others after. */
  function orderLike(schema, data) {
    if (!isObject(data) || !schema || !isObject(schema.properties)) return;
    Object.keys(data).forEach((key, index) => {
      const property = schema.properties[key];
      if (!property) return;
      property.propertyOrder = index + 1;
      orderLike(property, data[key]);
    });
  }

  // ---- values: the form's edits applied to the server's data ---------------------------------------------

  const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

  /**
   * `data` with what changed from `before` to `after` (two values of the form) applied. The form's value
   * is not the file's data (json-editor fills in what a field shows); sending only the user's change keeps
   * everything else of the file exactly as written.
   */
  function applyChange(data, before, after) {
    if (!isObject(before) || !isObject(after) || !isObject(data)) return structuredClone(after);
    const out = structuredClone(data);
    for (const key of Object.keys(before)) if (!(key in after)) delete out[key];
    for (const [key, value] of Object.entries(after)) {
      if (!(key in before)) out[key] = structuredClone(value);
      else if (!same(before[key], value)) out[key] = applyChange(out[key], before[key], value);
    }
    return out;
  }

  // ---- state ---------------------------------------------------------------------------------------------

  const state = { data: null, formValue: null, editor: null, findings: [], ok: false, seq: 0, quiet: false, base: null };

  function setText(text) {
    if (ui.text.value !== text) {
      const { selectionStart, selectionEnd } = ui.text;
      ui.text.value = text;
      if (document.activeElement === ui.text) ui.text.setSelectionRange(selectionStart, selectionEnd);
    }
    renderGutter();
  }

  function renderGutter() {
    const lines = ui.text.value.split("\n").length;
    ui.gutter.textContent = Array.from({ length: lines }, (_, i) => i + 1).join("\n");
    ui.gutter.scrollTop = ui.text.scrollTop;
  }

  /** The form shows `data` without reporting it back as the user's change. */
  function showInForm(data) {
    if (!state.editor || !isObject(data)) return;
    if (same(state.editor.getValue(), data)) {
      state.formValue = state.editor.getValue();
      return;
    }
    state.quiet = true;
    state.editor.setValue(data);
    state.formValue = state.editor.getValue();
    state.quiet = false;
  }

  /** A response of /api/text, /api/form or /api/save: text, findings, Save's state, targets. */
  function accept(body, { form = true } = {}) {
    if (typeof body.text === "string") setText(body.text);
    if (body.data !== undefined && body.data !== null) {
      state.data = body.data;
      if (form) showInForm(body.data);
    }
    if (Array.isArray(body.findings)) state.findings = body.findings;
    if (typeof body.ok === "boolean") state.ok = body.ok;
    if (Array.isArray(body.targets)) setTargets(body.targets);
    if (typeof body.base === "string") state.base = body.base; // the file's version on disk, for Save
    renderFindings(body.data === null ? "The YAML does not parse: the form waits until it does." : "");
  }

  const errors = () => state.findings.filter((f) => f.severity === "error");

  function renderFindings(note) {
    ui.findings.replaceChildren();
    document.querySelectorAll(".field-finding").forEach((el) => el.remove());
    document.querySelectorAll("[data-finding-input]").forEach((el) => {
      el.removeAttribute("aria-invalid");
      el.removeAttribute("data-finding-input");
    });
    for (const finding of state.findings) {
      const item = document.createElement("li");
      item.className = finding.severity;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "finding";
      const where = finding.line ? `${finding.line}:${finding.column || 1}` : "file";
      button.textContent = `${where} ${finding.severity}: ${finding.message}`;
      button.dataset.pointer = finding.pointer;
      if (finding.line) button.addEventListener("click", () => selectLine(finding.line));
      item.append(button);
      ui.findings.append(item);
      markField(finding);
    }
    ui.findingsNone.hidden = state.findings.length > 0;
    const count = errors().length;
    ui.save.disabled = !state.ok;
    if (note) ui.reason.textContent = note;
    else if (!state.ok) ui.reason.textContent = `Save is off: ${count} problem${count === 1 ? "" : "s"} to fix first (listed under the YAML).`;
    else ui.reason.textContent = "Ready to save.";
  }

  /** The finding's message under its field (or the closest field shown, when that one is not). */
  function markField(finding) {
    if (!state.editor) return;
    const path = (finding.path || []).map(String);
    let editor = null;
    for (let n = path.length; n >= 0 && !editor; n -= 1) editor = state.editor.getEditor(["root", ...path.slice(0, n)].join("."));
    if (!editor || !editor.container) return;
    const note = document.createElement("p");
    note.className = `field-finding ${finding.severity}`;
    note.dataset.pointer = finding.pointer;
    note.textContent = finding.message;
    const exact = editor.path === ["root", ...path].join(".");
    if (exact && editor.input) {
      note.id = `finding-${editor.path.replace(/[^A-Za-z0-9_-]/g, "-")}`;
      editor.input.setAttribute("aria-invalid", "true");
      editor.input.setAttribute("data-finding-input", "");
      const described = (editor.input.getAttribute("aria-describedby") || "").split(" ").filter((id) => id && id !== note.id);
      editor.input.setAttribute("aria-describedby", [...described, note.id].join(" "));
    }
    editor.container.append(note);
  }

  function selectLine(line) {
    const lines = ui.text.value.split("\n");
    const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
    ui.text.focus();
    ui.text.setSelectionRange(start, start + (lines[line - 1] || "").length);
    const height = ui.text.scrollHeight / Math.max(lines.length, 1);
    ui.text.scrollTop = Math.max(0, (line - 3) * height);
  }

  // ---- sync both ways --------------------------------------------------------------------------------------

  function debounce(fn) {
    let timer = null;
    return () => {
      clearTimeout(timer);
      timer = setTimeout(fn, DEBOUNCE_MS);
    };
  }

  /** One request at a time wins: a late answer to an older edit is dropped, and so is one to a YAML the
   * user has typed in since (its own answer follows: what was typed is never overwritten). */
  async function send(path, body, options) {
    const seq = ++state.seq;
    const sent = ui.text.value;
    const { status, body: answer } = await api(path, body);
    if (seq !== state.seq || ui.text.value !== sent) return;
    if (status === 200) accept(answer, options);
    else {
      if (Array.isArray(answer.findings)) state.findings = answer.findings;
      state.ok = false;
      renderFindings(answer.error || `The editor's server answered ${status}.`);
    }
  }

  const textChanged = debounce(() => send("/api/text", { text: ui.text.value }));

  const formChanged = debounce(() => {
    const value = state.editor.getValue();
    if (same(value, state.formValue)) return;
    const data = applyChange(state.data, state.formValue, value);
    state.formValue = value;
    send("/api/form", { text: ui.text.value, data }, { form: false });
  });

  // ---- save --------------------------------------------------------------------------------------------------

  async function save() {
    if (ui.save.disabled) return;
    ui.save.disabled = true;
    ui.reason.textContent = "Saving…";
    ui.saved.replaceChildren();
    state.seq += 1; // an edit's answer still under way is older than what is saved
    const { status, body } = await api("/api/save", { text: ui.text.value, base: state.base });
    if (status === 200) {
      accept(body);
      const title = document.createElement("p");
      title.textContent = body.changed.length
        ? `Saved ${ui.file.textContent} and built generated/. Changed files:`
        : `Saved ${ui.file.textContent}; generated/ was already up to date.`;
      const list = document.createElement("ul");
      list.id = "changed";
      for (const name of body.changed) {
        const item = document.createElement("li");
        item.textContent = name;
        list.append(item);
      }
      ui.saved.append(title, list);
      ui.reason.textContent = "Saved.";
    } else {
      if (Array.isArray(body.findings)) state.findings = body.findings;
      renderFindings(body.error || `Not saved: the server answered ${status}.`);
      ui.save.disabled = status === 409 ? true : !state.ok;
    }
  }

  // ---- try it --------------------------------------------------------------------------------------------

  function setTargets(targets) {
    const current = ui.chatTarget.value;
    if (same([...ui.chatTarget.options].map((o) => o.value), targets)) return;
    ui.chatTarget.replaceChildren(...targets.map((name) => new Option(name, name, false, name === current)));
  }

  function addTool(part) {
    let item = ui.tools.querySelector(`[data-call="${CSS.escape(part.toolCallId)}"]`);
    if (!item) {
      item = document.createElement("li");
      item.dataset.call = part.toolCallId;
      ui.tools.append(item);
    }
    if (part.type === "tool-input-available") item.textContent = `${part.toolName}(${JSON.stringify(part.input)})`;
    else item.textContent += ` → ${JSON.stringify(part.output)}`;
  }

  function onPart(part) {
    if (part.type === "text-delta") ui.answer.textContent += part.delta;
    else if (part.type === "tool-input-available" || part.type === "tool-output-available") addTool(part);
    else if (part.type === "error") ui.stats.textContent = `Error: ${part.errorText}`;
    else if (part.type === "finish") {
      const meta = part.messageMetadata || {};
      const words = [];
      if (meta.tokens !== undefined) words.push(`Tokens: ${typeof meta.tokens === "object" ? JSON.stringify(meta.tokens) : meta.tokens}`);
      if (meta.steps !== undefined) words.push(`Steps: ${meta.steps}`);
      if (meta.stopped) words.push(`Stopped: ${meta.stopped}`);
      ui.stats.textContent = words.join(" · ");
    }
  }

  /** Posts the message and shows the runtime's UI message stream as it arrives. */
  async function chat(event) {
    event.preventDefault();
    ui.answer.textContent = "";
    ui.tools.replaceChildren();
    ui.stats.textContent = "Waiting for the answer…";
    ui.chatSend.disabled = true;
    try {
      const response = await fetch("/api/chat", {
        method: "POST", credentials: "same-origin",
        headers: { "X-Agenthost-Token": TOKEN, "Content-Type": "application/json" },
        body: JSON.stringify({ target: ui.chatTarget.value, message: ui.chatMessage.value }),
      });
      if (response.status !== 200 || !response.body) {
        const body = await response.json().catch(() => ({}));
        ui.stats.textContent = body.error || `Try it failed: the server answered ${response.status}.`;
        return;
      }
      ui.stats.textContent = "";
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        const events = buffer.split("\n\n");
        buffer = events.pop();
        for (const block of events) {
          for (const line of block.split("\n")) {
            if (!line.startsWith("data: ")) continue;
            const data = line.slice(6);
            if (data !== "[DONE]") onPart(JSON.parse(data));
          }
        }
      }
    } catch (error) {
      ui.stats.textContent = `Try it failed: ${error.message}`;
    } finally {
      ui.chatSend.disabled = !state.modelKey;
    }
  }

  function showModelKey(present, name) {
    state.modelKey = present;
    ui.chatKey.hidden = present;
    ui.chatKey.textContent = present ? "" :
      `Try it needs ${name} in the environment agenthost edit runs in: set it and start the editor again.`;
    ui.chatSend.disabled = !present;
  }

  // ---- start -----------------------------------------------------------------------------------------------

  async function start() {
    const { status, body } = await api("/api/state");
    if (status !== 200) {
      ui.reason.textContent = body.error || `The editor's server answered ${status}.`;
      return;
    }
    const name = body.file.split(/[\\/]/).pop();
    ui.file.textContent = name;
    ui.file.title = body.file;
    document.title = `${name} — agenthost edit`;
    window.JSONEditor.defaults.languages.en.button_object_properties = "Add or remove fields";
    setText(body.text);
    showModelKey(body.model_key, body.model_key_name);
    const schema = prepare(body.schema, body.schema, "");
    preparePrompt(schema);
    prepareParameters(schema);
    orderLike(schema, body.data);
    state.data = body.data;
    state.editor = new window.JSONEditor(ui.form, {
      schema,
      startval: isObject(body.data) ? body.data : undefined,
      theme: "html",
      iconlib: null,
      show_errors: "never", // the messages are the server's
      display_required_only: true, // optional fields and platforms are added with "Properties"
      show_opt_in: false,
      disable_edit_json: true,
      disable_collapse: true,
      disable_array_reorder: false,
      prompt_before_delete: false,
      remove_empty_properties: false,
      use_default_values: false,
    });
    state.editor.on("ready", () => {
      state.formValue = state.editor.getValue();
      state.editor.on("change", () => {
        if (!state.quiet) formChanged();
      });
      accept(body, { form: false });
      document.body.dataset.ready = "true";
    });
  }

  // json-editor takes a field's value on the DOM "change" event (when the field loses focus); firing it
  // while the user types (debounced) lets the YAML follow the keystrokes.
  const committers = new WeakMap();
  ui.form.addEventListener("input", (event) => {
    const input = event.target;
    if (!committers.has(input)) committers.set(input, debounce(() => input.dispatchEvent(new Event("change"))));
    committers.get(input)();
  });
  ui.text.addEventListener("input", () => {
    renderGutter();
    textChanged();
  });
  ui.text.addEventListener("scroll", () => { ui.gutter.scrollTop = ui.text.scrollTop; });
  ui.save.addEventListener("click", save);
  ui.chatForm.addEventListener("submit", chat);
  start();
})();
