/* GraphRAG console: ask with sources, explore the graph, watch ingestion.
 *
 * Served by the gateway itself (GET /console). Every data call is relative to the page (so it works
 * behind a stage prefix) and carries the key the person entered, kept in sessionStorage only.
 * No inline script or style (the page's CSP forbids both), no request to any other origin.
 */
(function () {
  "use strict";

  var KEY_NAME = "graphrag-console-key";
  var state = { citations: {}, answerText: "", deltas: 0, documentsCursor: null, cy: null, graph: null, pendingEntity: null };

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === undefined || value === null || value === false) { return; }
      if (name === "text") { node.textContent = value; }
      else if (name === "className") { node.className = value; }
      else if (name.slice(0, 2) === "on") { node.addEventListener(name.slice(2), value); }
      else { node.setAttribute(name, value === true ? "" : value); }
    });
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } }

  function hint(text) { return el("p", { className: "hint", text: text }); }

  // --- errors and the key ---------------------------------------------------------------------

  function showError(message) {
    var box = $("error");
    box.textContent = message;
    box.hidden = !message;
  }

  function getKey() { return sessionStorage.getItem(KEY_NAME) || ""; }

  function ApiFailure(status, code, message) {
    this.status = status; this.code = code; this.message = message;
  }

  function describe(failure) {
    if (failure instanceof ApiFailure) {
      if (failure.status === 401) {
        return "The API key was refused: " + failure.message.replace(/\.?$/, ".") + " Check the key and enter it again.";
      }
      return failure.message + (failure.status ? " (HTTP " + failure.status + ")" : "");
    }
    return "The gateway could not be reached: " + (failure && failure.message ? failure.message : String(failure));
  }

  function keyRefused(failure) {
    setKeyStatus("Key refused: " + failure.message + " Enter a valid key.", "bad");
  }

  function setKeyStatus(text, kind) {
    var status = $("key-status");
    status.textContent = text;
    status.className = "key-status" + (kind ? " " + kind : "");
  }

  async function failureOf(response) {
    var code = "http_" + response.status;
    var message = response.statusText || "Request failed";
    try {
      var body = await response.json();
      if (body && body.message) { message = body.message; }
      if (body && body.error && typeof body.error === "string") { code = body.error; }
    } catch (ignored) { /* not JSON */ }
    var failure = new ApiFailure(response.status, code, message);
    if (response.status === 401) { keyRefused(failure); }
    return failure;
  }

  async function api(path, options) {
    var key = getKey();
    if (!key) {
      throw new ApiFailure(0, "no_key", "Enter your API key first (top of the page).");
    }
    options = options || {};
    var headers = { "x-api-key": key };
    if (options.body !== undefined) { headers["content-type"] = "application/json"; }
    var response = await fetch(path, {
      method: options.method || (options.body !== undefined ? "POST" : "GET"),
      headers: headers,
      body: options.body !== undefined ? JSON.stringify(options.body) : undefined,
      credentials: "omit",
      cache: "no-store",
      referrerPolicy: "no-referrer",
      signal: options.signal,
    });
    if (options.raw) {
      if (!response.ok) { throw await failureOf(response); }
      return response;
    }
    if (!response.ok) { throw await failureOf(response); }
    return response.json();
  }

  async function checkKey() {
    // /documents is keyed and cheap; where it is not deployed (404), the graph search checks the key.
    try {
      await api("documents?limit=1");
    } catch (failure) {
      if (!(failure instanceof ApiFailure) || failure.status !== 404) { throw failure; }
      try { await api("graph/entities?q=key"); } catch (second) {
        if (second instanceof ApiFailure && second.status === 401) { throw second; }
      }
    }
  }

  async function useKey(event) {
    event.preventDefault();
    var input = $("key-input");
    var key = input.value.trim();
    if (!key) { return; }
    // A header carries the key: a character no key has (a typographic quote, a letter with an accent, a space
    // pasted along with it) would fail every call as "the gateway could not be reached". Say which one it is.
    var odd = /[^\x21-\x7e]/.exec(key);
    if (odd) {
      var shown = /\s/.test(odd[0]) ? "a space" : "“" + odd[0] + "”";
      var message = "That is not an API key: it has " + shown + ", and a key has only letters, digits and ASCII punctuation. Was something pasted along with it?";
      setKeyStatus(message, "bad");
      showError(message);
      input.focus();
      return;
    }
    sessionStorage.setItem(KEY_NAME, key);
    input.value = "";
    showError("");
    setKeyStatus("Checking the key…", "");
    try {
      await checkKey();
      setKeyStatus("Key accepted. It is kept in this browser tab only (sessionStorage) and sent with each request.", "good");
      if (currentView() === "documents") { loadDocuments(false); }
      if (state.pendingEntity) { loadNeighbourhood(state.pendingEntity); state.pendingEntity = null; }
    } catch (failure) {
      if (failure instanceof ApiFailure && failure.status === 401) {
        sessionStorage.removeItem(KEY_NAME);
        showError(describe(failure));
      } else {
        setKeyStatus("Could not check the key: " + describe(failure), "bad");
      }
    }
  }

  function forgetKey() {
    sessionStorage.removeItem(KEY_NAME);
    setKeyStatus("Key forgotten. Enter a key to continue.", "");
    $("key-input").focus();
  }

  // --- tabs -----------------------------------------------------------------------------------

  var VIEWS = ["ask", "graph", "documents"];

  function currentView() {
    var selected = document.querySelector('[role="tab"][aria-selected="true"]');
    return selected ? selected.getAttribute("data-view") : "ask";
  }

  function showView(name, focusTab) {
    if (VIEWS.indexOf(name) < 0) { name = "ask"; }
    VIEWS.forEach(function (view) {
      var tab = $("tab-" + view);
      var active = view === name;
      tab.setAttribute("aria-selected", active ? "true" : "false");
      tab.tabIndex = active ? 0 : -1;
      $("view-" + view).hidden = !active;
      if (active && focusTab) { tab.focus(); }
    });
    if (location.hash.split("/")[0] !== "#" + name) { history.replaceState(null, "", "#" + name); }
    if (name === "documents" && getKey()) { loadDocuments(false); }
    if (name === "graph" && state.cy) { state.cy.resize(); fitGraph(); }
  }

  function onTabKey(event) {
    var index = VIEWS.indexOf(event.target.getAttribute("data-view"));
    if (event.key === "ArrowRight") { showView(VIEWS[(index + 1) % VIEWS.length], true); event.preventDefault(); }
    if (event.key === "ArrowLeft") { showView(VIEWS[(index + VIEWS.length - 1) % VIEWS.length], true); event.preventDefault(); }
  }

  // --- ask --------------------------------------------------------------------------------------

  // The answer's Markdown, a safe subset: paragraphs, headings, bold and italic, inline and fenced
  // code, bullet and numbered lists. Built node by node with text only: no model text is ever parsed
  // as HTML. A link opens only with an http(s) address (apart from the console); any other is text.
  var INLINE = /`([^`\n]+)`|\*\*([^*\n](?:[^\n]*?[^*\n])?)\*\*|__([^_\n](?:[^\n]*?[^_\n])?)__|\[([^\]\n]+)\]\(([^)\s]+)\)|\[(\d+)\]|\*([^*\s](?:[^*\n]*[^*\s])?)\*|(?<![\w])_([^_\s](?:[^_\n]*[^_\s])?)_(?![\w])/g;

  function renderInline(text, parent) {
    var pattern = new RegExp(INLINE.source, "g");
    var last = 0;
    var match;
    while ((match = pattern.exec(text)) !== null) {
      if (match.index > last) { parent.appendChild(document.createTextNode(text.slice(last, match.index))); }
      if (match[1] !== undefined) { parent.appendChild(el("code", { text: match[1] })); }
      else if (match[2] !== undefined || match[3] !== undefined) {
        var strong = el("strong");
        renderInline(match[2] !== undefined ? match[2] : match[3], strong);
        parent.appendChild(strong);
      } else if (match[4] !== undefined) {
        if (/^https?:\/\//i.test(match[5])) {
          var link = el("a", { href: match[5], rel: "noopener noreferrer", target: "_blank" });
          renderInline(match[4], link);
          parent.appendChild(link);
        } else {
          renderInline(match[4], parent);  // not a web address: its words, then the address as text
          parent.appendChild(document.createTextNode(" (" + match[5] + ")"));
        }
      } else if (match[6] !== undefined) { parent.appendChild(citeButton(Number(match[6]))); }
      else {
        var em = el("em");
        renderInline(match[7] !== undefined ? match[7] : match[8], em);
        parent.appendChild(em);
      }
      last = pattern.lastIndex;
    }
    if (last < text.length) { parent.appendChild(document.createTextNode(text.slice(last))); }
  }

  function markdownBlocks(source) {
    // Lines to blocks: {type: "p"|"h"|"ul"|"ol"|"code", ...}. A fence still open (mid-stream) runs to the end.
    var lines = source.split("\n");
    var blocks = [];
    var current = null;
    for (var i = 0; i < lines.length; i += 1) {
      var line = lines[i];
      var fence = /^\s*(```|~~~)/.exec(line);
      if (fence) {
        var code = [];
        i += 1;
        while (i < lines.length && lines[i].trim().indexOf(fence[1]) !== 0) { code.push(lines[i]); i += 1; }
        blocks.push({ type: "code", text: code.join("\n") });
        current = null;
        continue;
      }
      if (!line.trim()) { current = null; continue; }
      var heading = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
      if (heading) { blocks.push({ type: "h", level: heading[1].length, text: heading[2] }); current = null; continue; }
      var bullet = /^\s*[-*+]\s+(.*)$/.exec(line);
      var number = /^\s*(\d{1,9})[.)]\s+(.*)$/.exec(line);
      if (bullet || number) {
        var type = bullet ? "ul" : "ol";
        if (!current || current.type !== type) {
          current = { type: type, items: [], start: number ? Number(number[1]) : 1 };
          blocks.push(current);
        }
        current.items.push(bullet ? bullet[1] : number[2]);
        continue;
      }
      if (current && (current.type === "ul" || current.type === "ol") && /^\s+/.test(line)) {
        current.items[current.items.length - 1] += "\n" + line.trim();  // an item's next line
        continue;
      }
      if (!current || current.type !== "p") { current = { type: "p", lines: [] }; blocks.push(current); }
      current.lines.push(line);
    }
    return blocks;
  }

  function renderAnswer() {
    var box = $("answer");
    clear(box);
    markdownBlocks(state.answerText).forEach(function (block) {
      if (block.type === "code") {
        box.appendChild(el("pre", {}, [el("code", { text: block.text })]));
      } else if (block.type === "h") {
        var heading = el("h" + Math.min(block.level + 2, 6), { className: "answer-heading" });  // under the panel's h2
        renderInline(block.text, heading);
        box.appendChild(heading);
      } else if (block.type === "ul" || block.type === "ol") {
        var list = el(block.type, { start: block.type === "ol" && block.start !== 1 ? String(block.start) : null });
        block.items.forEach(function (item) {
          var li = el("li");
          renderInline(item, li);
          list.appendChild(li);
        });
        box.appendChild(list);
      } else {
        var p = el("p");
        renderInline(block.lines.join("\n"), p);
        box.appendChild(p);
      }
    });
  }

  function citeButton(n) {
    return el("button", {
      type: "button", className: "cite", "data-n": String(n), text: "[" + n + "]",
      "aria-label": "Open source " + n, onclick: function () { openCitation(n); },
    });
  }

  function openCitation(n) {
    var panel = $("passage");
    clear(panel);
    var citation = state.citations[n];
    if (!citation) {
      panel.appendChild(hint($("answer").classList.contains("complete")
        ? "The answer cites [" + n + "], but no source [" + n + "] was given to the model: this marker points at nothing."
        : "Source [" + n + "] is not known yet: the sources arrive when the answer is complete."));
      panel.focus();
      return;
    }
    panel.appendChild(el("p", { className: "passage-head" }, [
      el("strong", { text: "[" + n + "] " }), el("span", { className: "doc", text: citation.doc_id || "(no document)" }),
    ]));
    var facts = el("dl", { className: "props" }, [
      el("dt", { text: "Document" }), el("dd", { text: citation.doc_id || "" }),
      el("dt", { text: "Chunk" }), el("dd", { className: "chunk", text: citation.chunk_id || "" }),
    ]);
    if (citation.source) { facts.appendChild(el("dt", { text: "Source" })); facts.appendChild(el("dd", { text: citation.source })); }
    panel.appendChild(facts);
    panel.appendChild(el("blockquote", { className: "passage-text", text: citation.text || "" }));
    document.querySelectorAll(".cite.active").forEach(function (b) { b.classList.remove("active"); });
    document.querySelectorAll('.cite[data-n="' + n + '"]').forEach(function (b) { b.classList.add("active"); });
    panel.focus();
  }

  function renderCitations(citations) {
    var list = $("citations");
    clear(list);
    state.citations = {};
    (citations || []).forEach(function (citation) {
      state.citations[citation.n] = citation;
      list.appendChild(el("li", {}, [
        el("button", {
          type: "button", className: "link", text: "[" + citation.n + "] " + (citation.doc_id || "") + " · " + (citation.chunk_id || ""),
          onclick: function () { openCitation(citation.n); },
        }),
      ]));
    });
    if (!citations || !citations.length) { list.appendChild(el("li", { className: "hint", text: "No sources cited." })); }
  }

  function renderMeta(done) {
    var parts = [];
    var timings = done.timings_ms || {};
    Object.keys(timings).forEach(function (stage) { parts.push(stage + " " + Math.round(timings[stage]) + " ms"); });
    if (done.model) { parts.push("model " + done.model); }
    var meta = $("answer-meta");
    clear(meta);
    meta.appendChild(el("span", { className: "timings", text: parts.join(" · ") }));
    if (done.degraded && done.degraded.length) {
      meta.appendChild(el("span", { className: "degraded", title: done.degraded.join("\n"), text: " · degraded: " + done.degraded.join("; ") }));
    }
  }

  function factLines(subgraph) {
    var names = {};
    (subgraph.nodes || []).forEach(function (node) { names[node.id] = (node.props && node.props.name) || node.id; });
    return (subgraph.edges || []).map(function (edge) {
      return (names[edge.src] || edge.src) + " " + edge.type + " " + (names[edge.dst] || edge.dst);
    });
  }

  function renderFacts(subgraph) {
    // The graph facts the answer was given: the stream's last event carries them (no second retrieval).
    var list = $("facts");
    clear(list);
    var lines = factLines(subgraph || {});
    lines.forEach(function (line) { list.appendChild(el("li", { text: line })); });
    if (!lines.length) { list.appendChild(el("li", { className: "hint", text: "No graph facts for this question." })); }
  }

  async function ask(event) {
    if (event) { event.preventDefault(); }
    var query = $("question").value.trim();
    if (!query) { return; }
    // The newest question wins: an answer still streaming is stopped, and writes nothing more.
    if (state.asking) { state.asking.abort(); }
    var asking = new AbortController();
    state.asking = asking;
    showError("");
    state.answerText = "";
    state.deltas = 0;
    state.citations = {};
    var box = $("answer");
    box.classList.remove("complete");
    clear(box);
    box.appendChild(hint("Retrieving passages…"));
    box.setAttribute("aria-busy", "true");
    clear($("citations"));
    clear($("answer-meta"));
    clear($("passage"));
    $("passage").appendChild(hint("Select a [n] marker to read the passage it cites."));
    var facts = $("facts");
    clear(facts);
    facts.appendChild(el("li", { className: "hint", text: "They arrive with the answer." }));
    try {
      var response = await api("answer", { body: { query: query, stream: true }, raw: true, signal: asking.signal });
      await readEvents(response, asking);
    } catch (failure) {
      if (asking.signal.aborted) { return; }  // a newer question replaced this one
      clear(box);
      box.appendChild(hint("No answer."));
      showError(describe(failure));
    } finally {
      if (state.asking === asking) {
        state.asking = null;
        box.setAttribute("aria-busy", "false");
      }
    }
  }

  async function readEvents(response, asking) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder("utf-8");  // stream mode: a character split across chunks stays whole
    var buffer = "";
    var finished = false;
    for (;;) {
      var part = await reader.read();
      if (asking.signal.aborted) { reader.cancel(); return; }
      if (part.done) { break; }
      buffer += decoder.decode(part.value, { stream: true });
      var boundary;
      while ((boundary = buffer.indexOf("\n\n")) >= 0) {
        var block = buffer.slice(0, boundary);
        buffer = buffer.slice(boundary + 2);
        if (handleEvent(block)) { finished = true; }
      }
    }
    buffer += decoder.decode();
    if (buffer.trim() && handleEvent(buffer)) { finished = true; }
    if (!finished) { showError("The answer stream ended before it was complete."); }
  }

  function handleEvent(block) {
    var data = block.split("\n").filter(function (line) { return line.indexOf("data:") === 0; })
      .map(function (line) { return line.slice(5).replace(/^ /, ""); }).join("\n");
    if (!data) { return false; }
    var payload;
    try { payload = JSON.parse(data); } catch (ignored) { return false; }
    if (typeof payload.delta === "string") {
      state.answerText += payload.delta;
      state.deltas += 1;
      renderAnswer();
      $("answer").setAttribute("data-deltas", String(state.deltas));
      return false;
    }
    if (payload.error) {
      showError((payload.message || payload.error) + "");
      return true;
    }
    if (payload.done) {
      if (!state.answerText) { state.answerText = payload.answer || ""; renderAnswer(); }
      renderCitations(payload.citations);
      renderFacts(payload.subgraph);
      renderMeta(payload);
      $("answer").classList.add("complete");
      return true;
    }
    return false;
  }

  function onQuestionKey(event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { ask(event); }
  }

  // --- graph ------------------------------------------------------------------------------------

  async function searchEntities(event) {
    event.preventDefault();
    var q = $("entity-query").value.trim();
    if (!q) { return; }
    showError("");
    var list = $("entities");
    clear(list);
    list.appendChild(el("li", { className: "hint", text: "Searching…" }));
    // The last search wins: an earlier one answering late is dropped (its list and its entity alike).
    var ticket = (state.searchTicket || 0) + 1;
    state.searchTicket = ticket;
    try {
      var result = await api("graph/entities?q=" + encodeURIComponent(q));
      if (ticket !== state.searchTicket) { return; }
      clear(list);
      if (!result.entities.length) {
        list.appendChild(el("li", { className: "hint", text: "No entity is named in “" + q + "”. Try its full name or an alias." }));
        return;
      }
      result.entities.forEach(function (entity) {
        list.appendChild(el("li", {}, [el("button", {
          type: "button", className: "entity", "data-id": entity.id,
          text: entity.name + " (" + entity.type + ")", onclick: function () { loadNeighbourhood(entity.id); },
        })]));
      });
      if (result.entities.length === 1) { loadNeighbourhood(result.entities[0].id); }
    } catch (failure) {
      if (ticket !== state.searchTicket) { return; }
      clear(list);
      showError(describe(failure));
    }
  }

  function nodeName(node) { return (node.props && node.props.name) || node.id; }

  async function loadNeighbourhood(id) {
    showError("");
    var hops = $("hops").value;
    // The last entity asked for is drawn: an earlier request answering late is dropped.
    var ticket = (state.neighbourhoodTicket || 0) + 1;
    state.neighbourhoodTicket = ticket;
    try {
      var result = await api("graph/neighbourhood?id=" + encodeURIComponent(id) + "&hops=" + encodeURIComponent(hops));
      if (ticket !== state.neighbourhoodTicket) { return; }
      state.graph = result;
      drawGraph(result);
      listEdges(result);
      showNode(result.center);
      var survivor = result.nodes.find(function (n) { return n.id === result.center; }) || { id: result.center };
      // An id a write-time merge absorbed opens the entity that absorbed it: say so. And what is not drawn.
      var notes = [];
      if (result.requested && result.requested !== result.center) {
        notes.push("“" + result.requested + "” was merged into " + nodeName(survivor) + " (" + result.center + "): showing that entity.");
      }
      notes = notes.concat(limitNotes(result));
      if (result.degraded && result.degraded.length) { notes.push("Degraded: " + result.degraded.join("; ") + "."); }
      $("graph-note").textContent = notes.join(" ");
      history.replaceState(null, "", "#graph/" + encodeURIComponent(result.center));  // a link to this entity
    } catch (failure) {
      if (ticket !== state.neighbourhoodTicket) { return; }
      if (failure instanceof ApiFailure && failure.status === 404) { clearGraph(); }  // not the last entity under this one's name
      showError(describe(failure));
    }
  }

  function clearGraph() {
    if (state.cy) { state.cy.destroy(); state.cy = null; }
    state.graph = null;
    var container = $("graph");
    clear(container);
    container.removeAttribute("data-nodes");
    container.removeAttribute("data-edges");
    $("graph-heading").textContent = "Neighbourhood";
    $("graph-note").textContent = "";
    clear($("edges"));
    $("edges").appendChild(el("li", { className: "hint", text: "Search an entity, then pick it." }));
    clear($("details"));
    $("details").appendChild(hint("Select a node or an edge for its properties and the passages it came from."));
  }

  function limitNotes(result) {
    // The gateway draws at most `fan_out` neighbours of an entity and `facts` facts: where one is reached, say
    // that more may exist rather than let a hub with 400 parts look as if it had 25.
    var limits = result.limits || {};
    var notes = [];
    if (limits.facts && result.edges.length >= limits.facts) {
      notes.push("Only the first " + limits.facts + " facts are drawn: there may be more.");
    }
    if (limits.fan_out) {
      var degree = {};
      result.edges.forEach(function (edge) {
        degree[edge.src] = (degree[edge.src] || 0) + 1;
        degree[edge.dst] = (degree[edge.dst] || 0) + 1;
      });
      var full = result.nodes.filter(function (node) { return (degree[node.id] || 0) >= limits.fan_out; }).map(nodeName);
      if (full.length) {
        notes.push("At most " + limits.fan_out + " neighbours of an entity are drawn: " + full.slice(0, 3).join(", ") +
          (full.length > 3 ? " and " + (full.length - 3) + " more" : "") + " may have more than shown.");
      }
    }
    return notes;
  }

  function distances(result) {
    var adjacent = {};
    result.edges.forEach(function (edge) {
      (adjacent[edge.src] = adjacent[edge.src] || []).push(edge.dst);
      (adjacent[edge.dst] = adjacent[edge.dst] || []).push(edge.src);
    });
    var distance = {};
    distance[result.center] = 0;
    var queue = [result.center];
    while (queue.length) {
      var id = queue.shift();
      (adjacent[id] || []).forEach(function (next) {
        if (!(next in distance)) { distance[next] = distance[id] + 1; queue.push(next); }
      });
    }
    return distance;
  }

  function drawGraph(result) {
    var container = $("graph");
    $("graph-heading").textContent = "Neighbourhood of " + nodeName(result.nodes.find(function (n) { return n.id === result.center; }) || { id: result.center });
    if (state.cy) { state.cy.destroy(); state.cy = null; }
    if (typeof window.cytoscape !== "function") {
      clear(container);
      container.appendChild(hint("The graph drawing library did not load; the facts are listed below."));
      return;
    }
    var distance = distances(result);
    var elements = result.nodes.map(function (node) {
      return { group: "nodes", data: { id: node.id, label: nodeName(node), type: node.type, level: 3 - Math.min(distance[node.id] === undefined ? 2 : distance[node.id], 2) }, classes: node.id === result.center ? "center" : "" };
    });
    result.edges.forEach(function (edge, index) {
      elements.push({ group: "edges", data: { id: "e" + index, source: edge.src, target: edge.dst, label: edge.type, index: index } });
    });
    state.cy = window.cytoscape({
      container: container,
      elements: elements,
      wheelSensitivity: 0.3,
      style: [
        { selector: "node", style: { "label": "data(label)", "font-size": 11, "text-valign": "bottom", "text-margin-y": 4, "background-color": "#3b6ea5", "color": "#1d2733", "width": 18, "height": 18, "text-wrap": "ellipsis", "text-max-width": 120 } },
        { selector: "node.center", style: { "background-color": "#c2571a", "width": 26, "height": 26, "font-weight": "bold" } },
        { selector: "node:selected", style: { "border-width": 3, "border-color": "#111" } },
        { selector: "edge", style: { "label": "data(label)", "font-size": 9, "curve-style": "bezier", "target-arrow-shape": "triangle", "width": 1.5, "line-color": "#9aa7b4", "target-arrow-color": "#9aa7b4", "text-rotation": "autorotate", "color": "#4a5560", "text-background-color": "#fff", "text-background-opacity": 0.8 } },
        { selector: "edge:selected", style: { "line-color": "#c2571a", "target-arrow-color": "#c2571a", "width": 3 } },
      ],
      layout: { name: "concentric", concentric: function (node) { return node.data("level"); }, levelWidth: function () { return 1; }, minNodeSpacing: 70, spacingFactor: 1.2, animate: false },
    });
    fitGraph();
    state.cy.on("tap", "node", function (event) { showNode(event.target.id(), true); });
    state.cy.on("tap", "edge", function (event) { showEdge(event.target.data("index"), true); });
    container.setAttribute("data-nodes", String(result.nodes.length));
    container.setAttribute("data-edges", String(result.edges.length));
  }

  function fitGraph() {
    state.cy.fit(undefined, 30);
    if (state.cy.zoom() > 1.1) { state.cy.zoom(1.1); state.cy.center(); }  // a small neighbourhood stays readable
  }

  function listEdges(result) {
    var list = $("edges");
    clear(list);
    var byId = {};
    result.nodes.forEach(function (node) { byId[node.id] = node; });
    result.edges.forEach(function (edge, index) {
      list.appendChild(el("li", { className: "edge" }, [
        el("button", { type: "button", className: "link node-link", text: nodeName(byId[edge.src] || { id: edge.src }), onclick: function () { showNode(edge.src, true); } }),
        " ",
        el("button", { type: "button", className: "link rel", text: edge.type, "aria-label": "Relation " + edge.type + ": its sources", onclick: function () { showEdge(index, true); } }),
        " ",
        el("button", { type: "button", className: "link node-link", text: nodeName(byId[edge.dst] || { id: edge.dst }), onclick: function () { showNode(edge.dst, true); } }),
      ]));
    });
    if (!result.edges.length) { list.appendChild(el("li", { className: "hint", text: "This entity has no facts yet." })); }
  }

  function propsList(props) {
    var list = el("dl", { className: "props" });
    Object.keys(props || {}).sort().forEach(function (key) {
      if (key === "sources") { return; }
      var value = props[key];
      list.appendChild(el("dt", { text: key }));
      list.appendChild(el("dd", { text: typeof value === "string" ? value : JSON.stringify(value) }));
    });
    return list;
  }

  function passagesList(sources) {
    var wrap = el("div", { className: "sources" });
    wrap.appendChild(el("h3", { text: "Source passages" }));
    if (!sources || !sources.length) { wrap.appendChild(hint("No source passages recorded.")); return wrap; }
    var passages = (state.graph && state.graph.passages) || {};
    sources.forEach(function (chunkId) {
      var passage = passages[chunkId];
      var item = el("div", { className: "source" }, [
        el("p", { className: "passage-head" }, [el("span", { className: "doc", text: passage ? passage.doc_id : "" }), " ", el("span", { className: "chunk", text: chunkId })]),
      ]);
      item.appendChild(passage ? el("blockquote", { className: "passage-text", text: passage.text || "" }) : hint("(passage not found in the index)"));
      wrap.appendChild(item);
    });
    return wrap;
  }

  function reveal(details) {
    // What was selected is shown where the eye and the keyboard are: on a phone the panel is below the facts.
    details.focus({ preventScroll: true });
    var box = details.getBoundingClientRect();
    if (box.top < 0 || box.top > window.innerHeight - 40) { details.scrollIntoView({ block: "start" }); }
  }

  function showNode(id, selected) {
    if (!state.graph) { return; }
    var node = state.graph.nodes.find(function (n) { return n.id === id; });
    if (!node) { return; }
    var details = $("details");
    clear(details);
    details.appendChild(el("h3", { className: "subject", text: nodeName(node) }));
    details.appendChild(el("p", { className: "meta", text: node.type + " · " + node.id }));
    details.appendChild(propsList(node.props));
    details.appendChild(passagesList(node.props && node.props.sources));
    if (id !== state.graph.center) {
      details.appendChild(el("button", { type: "button", text: "Centre the graph on " + nodeName(node), onclick: function () { loadNeighbourhood(id); } }));
    }
    if (state.cy) { state.cy.$(":selected").unselect(); state.cy.getElementById(id).select(); }
    if (selected) { reveal(details); }
  }

  function showEdge(index, selected) {
    if (!state.graph) { return; }
    var edge = state.graph.edges[index];
    var byId = {};
    state.graph.nodes.forEach(function (node) { byId[node.id] = node; });
    var details = $("details");
    clear(details);
    details.appendChild(el("h3", { className: "subject", text: nodeName(byId[edge.src] || { id: edge.src }) + " " + edge.type + " " + nodeName(byId[edge.dst] || { id: edge.dst }) }));
    details.appendChild(el("p", { className: "meta", text: "relation " + edge.type }));
    details.appendChild(propsList(edge.props));
    details.appendChild(passagesList(edge.props && edge.props.sources));
    if (state.cy) { state.cy.$(":selected").unselect(); state.cy.getElementById("e" + index).select(); }
    if (selected) { reveal(details); }
  }

  // --- documents --------------------------------------------------------------------------------

  function extractionNote(doc) {
    // Where extraction stands: a paused budget or a rate limit says so here, with the chunks still to do.
    var parts = [];
    if (doc.extraction) { parts.push("extraction: " + doc.extraction); }
    if (doc.chunks_pending) { parts.push(doc.chunks_pending + " chunks pending"); }
    return parts.join(", ");
  }

  function reextractNote(run) {
    // The last re-extraction: where it stands (chunks done of total, tokens), or its error.
    if (!run || !run.state) { return ""; }
    var chunks = " (" + (run.chunks_done || 0) + " of " + (run.chunks || 0) + " chunks, " + (run.tokens || 0) + " tokens)";
    if (run.state === "done") { return "re-extracted" + chunks; }
    if (run.state === "incomplete") { return "re-extraction incomplete" + chunks + ": re-extract again to continue"; }
    return "re-extraction " + run.state + chunks + (run.error ? ": " + run.error : "");
  }

  function docPath(docId) {
    // The whole id in one path segment ("/" as %2F): a ".." in an id ("x/../../documents/other.md") must not
    // lead the request to another document or route. "." and ".." alone cannot be written in a URL at all.
    if (docId === "." || docId === "..") {
      throw new ApiFailure(0, "unaddressable", "The document id “" + docId + "” cannot be written in a URL: use the API for it.");
    }
    return "documents/" + encodeURIComponent(docId);
  }

  function renderBudget(budget) {
    var line = $("budget");
    line.className = "meta budget";
    if (!budget) { line.textContent = ""; return; }
    if (budget.limit === null || budget.limit === undefined) {
      line.textContent = "Extraction budget: no limit (" + budget.used + " tokens spent).";
      return;
    }
    line.textContent = "Extraction budget: " + budget.used + " of " + budget.limit + " tokens used, " + budget.remaining + " left.";
    if (!budget.remaining) { line.className = "meta budget bad"; line.textContent += " Re-extraction waits until it is raised."; }
  }

  function documentRow(doc) {
    var error = doc.error || "";
    return el("tr", { "data-doc": doc.doc_id }, [
      el("th", { scope: "row", className: "doc", text: doc.doc_id }),
      el("td", {}, [
        el("span", { className: "state state-" + String(doc.state).replace(/[^a-z_]/gi, ""), text: doc.state || "" }),
        el("span", { className: "extraction", text: extractionNote(doc) }),
      ]),
      el("td", { className: "num", text: doc.chunks === undefined ? "" : String(doc.chunks) }),
      el("td", { className: "num", text: doc.facts === undefined ? "" : String(doc.facts) }),
      el("td", { className: "num", text: doc.tokens === undefined ? "" : String(doc.tokens) }),
      el("td", { className: "err", text: error, title: error || null }),
      el("td", { text: (doc.updated_at || "").replace("T", " ").replace(/\.\d+Z$/, "Z") }),
      el("td", { className: "actions" }, [
        el("button", { type: "button", className: "small reextract", text: "Re-extract", "aria-label": "Re-extract " + doc.doc_id, onclick: function () { confirmReextract(doc); } }),
        el("button", { type: "button", className: "danger small", text: "Delete", "aria-label": "Delete " + doc.doc_id, onclick: function () { confirmDelete(doc.doc_id); } }),
      ]),
    ]);
  }

  function rowOf(docId) {
    var found = null;
    document.querySelectorAll("#documents-body tr[data-doc]").forEach(function (row) { if (row.getAttribute("data-doc") === docId) { found = row; } });
    return found;
  }

  function showRunNote(docId, text, kind) {
    var row = rowOf(docId);
    if (!row) { return; }
    var note = row.querySelector(".reextract-progress");
    if (!note) { note = el("span", { className: "reextract-progress", role: "status" }); row.children[1].appendChild(note); }
    note.className = "reextract-progress" + (kind ? " " + kind : "");
    note.textContent = text;
  }

  async function loadDocuments(more) {
    var body = $("documents-body");
    showError("");
    // Drawn again (a refresh, after a delete or a re-extraction): as many rows as were shown, not the first page only.
    var limit = more ? 50 : Math.min(1000, Math.max(50, documentRows().length));
    if (!more) {
      clear(body);
      body.appendChild(el("tr", {}, [el("td", { colspan: "8", className: "hint", text: "Loading…" })]));
      state.documentsCursor = null;
    }
    var path = "documents?limit=" + limit + (more && state.documentsCursor ? "&cursor=" + encodeURIComponent(state.documentsCursor) : "");
    try {
      var page = await api(path);
      if (!more) { clear(body); }
      page.documents.forEach(function (doc) {
        body.appendChild(documentRow(doc));
        var note = reextractNote(doc.reextract);
        if (note) { showRunNote(doc.doc_id, note, doc.reextract.state === "done" ? "done" : (doc.reextract.state === "failed" ? "bad" : "")); }
      });
      renderBudget(page.budget);
      if (!more && !page.documents.length) {
        body.appendChild(el("tr", {}, [el("td", { colspan: "8", className: "hint", text: "No documents yet for this key's tenant." })]));
      }
      state.documentsCursor = page.next_cursor || null;
      $("documents-more").hidden = !state.documentsCursor;
      $("documents").setAttribute("data-loaded", "true");
    } catch (failure) {
      clear(body);
      var message = failure instanceof ApiFailure && failure.status === 404
        ? "This deployment has no document status yet (GET /documents answered 404)."
        : describe(failure);
      body.appendChild(el("tr", {}, [el("td", { colspan: "8", className: "hint", text: message })]));
      showError(message);
    }
  }

  function askConfirmation(docId, text, okText, danger, action) {
    var dialog = $("confirm");
    $("confirm-text").textContent = text;
    var ok = $("confirm-ok");
    ok.textContent = okText;
    ok.className = danger ? "danger" : "";
    dialog.setAttribute("data-doc", docId);
    state.confirmAction = action;
    dialog.showModal();
    $("confirm-cancel").focus();
  }

  function confirmed() {
    var action = state.confirmAction;
    state.confirmAction = null;
    $("confirm").close();
    if (action) { action(); }
  }

  function confirmDelete(docId) {
    askConfirmation(docId, "Delete “" + docId + "”? Its passages and the graph facts extracted from it are removed. This cannot be undone.",
      "Delete", true, function () { deleteConfirmed(docId); });
  }

  function confirmReextract(doc) {
    var supplied = doc.extraction === "supplied graph";
    var text = "Re-extract the graph of “" + doc.doc_id + "” with the model, from its " + (doc.chunks || 0) + " stored chunks? " +
      (supplied ? "Its facts come from a graph you supplied: they are replaced by what the model extracts. " : "") +
      "The old facts stay until every chunk is extracted, then are replaced. It spends extraction tokens.";
    askConfirmation(doc.doc_id, text, "Re-extract", supplied, function () { reextract(doc.doc_id, supplied); });
  }

  async function reextract(docId, replaceSupplied) {
    // Call until done: a long document answers 202 with its progress, and the next call continues.
    var button = rowOf(docId) && rowOf(docId).querySelector("button.reextract");
    if (button) { button.disabled = true; button.setAttribute("aria-busy", "true"); }
    showError("");
    showRunNote(docId, "re-extracting…", "");
    var poll = setInterval(function () { watchRun(docId); }, 1500);
    try {
      for (var round = 0; round < 1000; round += 1) {
        var response = await api(docPath(docId) + "/reextract", { body: { replace_supplied: replaceSupplied }, raw: true });
        var result = await response.json();
        renderBudget(result.budget);
        var run = result.document.reextract || {};
        if (result.done) {
          clearInterval(poll);
          await loadDocuments(false);
          showRunNote(docId, reextractNote(run) + ": " + result.document.facts + " facts", "done");
          setKeyStatus("Re-extracted " + docId + " (" + result.document.facts + " facts).", "good");
          return;
        }
        showRunNote(docId, "re-extracting: " + (run.chunks_done || 0) + " of " + (run.chunks || 0) + " chunks…", "");
      }
    } catch (failure) {
      clearInterval(poll);
      await loadDocuments(false);
      showRunNote(docId, "re-extraction stopped: " + describe(failure), "bad");
      showError("Re-extracting " + docId + ": " + describe(failure));
    } finally {
      clearInterval(poll);
      var again = rowOf(docId) && rowOf(docId).querySelector("button.reextract");
      if (again) {
        again.disabled = false;
        again.removeAttribute("aria-busy");
        if (focusLost()) { again.focus(); }  // it was drawn again (and disabled meanwhile): the keyboard stays on it
      }
    }
  }

  async function watchRun(docId) {
    // Progress while a call works: the status records each chunk as it is extracted.
    try {
      var found = await api(docPath(docId));
      var run = found.document.reextract;
      if (run && run.state === "running") { showRunNote(docId, "re-extracting: " + (run.chunks_done || 0) + " of " + (run.chunks || 0) + " chunks…", ""); }
    } catch (ignored) { /* progress is a courtesy: the call itself reports failures */ }
  }

  function documentRows() { return Array.prototype.slice.call(document.querySelectorAll("#documents-body tr[data-doc]")); }

  function focusLost() { return !document.activeElement || document.activeElement === document.body; }

  async function deleteConfirmed(docId) {
    var position = documentRows().indexOf(rowOf(docId));
    try {
      var result = await api(docPath(docId), { method: "DELETE" });
      setKeyStatus("Deleted " + docId + " (" + result.chunks_deleted + " chunks).", "good");
      await loadDocuments(false);
      // The table was drawn again without the button that had the focus: keep the keyboard in the table, on
      // the row that took the deleted one's place (or the last), not back at the top of the page.
      if (focusLost()) {
        var rows = documentRows();
        var row = rows[Math.min(Math.max(position, 0), rows.length - 1)];
        (row ? row.querySelector("button.danger") : $("documents-refresh")).focus();
      }
    } catch (failure) {
      showError(describe(failure));
    }
  }

  // --- links: #ask, #graph, #graph/<entity id>, #documents ---------------------------------------

  function routeFromHash() {
    var hash = location.hash.replace(/^#/, "");
    var entity = /^graph\/(.+)$/.exec(hash);
    if (!entity) { showView(hash || "ask", false); return; }
    showView("graph", false);
    var id;
    try { id = decodeURIComponent(entity[1]); } catch (ignored) { return; }
    history.replaceState(null, "", "#graph/" + encodeURIComponent(id));
    if (getKey()) { loadNeighbourhood(id); } else { state.pendingEntity = id; }
  }

  // --- start ------------------------------------------------------------------------------------

  function start() {
    $("key-form").addEventListener("submit", useKey);
    $("key-forget").addEventListener("click", forgetKey);
    document.querySelectorAll('[role="tab"]').forEach(function (tab) {
      tab.addEventListener("click", function () { showView(tab.getAttribute("data-view"), false); });
      tab.addEventListener("keydown", onTabKey);
    });
    $("ask-form").addEventListener("submit", ask);
    $("question").addEventListener("keydown", onQuestionKey);
    $("entity-form").addEventListener("submit", searchEntities);
    $("hops").addEventListener("change", function () { if (state.graph) { loadNeighbourhood(state.graph.center); } });
    $("documents-refresh").addEventListener("click", function () { loadDocuments(false); });
    $("documents-more").addEventListener("click", function () { loadDocuments(true); });
    $("confirm-cancel").addEventListener("click", function () { $("confirm").close(); });
    $("confirm-ok").addEventListener("click", confirmed);
    $("confirm").addEventListener("close", function () { state.confirmAction = null; });
    if (getKey()) { setKeyStatus("Using the key entered earlier in this tab.", "good"); }
    window.addEventListener("hashchange", routeFromHash);
    routeFromHash();
    window.__consoleCy = function () { return state.cy; };  // the drawn graph, for tests and the devtools
    document.body.setAttribute("data-ready", "true");
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
