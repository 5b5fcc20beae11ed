import Foundation
import Hummingbird
import TeleportAPI
import TeleportAuthClient

/// The web terminal's pages: `/web/terminal?node=&login=[&cluster=LEAF]` (or `?session=&mode=` to join), the
/// active sessions list `/web/sessions[?cluster=LEAF]` (Join as observer or peer; a leaf's from its selector), their scripts
/// (`/web/js/terminal.js`, `/web/js/sessions.js`) and styles (`/web/css/terminal.css`).
///
/// The terminal page alone relaxes the Content-Security-Policy to `style-src 'self'
/// 'unsafe-inline'`: xterm.js sizes its rows and cursor with inline styles. Scripts stay
/// same-origin only, and every other page keeps the strict policy.
struct WebTerminalPages: Sendable {
    let gate: WebSessionGate<AuthClient>

    /// The terminal page's policy.
    static let terminalCSP =
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
        + "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

    func register(on router: Router<ProxyRequestContext>, clusterName: String) {
        let gate = self.gate
        router.get("web/terminal") { request, context in
            var response = await gate.page(request, context: context) { Self.terminal($0, clusterName: clusterName) }
            if response.status == .ok { response.headers[.contentSecurityPolicy] = Self.terminalCSP }
            return response
        }
        router.get("web/sessions") { request, context in
            await gate.page(request, context: context) { Self.sessions($0, clusterName: clusterName) }
        }
        router.get("web/js/terminal.js") { _, _ in WebUIPages.asset(Self.terminalJS, type: "text/javascript; charset=utf-8") }
        router.get("web/js/sessions.js") { _, _ in WebUIPages.asset(Self.sessionsJS, type: "text/javascript; charset=utf-8") }
        router.get("web/css/terminal.css") { _, _ in WebUIPages.asset(Self.css, type: "text/css; charset=utf-8") }
    }

    /// `GET /web/terminal`: the query names what to open; the script reads it from the URL.
    static func terminal(_ info: AuthAPI.WebSessionInfo, clusterName: String) -> String {
        var main = "<link rel=\"stylesheet\" href=\"/web/vendor/xterm/xterm.css\">\n<link rel=\"stylesheet\" href=\"/web/css/terminal.css\">\n"
        main += "<div class=\"terminal-head\"><h1 id=\"terminal-title\">Terminal</h1>\n"
        main += "<p id=\"terminal-status\" class=\"help\" role=\"status\" aria-live=\"polite\">Connecting…</p></div>\n"
        main += "<div id=\"terminal\" class=\"web-terminal\" aria-label=\"Terminal\"></div>\n"
        return WebUIPages.shell(
            info, clusterName: clusterName, title: "Terminal", page: "nodes", main: main,
            scripts: ["/web/vendor/xterm/xterm.js", "/web/vendor/xterm/addons/fit/fit.js", "/web/js/terminal.js"])
    }

    /// `GET /web/sessions`: the live sessions the user may see (`/webapi/sessions/active`).
    static func sessions(_ info: AuthAPI.WebSessionInfo, clusterName: String) -> String {
        var main = "<link rel=\"stylesheet\" href=\"/web/css/terminal.css\">\n<h1>Active sessions</h1>\n"
        main += "<div id=\"cluster-picker\" class=\"cluster-picker\" hidden><label for=\"cluster\">Cluster</label>"
        main += "<select id=\"cluster\" name=\"cluster\"></select></div>\n"
        main += "<table id=\"sessions\">\n<thead><tr><th scope=\"col\">User</th><th scope=\"col\">Login</th><th scope=\"col\">Server</th>"
        main += "<th scope=\"col\">Started</th><th scope=\"col\">Command</th><th scope=\"col\">Join</th></tr></thead>\n"
        main += "<tbody id=\"sessions-body\"></tbody>\n</table>\n"
        main += "<p id=\"sessions-empty\" class=\"help\" hidden>No session is running now.</p>\n"
        main += "<p><button id=\"sessions-refresh\" type=\"button\">Refresh</button></p>\n"
        return WebUIPages.shell(info, clusterName: clusterName, title: "Active sessions", page: "sessions", main: main, scripts: ["/web/js/sessions.js"])
    }

    static let css = """
        .terminal-head { display: flex; align-items: baseline; gap: 1rem; flex-wrap: wrap; }
        .terminal-head h1 { margin: 0; font-size: 1.2rem; }
        .web-terminal { background: #111; padding: 4px; height: calc(100vh - 12rem); min-height: 12rem; overflow: hidden; }
        .web-terminal .fallback { color: #ddd; margin: 0; white-space: pre-wrap; }
        #terminal-status.ended { color: #b00020; font-weight: 600; }
        td.connect { white-space: nowrap; }
        td.connect select, td.connect button, td.join button { margin-right: 0.3rem; }

        """

    /// Opens the WebSocket, fits xterm.js to the window (resizes go to the node), shows how the
    /// session ended. `window.teleportTerminalText()` returns the terminal's text (for tests).
    static let terminalJS = #"""
        "use strict";
        (function () {
          var params = new URLSearchParams(window.location.search);
          var host = document.getElementById("terminal"), status = document.getElementById("terminal-status");
          var title = document.getElementById("terminal-title");
          var target = params.get("session") ? "session " + params.get("session") + " (" + (params.get("mode") || "observer") + ")"
            : (params.get("login") || "") + "@" + (params.get("name") || params.get("node") || "")
              + (params.get("cluster") ? " (" + params.get("cluster") + ")" : "");
          title.textContent = target;
          document.title = target + " · Teleport";
          function say(text, ended) { status.textContent = text; status.classList.toggle("ended", !!ended); }
          if (typeof window.Terminal !== "function") { say("The terminal cannot start: xterm.js is not installed on this proxy.", true); return; }
          var term = new window.Terminal({ cursorBlink: true, scrollback: 5000, fontFamily: "DejaVu Sans Mono, monospace", fontSize: 14 });
          term.open(host);
          // After a resize xterm.js 3 may leave the view scrolled up: follow the cursor again.
          function fit() {
            if (window.TeleportXtermFit) { try { window.TeleportXtermFit.fit(term); } catch (e) { /* not laid out yet */ } }
            term.scrollToBottom();
          }
          fit();
          window.teleportTerminalText = function () {
            var buffer = term._core.buffer, lines = [];
            for (var i = 0; i < buffer.lines.length; i++) { lines.push(buffer.translateBufferLineToString(i, true)); }
            return lines.join("\n");
          };
          window.teleportTerminalSize = function () { return { cols: term.cols, rows: term.rows }; };
          window.teleportTerm = term;
          var query = new URLSearchParams();
          ["node", "login", "session", "mode", "cluster"].forEach(function (name) { if (params.get(name)) { query.set(name, params.get(name)); } });
          query.set("cols", String(term.cols)); query.set("rows", String(term.rows));
          var socket = new WebSocket("wss://" + window.location.host + "/webapi/terminal?" + query.toString());
          socket.binaryType = "arraybuffer";
          var decoder = new TextDecoder("utf-8"), encoder = new TextEncoder(), exitStatus = null, opened = false;
          socket.addEventListener("open", function () { opened = true; say("Connected"); term.focus(); });
          socket.addEventListener("message", function (event) {
            if (typeof event.data === "string") {
              try {
                var control = JSON.parse(event.data);
                if (control.type === "exit") { exitStatus = control.status; }
              } catch (e) { /* not a control */ }
              return;
            }
            term.write(decoder.decode(new Uint8Array(event.data), { stream: true }));
          });
          socket.addEventListener("close", function (event) {
            var text;
            if (exitStatus !== null && exitStatus !== undefined) { text = "Session ended (exit status " + exitStatus + ")"; }
            else if (event.code === 1000) { text = "Session ended"; }
            else if (event.code === 4401) { text = "Your web session has ended: sign in again."; }
            else { text = "Disconnected: " + (event.reason || (opened ? "the connection was lost" : "the proxy refused the terminal")) + " (" + event.code + ")"; }
            say(text, true);
            host.setAttribute("data-state", "ended");
            document.body.setAttribute("data-terminal", "ended");
          });
          term.on("data", function (data) { if (socket.readyState === 1) { socket.send(encoder.encode(data)); } });
          term.on("resize", function (size) {
            if (socket.readyState === 1) { socket.send(JSON.stringify({ type: "resize", cols: size.cols, rows: size.rows })); }
          });
          var pending = null;
          window.addEventListener("resize", function () { clearTimeout(pending); pending = setTimeout(fit, 50); });
        })();
        """#

    /// Lists the live sessions with Join buttons (observer, and peer).
    static let sessionsJS = #"""
        "use strict";
        (function () {
          var body = document.getElementById("sessions-body"), empty = document.getElementById("sessions-empty");
          var errorBox = document.getElementById("error");
          // A leaf cluster chosen in the selector (?cluster=LEAF): its sessions, joined through it.
          var cluster = new URLSearchParams(window.location.search).get("cluster") || "", seq = 0;
          function cell(row, text, cls) { var td = document.createElement("td"); td.textContent = text; if (cls) { td.className = cls; } row.appendChild(td); return td; }
          function join(sid, mode) {
            var params = new URLSearchParams(); params.set("session", sid); params.set("mode", mode);
            if (cluster) { params.set("cluster", cluster); }
            window.location.assign("/web/terminal?" + params.toString());
          }
          async function load() {
            try {
              var mine = ++seq;
              var path = cluster ? "/webapi/sites/" + encodeURIComponent(cluster) + "/sessions" : "/webapi/sessions/active";
              var response = await fetch(path, { credentials: "same-origin" });
              if (response.status === 401) { window.location.assign("/web/login"); return; }
              var list = await response.json();
              if (mine !== seq) { return; }
              errorBox.hidden = true;
              if (!response.ok) { throw new Error((list.error && list.error.message) || "the list cannot be read"); }
              body.replaceChildren();
              list.forEach(function (session) {
                var row = document.createElement("tr");
                row.setAttribute("data-sid", session.sid);
                cell(row, session.user, "user"); cell(row, session.login); cell(row, session.server_hostname, "node");
                cell(row, new Date(session.created).toLocaleString()); cell(row, session.command || "(shell)");
                var td = cell(row, "", "join");
                // A Kubernetes session is joined from a terminal with tsh (the browser speaks SSH only).
                if (session.kind === "kube") { td.textContent = "tsh kube join " + session.sid; body.appendChild(row); return; }
                [["observer", "Join as observer"], ["peer", "Join as peer"]].forEach(function (pair) {
                  var button = document.createElement("button");
                  button.type = "button"; button.textContent = pair[1]; button.className = "join-" + pair[0];
                  button.setAttribute("aria-label", pair[1] + ": " + session.user + " on " + session.server_hostname);
                  button.addEventListener("click", function () { join(session.sid, pair[0]); });
                  td.appendChild(button);
                });
                body.appendChild(row);
              });
              empty.hidden = list.length > 0;
            } catch (error) {
              body.replaceChildren();
              errorBox.textContent = "The active sessions cannot be listed: " + error.message; errorBox.hidden = false;
            }
          }
          document.getElementById("sessions-refresh").addEventListener("click", load);
          if (window.teleportClusterPicker) { window.teleportClusterPicker(function (chosen) { cluster = chosen; load(); }, cluster); }
          load();
        })();
        """#
}
