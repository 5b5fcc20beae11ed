import Foundation
import TeleportAPI

/// The pages of ``WebRecordingsRoutes``: the recordings list, the player and the audit log, with
/// their scripts (`/web/js/recordings.js`, `player.js`, `audit.js`) and styles (`/web/css/replay.css`,
/// added by the scripts). Data is only ever put in the page with `textContent`.
enum WebReplayPages {
    static func filters(_ id: String, _ fields: [(id: String, label: String, type: String, hint: String)]) -> String {
        var html = "<form id=\"\(id)\" class=\"filters\" role=\"search\">\n"
        for field in fields {
            html += "<label for=\"\(field.id)\">\(field.label)</label>\n"
            html += "<input id=\"\(field.id)\" name=\"\(field.id)\" type=\"\(field.type)\" placeholder=\"\(field.hint)\" autocomplete=\"off\">\n"
        }
        html += "<button id=\"\(id)-apply\" type=\"submit\">Show</button>\n</form>\n"
        return html
    }

    static let pager = "<nav class=\"pager\" aria-label=\"Pages\"><button id=\"prev\" type=\"button\" disabled>Previous</button>"
        + "<span id=\"page-info\" class=\"help\"></span><button id=\"next\" type=\"button\" disabled>Next</button></nav>\n"

    /// `GET /web/recordings`.
    static func recordings(_ info: AuthAPI.WebSessionInfo, clusterName: String) -> String {
        var main = "<h1>Session recordings</h1>\n"
        main += filters(
            "recordings-filter",
            [("from", "From", "date", ""), ("to", "To", "date", ""), ("user", "User", "search", "user name"), ("node", "Server", "search", "server name")])
        main += "<table id=\"recordings\">\n<thead><tr><th scope=\"col\">Started</th><th scope=\"col\">User</th><th scope=\"col\">Login</th>"
        main += "<th scope=\"col\">Server</th><th scope=\"col\">Duration</th><th scope=\"col\"><span class=\"visually-hidden\">Play</span></th></tr></thead>\n"
        main += "<tbody id=\"recordings-body\"></tbody>\n</table>\n"
        main += "<p id=\"recordings-empty\" class=\"help\" hidden>No recordings match.</p>\n" + pager
        return WebUIPages.shell(info, clusterName: clusterName, title: "Recordings", page: "recordings", main: main, scripts: ["/web/js/recordings.js"])
    }

    /// `GET /web/recordings/SID`.
    static func player(_ info: AuthAPI.WebSessionInfo, clusterName: String, sid: String) -> String {
        var main = "<h1>Recording <code id=\"player-sid\">\(HTMLText.escape(sid))</code></h1>\n"
        main += "<p id=\"player-meta\" class=\"help\"></p>\n"
        main += "<div id=\"player\" class=\"player\" data-sid=\"\(HTMLText.escape(sid))\">\n"
        main += "<div id=\"terminal\" class=\"replay-terminal\" aria-label=\"Recorded terminal\"></div>\n"
        main += "<div class=\"controls\" role=\"group\" aria-label=\"Playback\">\n"
        main += "<button id=\"play\" type=\"button\" disabled>Play</button>\n"
        main += "<label for=\"seek\" class=\"visually-hidden\">Position</label>\n"
        main += "<input id=\"seek\" type=\"range\" min=\"0\" max=\"0\" step=\"1\" value=\"0\" disabled>\n"
        main += "<output id=\"time\" for=\"seek\">0:00 / 0:00</output>\n"
        main += "<label for=\"speed\">Speed</label>\n<select id=\"speed\">"
        for speed in ["0.5", "1", "2", "4", "8"] { main += "<option value=\"\(speed)\"\(speed == "1" ? " selected" : "")>×\(speed)</option>" }
        main += "</select>\n<label><input id=\"skip-idle\" type=\"checkbox\" checked> Skip idle time</label>\n"
        main += "</div>\n</div>\n<p><a href=\"/web/recordings\">All recordings</a> · <a id=\"audit-link\" href=\"/web/audit\">This session's audit events</a></p>\n"
        return WebUIPages.shell(
            info, clusterName: clusterName, title: "Recording", page: "recordings", main: main,
            scripts: ["/web/vendor/xterm/xterm.js", "/web/js/player.js"])
    }

    /// `GET /web/audit`.
    static func audit(_ info: AuthAPI.WebSessionInfo, clusterName: String) -> String {
        var main = "<h1>Audit log</h1>\n"
        main += filters(
            "audit-filter",
            [("from", "From", "date", ""), ("to", "To", "date", ""), ("type", "Event type", "search", "session.start,session.end"),
             ("user", "User", "search", "user name"), ("sid", "Session", "search", "session id")])
        main += "<table id=\"events\">\n<thead><tr><th scope=\"col\">Time</th><th scope=\"col\">Event</th><th scope=\"col\">Code</th>"
        main += "<th scope=\"col\">User</th><th scope=\"col\">Details</th></tr></thead>\n<tbody id=\"events-body\"></tbody>\n</table>\n"
        main += "<p id=\"events-empty\" class=\"help\" hidden>No events match.</p>\n" + pager
        return WebUIPages.shell(info, clusterName: clusterName, title: "Audit log", page: "audit", main: main, scripts: ["/web/js/audit.js"])
    }

    static let css = #"""
        .visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
        .player { display: flex; flex-direction: column; gap: 0.75rem; }
        .replay-terminal { background: #111; color: #eee; padding: 6px; border-radius: 6px; min-height: 20rem; overflow: auto; }
        .replay-terminal pre.fallback { margin: 0; font: 14px/1.3 monospace; white-space: pre-wrap; color: #eee; }
        .controls { display: flex; flex-wrap: wrap; align-items: center; gap: 0.6rem; }
        .controls input[type=range] { flex: 1 1 12rem; min-width: 8rem; }
        .controls output { font-variant-numeric: tabular-nums; min-width: 7rem; }
        .controls label { display: inline-flex; align-items: center; gap: 0.35rem; margin: 0; }
        .controls input[type=checkbox] { width: auto; margin: 0; }
        .controls select { width: auto; }
        table#events td:not(.details), table#recordings td { white-space: nowrap; }
        table#events td.details { max-width: 40rem; }
        table#events details pre { white-space: pre-wrap; word-break: break-all; background: #f4f5f7; padding: 0.5rem; border-radius: 4px; margin: 0.3rem 0 0; }
        table#events summary { cursor: pointer; }
        .pager #page-info { margin: 0 0.75rem; }
        @media (max-width: 600px) { .controls output { min-width: 0; } }
        """#

    /// Shared by the three scripts: loads the stylesheet, fetches JSON (errors as sentences), formats.
    static let common = #"""
          function addStyle(href) {
            var link = document.createElement("link"); link.rel = "stylesheet"; link.href = href; document.head.appendChild(link);
          }
          addStyle("/web/css/replay.css");
          function showError(text) {
            var box = document.getElementById("error");
            if (!box) { return; }
            box.textContent = text || ""; box.hidden = !text;
          }
          function getJSON(url) {
            return fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } }).then(function (reply) {
              if (reply.status === 401) { window.location.assign("/web/login"); throw new Error("Your session ended; sign in again."); }
              return reply.json().catch(function () { return {}; }).then(function (body) {
                if (!reply.ok) { throw new Error(body.message || ("The proxy answered HTTP " + reply.status + ".")); }
                return body;
              });
            });
          }
          function cell(row, value, className) {
            var td = document.createElement("td"); td.textContent = value == null ? "" : String(value);
            if (className) { td.className = className; }
            row.appendChild(td); return td;
          }
          function clock(ms) {
            var s = Math.max(0, Math.floor(ms / 1000)), m = Math.floor(s / 60), h = Math.floor(m / 60);
            var two = function (n) { return (n < 10 ? "0" : "") + n; };
            return h > 0 ? h + ":" + two(m % 60) + ":" + two(s % 60) : m + ":" + two(s % 60);
          }
          function formParams(form, names) {
            var params = new URLSearchParams();
            names.forEach(function (name) { var v = form.elements[name].value.trim(); if (v) { params.set(name, v); } });
            return params;
          }
        """#

    static let recordingsJS = "\"use strict\";\n(function () {\n" + common + #"""
          var form = document.getElementById("recordings-filter");
          var body = document.getElementById("recordings-body");
          var prev = document.getElementById("prev"), next = document.getElementById("next");
          var info = document.getElementById("page-info");
          var pageSize = 25, starts = [0];
          function load() {
            var params = formParams(form, ["from", "to", "user", "node"]);
            params.set("start", String(starts[starts.length - 1])); params.set("limit", String(pageSize));
            getJSON("/webapi/recordings?" + params.toString()).then(function (page) {
              showError("");
              while (body.firstChild) { body.removeChild(body.firstChild); }
              page.items.forEach(function (item) {
                var row = document.createElement("tr"); row.className = "recording";
                row.setAttribute("data-sid", item.sid);
                cell(row, new Date(item.start).toLocaleString());
                cell(row, item.user, "user"); cell(row, item.login);
                cell(row, item.server_hostname || item.server_id, "server");
                cell(row, clock(item.duration_ms) + (item.complete ? "" : " (partial)"));
                var td = document.createElement("td"), link = document.createElement("a");
                link.href = "/web/recordings/" + encodeURIComponent(item.sid); link.textContent = "Play";
                link.className = "play-link"; link.setAttribute("aria-label", "Play the recording of " + item.user + " on " + (item.server_hostname || item.server_id));
                td.appendChild(link); row.appendChild(td); body.appendChild(row);
              });
              document.getElementById("recordings-empty").hidden = page.items.length > 0;
              var first = starts[starts.length - 1];
              info.textContent = page.total ? (first + 1) + "–" + (first + page.items.length) + " of " + page.total : "";
              prev.disabled = starts.length < 2;
              next.disabled = page.next_start == null;
              next.dataset.start = page.next_start == null ? "" : String(page.next_start);
            }).catch(function (error) { showError(error.message); });
          }
          form.addEventListener("submit", function (event) { event.preventDefault(); starts = [0]; load(); });
          prev.addEventListener("click", function () { starts.pop(); load(); });
          next.addEventListener("click", function () { starts.push(Number(next.dataset.start)); load(); });
          load();
        })();
        """#

    static let auditJS = "\"use strict\";\n(function () {\n" + common + #"""
          var form = document.getElementById("audit-filter");
          var body = document.getElementById("events-body");
          var prev = document.getElementById("prev"), next = document.getElementById("next");
          var info = document.getElementById("page-info");
          var pageSize = 50, starts = [""];
          var query = new URLSearchParams(window.location.search);
          ["from", "to", "type", "user", "sid"].forEach(function (name) { if (query.get(name)) { form.elements[name].value = query.get(name); } });
          function load() {
            var params = formParams(form, ["from", "to", "type", "user", "sid"]);
            if (starts[starts.length - 1]) { params.set("start", starts[starts.length - 1]); }
            params.set("limit", String(pageSize));
            getJSON("/webapi/audit/events?" + params.toString()).then(function (page) {
              showError("");
              while (body.firstChild) { body.removeChild(body.firstChild); }
              page.events.forEach(function (event) {
                var row = document.createElement("tr"); row.className = "event";
                row.setAttribute("data-event", String(event.event));
                cell(row, event.time ? new Date(event.time).toLocaleString() : "");
                cell(row, event.event, "event-type"); cell(row, event.code);
                cell(row, event.user, "user");
                var td = document.createElement("td"); td.className = "details";
                var details = document.createElement("details"), summary = document.createElement("summary");
                var brief = [];
                ["sid", "login", "server_hostname", "addr.remote", "command", "error"].forEach(function (key) {
                  if (event[key] != null && event[key] !== "") { brief.push(key + "=" + String(event[key])); }
                });
                summary.textContent = brief.join(" ").slice(0, 140) || "JSON";
                var pre = document.createElement("pre"); pre.className = "json";
                pre.textContent = JSON.stringify(event, null, 2);
                details.appendChild(summary); details.appendChild(pre); td.appendChild(details); row.appendChild(td);
                body.appendChild(row);
              });
              document.getElementById("events-empty").hidden = page.events.length > 0;
              info.textContent = page.events.length ? "page " + starts.length : "";
              prev.disabled = starts.length < 2;
              next.disabled = !page.next_key;
              next.dataset.start = page.next_key || "";
            }).catch(function (error) { showError(error.message); });
          }
          form.addEventListener("submit", function (event) { event.preventDefault(); starts = [""]; load(); });
          prev.addEventListener("click", function () { starts.pop(); load(); });
          next.addEventListener("click", function () { starts.push(next.dataset.start); load(); });
          load();
        })();
        """#

    /// The player: replays the frames as `tsh play` does (output bytes at their times, resizes),
    /// `speed` times faster, gaps over a second cut to a second when skipping idle time.
    static let playerJS = "\"use strict\";\n(function () {\n" + common + #"""
          addStyle("/web/vendor/xterm/xterm.css");
          var root = document.getElementById("player"), sid = root.getAttribute("data-sid");
          var playButton = document.getElementById("play"), seek = document.getElementById("seek");
          var timeLabel = document.getElementById("time"), speedSelect = document.getElementById("speed");
          var skipIdle = document.getElementById("skip-idle"), host = document.getElementById("terminal");
          document.getElementById("audit-link").href = "/web/audit?sid=" + encodeURIComponent(sid);
          var frames = [], times = [], duration = 0, position = 0, written = 0, playing = false, last = 0;
          var term = null, fallback = null, fallbackText = "";
          function makeTerminal(cols, rows) {
            if (typeof window.Terminal === "function") {
              try {
                term = new window.Terminal({ cols: cols, rows: rows, convertEol: false, disableStdin: true, scrollback: 5000 });
                term.open(host);
                return;
              } catch (error) { term = null; }
            }
            fallback = document.createElement("pre"); fallback.className = "fallback"; host.appendChild(fallback);
          }
          function strip(text) {
            return text.replace(/\x1b\[[0-9;?]*[ -\/]*[@-~]/g, "").replace(/\x1b\][^\x07\x1b]*(\x07|\x1b\\)/g, "").replace(/\x1b[()][0-9A-Za-z]/g, "")
              .replace(/\x1b./g, "").replace(/\r\n/g, "\n").replace(/\r/g, "");
          }
          function write(text) {
            if (term) { term.write(text); } else { fallbackText += strip(text); fallback.textContent = fallbackText; }
          }
          function reset() {
            if (term) { term.reset(); } else { fallbackText = ""; fallback.textContent = ""; }
            written = 0;
          }
          function resize(spec) {
            var parts = String(spec || "").split(":"), cols = Number(parts[0]), rows = Number(parts[1]);
            if (term && cols > 0 && rows > 0 && cols < 1000 && rows < 1000) { term.resize(cols, rows); }
          }
          function timeline() {
            // Effective times: with "skip idle", a gap over a second counts as one second.
            times = []; var t = 0, previous = 0;
            frames.forEach(function (frame) {
              var gap = frame.ms - previous; previous = frame.ms;
              if (skipIdle.checked && gap > 1000) { gap = 1000; }
              t += Math.max(0, gap); times.push(t);
            });
            duration = times.length ? times[times.length - 1] : 0;
            seek.max = String(duration);
          }
          function render() {
            while (written < frames.length && times[written] <= position) {
              var frame = frames[written];
              if (frame.resize) { resize(frame.resize); }
              if (frame.text) { write(frame.text); }
              written += 1;
            }
            seek.value = String(Math.round(position));
            timeLabel.textContent = clock(position) + " / " + clock(duration);
          }
          function tick(now) {
            if (!playing) { return; }
            position += (now - last) * Number(speedSelect.value); last = now;
            if (position >= duration) { position = duration; render(); setPlaying(false); root.setAttribute("data-state", "ended"); return; }
            render();
            window.requestAnimationFrame(tick);
          }
          function setPlaying(on) {
            playing = on; playButton.textContent = on ? "Pause" : "Play";
            playButton.setAttribute("aria-pressed", on ? "true" : "false");
            root.setAttribute("data-state", on ? "playing" : "paused");
            if (on) { last = performance.now(); window.requestAnimationFrame(tick); }
          }
          function jump(to) {
            position = Math.min(Math.max(0, to), duration);
            if (position < (written > 0 ? times[written - 1] : 0)) { reset(); }
            render();
          }
          playButton.addEventListener("click", function () {
            if (!playing && position >= duration) { reset(); position = 0; }
            setPlaying(!playing);
          });
          seek.addEventListener("input", function () { jump(Number(seek.value)); });
          skipIdle.addEventListener("change", function () {
            var frameIndex = written; timeline();
            position = frameIndex > 0 ? times[frameIndex - 1] : 0; render();
          });
          getJSON("/webapi/recordings/" + encodeURIComponent(sid)).then(function (recording) {
            var decoder = new TextDecoder("utf-8");
            frames = recording.frames.map(function (frame) {
              var text = "";
              if (frame.o) {
                var raw = atob(frame.o), bytes = new Uint8Array(raw.length);
                for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
                text = decoder.decode(bytes, { stream: true });
              }
              return { ms: frame.ms, text: text, resize: frame.resize };
            });
            var size = String(recording.header.size || "80:24").split(":");
            makeTerminal(Number(size[0]) || 80, Number(size[1]) || 24);
            var header = recording.header;
            document.getElementById("player-meta").textContent = header.user + " as " + header.login + " on " + (header.server_hostname || header.server_id)
              + ", " + new Date(header.start).toLocaleString() + (recording.complete ? "" : " (partial recording)");
            timeline(); render();
            playButton.disabled = false; seek.disabled = false;
            root.setAttribute("data-state", "ready");
          }).catch(function (error) { showError(error.message); root.setAttribute("data-state", "error"); });
          // For tests and screen readers: the text the terminal shows now.
          window.teleportReplayText = function () {
            if (!term) { return fallbackText; }
            term.selectAll(); var text = term.getSelection(); term.clearSelection(); return text;
          };
        })();
        """#
}
