/* Eremetic web UI: the launch form, live task list and task page. Plain JavaScript, no
 * dependencies. Every URL starts with the server's url_prefix (body[data-prefix]); values from
 * the server are only ever inserted with textContent. */
(function () {
  "use strict";

  var body = document.body;
  var prefix = body.getAttribute("data-prefix") || "";
  var TERMINAL = ["TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR"];

  function $(selector, root) { return (root || document).querySelector(selector); }
  function $all(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }
  function isTerminal(state) { return TERMINAL.indexOf(state) >= 0; }

  function group(state) {
    if (state === "TASK_QUEUED") return "queued";
    if (!state || isTerminal(state)) return "terminated";
    return "active";
  }

  /* Same format as src/http/ui/format.rs. */
  function utc(seconds) {
    return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
  }

  function duration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var d = Math.floor(seconds / 86400), h = Math.floor(seconds / 3600) % 24;
    var m = Math.floor(seconds / 60) % 60, s = seconds % 60;
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    if (d > 0) return d + "d " + h + "h";
    if (h > 0) return h + "h " + two(m) + "m";
    if (m > 0) return m + "m " + two(s) + "s";
    return s + "s";
  }

  function now() { return Date.now() / 1000; }

  function taskUrl(id) { return prefix + "/web/task/" + encodeURIComponent(id); }
  function apiTaskUrl(id) { return prefix + "/api/v1/task/" + encodeURIComponent(id); }

  function subscribe(onStatus) {
    if (!window.EventSource) return;
    var source = new EventSource(prefix + "/api/v1/events");
    source.addEventListener("status", function (event) {
      var data;
      try { data = JSON.parse(event.data); } catch (e) { return; }
      onStatus(data);
    });
    // Missed changes: the page's picture may be stale, so rebuild it.
    source.addEventListener("lagged", function () { window.location.reload(); });
  }

  function readError(response) {
    return response.text().then(function (text) {
      try {
        var doc = JSON.parse(text);
        if (typeof doc === "string") return { message: doc };
        return doc || {};
      } catch (e) {
        return { message: text || ("HTTP " + response.status) };
      }
    });
  }

  /* ------------------------------------------------------------------ index: the form */

  function addRow(targetId) {
    var container = document.getElementById(targetId);
    var template = document.getElementById("tpl-" + targetId);
    if (!container || !template) return null;
    var row = template.content.firstElementChild.cloneNode(true);
    container.appendChild(row);
    var first = $("input", row);
    if (first) first.focus();
    return row;
  }

  function clearErrors(form) {
    $all(".field-error", form).forEach(function (el) {
      if (el.hasAttribute("data-dynamic")) el.parentNode.removeChild(el);
      else el.textContent = "";
    });
    $all(".invalid", form).forEach(function (el) { el.classList.remove("invalid"); });
    var general = $("#form-error");
    general.textContent = "";
    general.hidden = true;
  }

  function rowsOf(id) { return $all("#" + id + " .row"); }

  /* Collects the request and remembers which row produced which array index or key, so that
   * errors such as ports[1].container_port or env.KEY land next to their row. */
  function collect(form) {
    var request = {};
    var places = {};
    var value = function (name) { return form.elements[name].value.trim(); };
    ["image", "command", "name", "callback_uri"].forEach(function (name) {
      if (value(name) !== "") request[name] = value(name);
    });
    ["cpu", "mem"].forEach(function (name) {
      var text = value(name);
      if (text === "") return;
      var number = Number(text);
      request[name] = isNaN(number) ? text : number;
    });
    [["env-rows", "env"], ["masked-env-rows", "masked_env"], ["label-rows", "labels"]].forEach(function (pair) {
      rowsOf(pair[0]).forEach(function (row) {
        var key = $(".key", row).value.trim();
        var val = $(".value", row).value;
        if (key === "" && val === "") return;
        request[pair[1]] = request[pair[1]] || {};
        request[pair[1]][key] = val;
        places[pair[1] + "." + key] = row;
      });
    });
    rowsOf("port-rows").forEach(function (row) {
      var port = $(".container-port", row).value.trim();
      if (port === "") return;
      request.ports = request.ports || [];
      places["ports[" + request.ports.length + "]"] = row;
      var number = Number(port);
      request.ports.push({ container_port: isNaN(number) ? port : number, protocol: $(".protocol", row).value });
    });
    rowsOf("volume-rows").forEach(function (row) {
      var host = $(".host-path", row).value.trim();
      var inside = $(".container-path", row).value.trim();
      if (host === "" && inside === "") return;
      request.volumes = request.volumes || [];
      places["volumes[" + request.volumes.length + "]"] = row;
      request.volumes.push({ host_path: host, container_path: inside });
    });
    return { request: request, places: places };
  }

  function showFieldError(form, places, field, reason) {
    var existing = $all(".field-error", form).filter(function (el) {
      return el.getAttribute("data-field") === field && !el.hasAttribute("data-dynamic");
    })[0];
    if (existing) {
      existing.textContent = existing.textContent ? existing.textContent + "; " + reason : reason;
      var input = form.elements[field];
      if (input && input.classList) input.classList.add("invalid");
      return;
    }
    // A nested field: next to its row, else next to its group.
    var element = document.createElement("span");
    element.className = "field-error";
    element.setAttribute("data-field", field);
    element.setAttribute("data-dynamic", "");
    element.textContent = field + ": " + reason;
    var base = field.replace(/\].*$/, "]");
    var row = places[field] || places[base];
    if (row) { row.appendChild(element); return; }
    var top = field.split(/[.\[]/)[0];
    var groupError = $all(".field-error", form).filter(function (el) {
      return el.getAttribute("data-field") === top;
    })[0];
    var anchor = groupError || $("#form-error");
    anchor.parentNode.insertBefore(element, anchor.nextSibling);
  }

  function submitTask(event) {
    event.preventDefault();
    var form = event.target;
    var button = $("#submit-task");
    var result = $("#submit-result");
    clearErrors(form);
    result.hidden = true;
    var collected = collect(form);
    button.disabled = true;
    fetch(prefix + "/api/v1/task", {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(collected.request),
      credentials: "same-origin"
    }).then(function (response) {
      if (response.status === 202) {
        return response.json().then(function (id) {
          result.textContent = "Task accepted: ";
          var link = document.createElement("a");
          link.className = "task-link";
          link.href = taskUrl(id);
          link.textContent = id;
          result.appendChild(link);
          result.hidden = false;
          addTaskById(id, true);
        });
      }
      return readError(response).then(function (doc) {
        var errors = doc.errors || [];
        if (response.status === 400 && errors.length > 0) {
          errors.forEach(function (e) { showFieldError(form, collected.places, e.field, e.reason); });
          return;
        }
        var general = $("#form-error");
        general.textContent = (doc.message || "The task was refused") + (doc.error ? ": " + doc.error : "") +
          " (HTTP " + response.status + ")";
        general.hidden = false;
      });
    }).catch(function (error) {
      var general = $("#form-error");
      general.textContent = "The server could not be reached: " + error;
      general.hidden = false;
    }).then(function () { button.disabled = false; });
  }

  /* ------------------------------------------------------------------ index: the list */

  function filterAccepts(task) {
    var form = $("#filter");
    var groups = form.elements.state.value.split(",");
    var name = form.elements.name.value;
    return groups.indexOf(group(task.state)) >= 0 && (name === "" || name === task.name);
  }

  function rowFor(id) {
    return $all("#tasks tbody tr.task").filter(function (row) {
      return row.getAttribute("data-task-id") === id;
    })[0];
  }

  function cell(className, text) {
    var td = document.createElement("td");
    td.className = className;
    td.textContent = text;
    return td;
  }

  function insertRow(doc) {
    var history = doc.status || [];
    var last = history.length ? history[history.length - 1] : null;
    var state = last ? last.status : "";
    var started = history.filter(function (e) { return e.status === "TASK_RUNNING"; })[0];
    var row = document.createElement("tr");
    row.className = "task changed";
    row.setAttribute("data-task-id", doc.id);
    row.setAttribute("data-submitted", history.length ? String(history[0].time) : "");
    row.setAttribute("data-started", started ? String(started.time) : "");
    row.setAttribute("data-ended", last && isTerminal(state) ? String(last.time) : "");
    var name = cell("name", "");
    var link = document.createElement("a");
    link.className = "task-link";
    link.href = taskUrl(doc.id);
    link.textContent = doc.name;
    name.appendChild(link);
    var stateCell = cell("state", state);
    stateCell.setAttribute("data-state", state);
    row.appendChild(name);
    row.appendChild(stateCell);
    row.appendChild(cell("image", doc.image));
    row.appendChild(cell("age", ""));
    row.appendChild(cell("duration", "—"));
    var empty = $("#tasks tbody tr.empty");
    if (empty) empty.parentNode.removeChild(empty);
    $("#tasks tbody").appendChild(row);
    tick();
  }

  var pending = {};

  function addTaskById(id, always) {
    if (rowFor(id) || pending[id]) return;
    pending[id] = true;
    fetch(apiTaskUrl(id), { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (doc) {
        delete pending[id];
        if (!doc || rowFor(id)) return;
        var history = doc.status || [];
        var state = history.length ? history[history.length - 1].status : "";
        if (always || filterAccepts({ state: state, name: doc.name })) insertRow(doc);
      })
      .catch(function () { delete pending[id]; });
  }

  function onListStatus(event) {
    var row = rowFor(event.task_id);
    if (!row) {
      if (filterAccepts({ state: event.status, name: event.name })) addTaskById(event.task_id, false);
      return;
    }
    // Rows already shown stay, with their new state, even when it leaves the filter.
    var stateCell = $("td.state", row);
    stateCell.textContent = event.status;
    stateCell.setAttribute("data-state", event.status);
    if (event.status === "TASK_RUNNING" && !row.getAttribute("data-started")) {
      row.setAttribute("data-started", String(event.time));
    }
    if (isTerminal(event.status)) row.setAttribute("data-ended", String(event.time));
    row.classList.remove("changed");
    void row.offsetWidth;
    row.classList.add("changed");
    tick();
  }

  function tick() {
    var t = now();
    $all("#tasks tbody tr.task").forEach(function (row) {
      var submitted = row.getAttribute("data-submitted");
      var started = row.getAttribute("data-started");
      var ended = row.getAttribute("data-ended");
      if (submitted) $("td.age", row).textContent = duration(t - Number(submitted));
      $("td.duration", row).textContent = started
        ? duration((ended ? Number(ended) : t) - Number(started)) : "—";
    });
  }

  function initIndex() {
    var form = $("#new-task");
    form.addEventListener("submit", submitTask);
    form.addEventListener("click", function (event) {
      var target = event.target;
      if (target.classList.contains("add-row")) {
        addRow((target.getAttribute("data-target") || "").replace(/^#/, ""));
      } else if (target.classList.contains("remove-row")) {
        var row = target.closest(".row");
        if (row) row.parentNode.removeChild(row);
      }
    });
    var filter = $("#filter");
    filter.elements.state.addEventListener("change", function () { filter.submit(); });
    subscribe(onListStatus);
    window.setInterval(tick, 1000);
  }

  /* ------------------------------------------------------------------ task page */

  function initTask() {
    var id = body.getAttribute("data-task-id");
    var ended = body.getAttribute("data-ended") === "true";
    var actions = $("#actions");
    var actionError = $("#action-error");
    var usageTimer = null;

    function showActionError(text) {
      actionError.textContent = text;
      actionError.hidden = false;
    }

    function button(id, label) {
      var b = document.createElement("button");
      b.type = "button";
      b.id = id;
      b.className = "danger";
      b.textContent = label;
      return b;
    }

    function wire() {
      var kill = $("#kill");
      if (kill) kill.addEventListener("click", function () {
        if (!window.confirm("Kill task " + id + "?")) return;
        kill.disabled = true;
        actionError.hidden = true;
        fetch(apiTaskUrl(id) + "/kill", { method: "POST", credentials: "same-origin" }).then(function (response) {
          if (response.status === 202) return;
          kill.disabled = false;
          return readError(response).then(function (doc) { showActionError(doc.message || doc.error); });
        }).catch(function (error) { kill.disabled = false; showActionError(String(error)); });
      });
      var del = $("#delete");
      if (del) del.addEventListener("click", function () {
        if (!window.confirm("Delete task " + id + "? Its record and history are removed.")) return;
        del.disabled = true;
        actionError.hidden = true;
        fetch(apiTaskUrl(id), { method: "DELETE", credentials: "same-origin" }).then(function (response) {
          if (response.status === 202) { window.location.href = prefix + "/"; return; }
          del.disabled = false;
          return readError(response).then(function (doc) { showActionError(doc.message || doc.error); });
        }).catch(function (error) { del.disabled = false; showActionError(String(error)); });
      });
    }

    function becomeEnded() {
      if (ended) return;
      ended = true;
      var kill = $("#kill");
      if (kill) kill.parentNode.removeChild(kill);
      actions.insertBefore(button("delete", "Delete"), actionError);
      wire();
      stopUsage();
    }

    function refreshUsage() {
      fetch(prefix + "/web/task/" + encodeURIComponent(id) + "/usage", { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (doc) {
          if (!doc || !doc.usage) return;
          var mib = function (b) { return (Math.round(b / 104857.6) / 10) + " MiB"; };
          $("#usage-cpu").textContent = (Math.round(doc.usage.cpu_seconds * 100) / 100) + " s";
          $("#usage-mem").textContent = mib(doc.usage.memory_bytes) + " of " + mib(doc.usage.memory_limit_bytes);
        }).catch(function () {});
    }

    function startUsage() {
      $("#usage").hidden = false;
      if (usageTimer === null) { refreshUsage(); usageTimer = window.setInterval(refreshUsage, 2000); }
    }

    function stopUsage() {
      $("#usage").hidden = true;
      if (usageTimer !== null) { window.clearInterval(usageTimer); usageTimer = null; }
    }

    function follow(stream) {
      var pre = document.getElementById(stream);
      var url = apiTaskUrl(id) + "/" + stream + "?follow=true";
      fetch(url, { credentials: "same-origin" }).then(function (response) {
        if (!response.ok || !response.body) return;
        // The stream starts at the beginning of the output: replace what the server rendered.
        pre.textContent = "";
        var renderer = window.EremeticAnsi.createRenderer(pre);
        var reader = response.body.getReader();
        var decoder = new TextDecoder();
        var pump = function () {
          return reader.read().then(function (chunk) {
            if (chunk.done) { renderer.write(decoder.decode()); return; }
            var atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
            renderer.write(decoder.decode(chunk.value, { stream: true }));
            if (atBottom) pre.scrollTop = pre.scrollHeight;
            return pump();
          });
        };
        return pump();
      }).catch(function () {});
    }

    function onTaskStatus(event) {
      if (event.task_id !== id) return;
      var state = $("#state");
      state.textContent = event.status;
      state.setAttribute("data-state", event.status);
      var item = document.createElement("li");
      item.setAttribute("data-state", event.status);
      var label = document.createElement("span");
      label.className = "state";
      label.setAttribute("data-state", event.status);
      label.textContent = event.status;
      var time = document.createElement("time");
      time.setAttribute("datetime", utc(event.time));
      time.textContent = utc(event.time);
      item.appendChild(label);
      item.appendChild(document.createTextNode(" "));
      item.appendChild(time);
      $("#history").appendChild(item);
      if (event.exit_code !== null && event.exit_code !== undefined) $("#exit-code").textContent = String(event.exit_code);
      if (event.reason) $("#failure-reason").textContent = event.reason;
      if (event.status === "TASK_RUNNING") startUsage();
      if (isTerminal(event.status)) becomeEnded();
    }

    wire();
    subscribe(onTaskStatus);
    if (!ended) {
      follow("stdout");
      follow("stderr");
      if ($("#state").getAttribute("data-state") === "TASK_RUNNING") startUsage();
    }
  }

  var page = body.getAttribute("data-page");
  if (page === "index") initIndex();
  else if (page === "task") initTask();
})();
