import Foundation
import Hummingbird
import NIOCore
import TeleportAPI

/// The web UI's pages and assets. Pages hold no script and no inline style (the CSP of
/// ``WebSecurityMiddleware`` forbids both): behaviour is in `/web/app.js`, looks in `/web/app.css`.
/// Every value from outside is escaped here. The login form works without script too.
enum WebUIPages {
    /// An HTML page, never cached.
    static func response(_ html: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// A static asset.
    static func asset(_ text: String, type: String) -> Response {
        Response(status: .ok, headers: [.contentType: type, .cacheControl: "no-cache"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func document(title: String, body: String, page: String, scripts: [String] = []) -> String {
        let extra = scripts.map { "<script src=\"\(HTMLText.escape($0))\" defer></script>\n" }.joined()
        return """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(HTMLText.escape(title))</title>
        <link rel="stylesheet" href="/web/app.css">
        <script src="/web/app.js" defer></script>
        \(extra)</head>
        <body data-page="\(page)">
        \(body)
        </body>
        </html>

        """
    }

    /// The login page: user, password and one-time code; `error` above the form.
    static func login(clusterName: String, error: String? = nil, connectors: [AuthAPI.ConnectorSummary] = [], localAuth: Bool = true) -> String {
        var body = "<main class=\"card\">\n<h1>Sign in to Teleport</h1>\n"
        body += "<p class=\"cluster\">Cluster <strong>\(HTMLText.escape(clusterName))</strong></p>\n"
        body += "<p id=\"error\" class=\"error\" role=\"alert\"\(error == nil ? " hidden" : "")>\(HTMLText.escape(error ?? ""))</p>\n"
        body += "<form id=\"login-form\" method=\"post\" action=\"/webapi/sessions\"\(localAuth ? "" : " hidden")>\n"
        body += "<label for=\"user\">User name</label>\n"
        body += "<input id=\"user\" name=\"user\" type=\"text\" autocomplete=\"username\" autocapitalize=\"none\" spellcheck=\"false\" required autofocus>\n"
        body += "<label for=\"password\">Password</label>\n"
        body += "<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\n"
        body += "<label for=\"otp_code\">Authenticator code</label>\n"
        body += "<input id=\"otp_code\" name=\"otp_code\" type=\"text\" inputmode=\"numeric\" autocomplete=\"one-time-code\" "
        body += "pattern=\"[0-9 ]{6,7}\" maxlength=\"7\" aria-describedby=\"otp-help\">\n"
        body += "<p id=\"otp-help\" class=\"help\">The 6-digit code your authenticator app shows for this account.</p>\n"
        body += "<button id=\"login\" type=\"submit\">Sign in</button>\n</form>\n"
        // Single sign-on: one button (a link) per connector, to /v1/webapi/{kind}/login/web.
        body += "<section id=\"sso\" aria-label=\"Single sign-on\"\(connectors.isEmpty ? " hidden" : "")>\n"
        for connector in connectors {
            var query = URLComponents()
            query.queryItems = [URLQueryItem(name: "connector_id", value: connector.name), URLQueryItem(name: "redirect_url", value: "/web")]
            let href = "/v1/webapi/\(connector.kind)/login/web?" + (query.percentEncodedQuery ?? "")
            body += "<a class=\"sso-button\" id=\"sso-\(HTMLText.escape(connector.kind))-\(HTMLText.escape(connector.name))\" "
            body += "data-connector=\"\(HTMLText.escape(connector.name))\" data-kind=\"\(HTMLText.escape(connector.kind))\" "
            body += "href=\"\(HTMLText.escape(href))\">Sign in with \(HTMLText.escape(connector.display))</a>\n"
        }
        body += "</section>\n</main>\n"
        return document(title: "Sign in · Teleport", body: body, page: "login")
    }

    /// The sections of the signed-in UI, in the navigation bar's order: (path, label, page id).
    static let sections: [(path: String, label: String, page: String)] = [
        ("/web/nodes", "Servers", "nodes"), ("/web/databases", "Databases", "databases"),
        ("/web/apps", "Applications", "apps"),
        ("/web/sessions", "Active sessions", "sessions"),
        ("/web/recordings", "Recordings", "recordings"), ("/web/audit", "Audit log", "audit"),
        ("/web/manage", "Management", "manage"), ("/web/account", "Account", "account"),
    ]

    /// A signed-in page: the bar (brand, cluster, navigation with `page` marked current, the user,
    /// Log out with the session's CSRF token), an error line, then `main` in a card.
    /// Page behaviour comes from `/web/app.js` and `scripts` (same-origin paths only).
    static func shell(
        _ info: AuthAPI.WebSessionInfo, clusterName: String, title: String, page: String, main: String, scripts: [String] = [],
        wide: Bool = true
    ) -> String {
        var body = "<header class=\"bar\">\n<a class=\"brand\" href=\"/web/\">Teleport</a>\n"
        body += "<span class=\"cluster\">\(HTMLText.escape(clusterName))</span>\n<nav aria-label=\"Sections\"><ul>"
        for section in sections {
            let current = section.page == page ? " aria-current=\"page\"" : ""
            body += "<li><a href=\"\(section.path)\"\(current)>\(section.label)</a></li>"
        }
        body += "</ul></nav>\n<span id=\"username\">\(HTMLText.escape(info.user))</span>\n"
        body += "<button id=\"logout\" type=\"button\" data-csrf=\"\(HTMLText.escape(info.csrfToken))\">Log out</button>\n</header>\n"
        body += "<main class=\"card\(wide ? " wide" : "")\" id=\"main\">\n<p id=\"error\" class=\"error\" role=\"alert\" hidden></p>\n"
        body += main
        body += "</main>\n"
        return document(title: "\(title) · Teleport", body: body, page: page, scripts: scripts)
    }

    /// The signed-in page.
    static func home(_ info: AuthAPI.WebSessionInfo, clusterName: String) -> String {
        var main = "<h1 id=\"signed-in\">Signed in as <span id=\"home-user\">\(HTMLText.escape(info.user))</span></h1>\n"
        main += "<dl>\n<dt>Roles</dt><dd id=\"roles\">\(HTMLText.escape(info.roles.joined(separator: ", ")))</dd>\n"
        let logins = info.logins.isEmpty ? "none" : info.logins.joined(separator: ", ")
        main += "<dt>Logins</dt><dd id=\"logins\">\(HTMLText.escape(logins))</dd>\n"
        main += "<dt>Session ends</dt><dd>at the latest <time datetime=\"\(RFC3339.format(info.expires))\">\(HTMLText.escape(RFC3339.format(info.expires)))</time>, "
        main += "or after a time without use</dd>\n</dl>\n"
        main += "<p><a id=\"nodes-link\" href=\"/web/nodes\">Servers you can reach</a></p>\n"
        return shell(info, clusterName: clusterName, title: "Home", page: "home", main: main, wide: false)
    }

    /// The resources page: the servers the user may reach (`/webapi/nodes`, filled by
    /// `/web/app.js`), with a search box, label chips, sorting and paging.
    static func nodes(_ info: AuthAPI.WebSessionInfo, clusterName: String) -> String {
        var main = "<h1>Servers</h1>\n"
        // Shown by the script when leaf clusters exist (`/webapi/sites`): which cluster's servers.
        main += "<div id=\"cluster-picker\" class=\"cluster-picker\" hidden><label for=\"cluster\">Cluster</label>"
        main += "<select id=\"cluster\" name=\"cluster\"></select></div>\n"
        main += "<form id=\"nodes-filter\" class=\"filters\" role=\"search\">\n"
        main += "<label for=\"search\">Search</label>\n"
        main += "<input id=\"search\" name=\"search\" type=\"search\" placeholder=\"name, address or label\" autocomplete=\"off\">\n"
        main += "<label for=\"sort\">Sort by</label>\n"
        main += "<select id=\"sort\" name=\"sort\"><option value=\"name\">Name</option><option value=\"addr\">Address</option></select>\n"
        main += "</form>\n"
        main += "<div id=\"chips\" class=\"chips\" aria-label=\"Label filters\"></div>\n"
        main += "<table id=\"nodes\">\n<caption class=\"help\">Click a label to show only servers that have it.</caption>\n"
        main += "<thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Address</th><th scope=\"col\">Labels</th><th scope=\"col\">Logins</th><th scope=\"col\">Connect</th></tr></thead>\n"
        main += "<tbody id=\"nodes-body\"></tbody>\n</table>\n"
        main += "<p id=\"nodes-empty\" class=\"help\" hidden>No servers match.</p>\n"
        main += "<nav class=\"pager\" aria-label=\"Pages\"><button id=\"prev\" type=\"button\" disabled>Previous</button>"
        main += "<button id=\"next\" type=\"button\" disabled>Next</button></nav>\n"
        return shell(info, clusterName: clusterName, title: "Servers", page: "nodes", main: main)
    }

    /// The databases page: the databases the user's roles' `db_labels` allow, each with its
    /// protocol, labels and the `tsh db connect` command (one per database user the roles name, or a
    /// placeholder when they allow any). Rendered here: every value escaped, no script needed.
    static func databases(
        _ info: AuthAPI.WebSessionInfo, clusterName: String, databases: [DatabaseServer], dbUsers: [String]
    ) -> String {
        var main = "<h1>Databases</h1>\n"
        main += "<p class=\"help\">Connect with <code>tsh</code> after <code>tsh login</code>; "
        main += "<code>tsh db config NAME</code> prints the options for other clients.</p>\n"
        guard !databases.isEmpty else {
            main += "<p id=\"databases-empty\" class=\"help\">No databases you may use are registered.</p>\n"
            return shell(info, clusterName: clusterName, title: "Databases", page: "databases", main: main)
        }
        main += "<table id=\"databases\">\n<thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Description</th>"
        main += "<th scope=\"col\">Type</th><th scope=\"col\">Labels</th><th scope=\"col\">Connect</th></tr></thead>\n<tbody>\n"
        for database in databases {
            let labels = database.allLabels.sorted { $0.key < $1.key }
                .map { "<span class=\"chip\">\(HTMLText.escape($0.key))=\(HTMLText.escape($0.value))</span>" }.joined(separator: " ")
            let users = dbUsers.isEmpty ? ["DB_USER"] : dbUsers
            let commands = users.map { user in
                "<code class=\"connect\">tsh db connect \(HTMLText.escape(database.name)) --db-user=\(HTMLText.escape(user))</code>"
            }.joined(separator: "<br>")
            main += "<tr data-name=\"\(HTMLText.escape(database.name))\"><td>\(HTMLText.escape(database.name))</td>"
            main += "<td>\(HTMLText.escape(database.spec.description ?? ""))</td><td>\(HTMLText.escape(database.spec.protocol.rawValue))</td>"
            main += "<td>\(labels)</td><td>\(commands)</td></tr>\n"
        }
        main += "</tbody>\n</table>\n"
        return shell(info, clusterName: clusterName, title: "Databases", page: "databases", main: main)
    }

    /// The applications page: the apps the user's roles' `app_labels` allow, each with its
    /// public address and a Launch link (`/web/launch/NAME`, which opens the app on its own
    /// origin). Rendered here: every value escaped, no script needed.
    static func apps(_ info: AuthAPI.WebSessionInfo, clusterName: String, apps: [AppServer], port: Int?) -> String {
        var main = "<h1>Applications</h1>\n"
        guard !apps.isEmpty else {
            main += "<p id=\"apps-empty\" class=\"help\">No applications you may use are registered.</p>\n"
            return shell(info, clusterName: clusterName, title: "Applications", page: "apps", main: main)
        }
        main += "<table id=\"apps\">\n<thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Description</th>"
        main += "<th scope=\"col\">Address</th><th scope=\"col\">Labels</th><th scope=\"col\">Launch</th></tr></thead>\n<tbody>\n"
        for app in apps {
            let labels = app.allLabels.sorted { $0.key < $1.key }
                .map { "<span class=\"chip\">\(HTMLText.escape($0.key))=\(HTMLText.escape($0.value))</span>" }.joined(separator: " ")
            let address = AppLaunchRoute.origin(host: app.spec.publicAddr, port: port)
            let launch = "/web/launch/" + (app.name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? "")
            main += "<tr data-name=\"\(HTMLText.escape(app.name))\"><td>\(HTMLText.escape(app.name))</td>"
            main += "<td>\(HTMLText.escape(app.spec.description ?? ""))</td><td class=\"address\">\(HTMLText.escape(address))</td>"
            main += "<td>\(labels)</td><td><a class=\"launch\" href=\"\(HTMLText.escape(launch))\">Launch</a></td></tr>\n"
        }
        main += "</tbody>\n</table>\n"
        return shell(info, clusterName: clusterName, title: "Applications", page: "apps", main: main)
    }

    /// The pages' script: the login form posts JSON and shows errors in place; the log-out button
    /// ends the session with its CSRF token.
    static let appJS = #"""
        "use strict";
        (function () {
          function showError(text) {
            var box = document.getElementById("error");
            if (!box) { return; }
            box.textContent = text;
            box.hidden = false;
          }
          async function message(response) {
            try {
              var body = await response.json();
              var error = body && body.error;
              if (error && typeof error.message === "string" && error.message) {
                return error.message.charAt(0).toUpperCase() + error.message.slice(1) + (/[.!?]$/.test(error.message) ? "" : ".");
              }
            } catch (e) { /* not JSON */ }
            return "The request failed (HTTP " + response.status + ").";
          }
          function setupLogin() {
            var form = document.getElementById("login-form");
            if (!form) { return; }
            form.addEventListener("submit", async function (event) {
              event.preventDefault();
              var button = document.getElementById("login");
              button.disabled = true;
              try {
                var response = await fetch("/webapi/sessions", {
                  method: "POST",
                  credentials: "same-origin",
                  headers: { "Content-Type": "application/json" },
                  body: JSON.stringify({
                    user: form.elements.user.value,
                    password: form.elements.password.value,
                    otp_code: form.elements.otp_code.value.replace(/\s+/g, "")
                  })
                });
                if (response.ok) {
                  window.location.assign("/web/");
                  return;
                }
                showError(await message(response));
                form.elements.password.value = "";
                form.elements.otp_code.value = "";
                form.elements.password.focus();
              } catch (e) {
                showError("The proxy could not be reached; check your connection and try again.");
              } finally {
                button.disabled = false;
              }
            });
          }
          function setupLogout() {
            var button = document.getElementById("logout");
            if (!button) { return; }
            button.addEventListener("click", async function () {
              button.disabled = true;
              try {
                var response = await fetch("/webapi/sessions", {
                  method: "DELETE",
                  credentials: "same-origin",
                  headers: { "X-CSRF-Token": button.dataset.csrf || "" }
                });
                if (response.ok || response.status === 401) {
                  window.location.assign("/web/login");
                  return;
                }
                showError(await message(response));
              } catch (e) {
                showError("The proxy could not be reached; check your connection and try again.");
              } finally {
                button.disabled = false;
              }
            });
          }
          function setupNodes() {
            var table = document.getElementById("nodes-body");
            if (!table) { return; }
            var search = document.getElementById("search");
            var sort = document.getElementById("sort");
            var chips = document.getElementById("chips");
            var prev = document.getElementById("prev");
            var next = document.getElementById("next");
            var empty = document.getElementById("nodes-empty");
            // seq: only the latest request's answer is shown (a slow leaf's answer may arrive
            // after the one for the cluster chosen next).
            var state = { labels: [], tokens: [""], nextToken: null, timer: null, seq: 0,
              cluster: new URLSearchParams(window.location.search).get("cluster") || "" };
            var pageSize = 25;
            function text(tag, value, className) {
              var element = document.createElement(tag);
              element.textContent = value;
              if (className) { element.className = className; }
              return element;
            }
            function renderChips() {
              chips.replaceChildren();
              state.labels.forEach(function (label, index) {
                var chip = text("button", label + " ×", "chip active");
                chip.type = "button";
                chip.setAttribute("aria-label", "Remove filter " + label);
                chip.addEventListener("click", function () {
                  state.labels.splice(index, 1);
                  restart();
                });
                chips.appendChild(chip);
              });
            }
            function addLabel(label) {
              if (state.labels.indexOf(label) < 0) { state.labels.push(label); }
              restart();
            }
            // "Connect": a login picker (the row's logins) and a button that opens the terminal.
            function connectCell(node) {
              var cell = document.createElement("td");
              cell.className = "connect";
              var logins = node.logins || [];
              if (logins.length === 0) { cell.appendChild(text("span", "no login", "help")); return cell; }
              var picker = document.createElement("select");
              picker.className = "login-picker";
              picker.setAttribute("aria-label", "Login for " + node.name);
              logins.forEach(function (login) {
                var option = document.createElement("option");
                option.value = login; option.textContent = login;
                picker.appendChild(option);
              });
              var button = text("button", "Connect", "connect-button");
              button.type = "button";
              button.setAttribute("aria-label", "Connect to " + node.name);
              button.addEventListener("click", function () {
                var params = new URLSearchParams();
                params.set("node", node.id || node.name);
                params.set("login", picker.value);
                params.set("name", node.name);
                if (state.cluster) { params.set("cluster", state.cluster); }
                window.location.assign("/web/terminal?" + params.toString());
              });
              cell.appendChild(picker);
              cell.appendChild(button);
              return cell;
            }
            function render(items) {
              table.replaceChildren();
              items.forEach(function (node) {
                var row = document.createElement("tr");
                row.appendChild(text("td", node.name, "name"));
                row.appendChild(text("td", node.tunnel ? "⟵ Tunnel" : (node.address || "")));
                var cell = document.createElement("td");
                Object.keys(node.labels || {}).sort().forEach(function (key) {
                  var label = key + "=" + node.labels[key];
                  var chip = text("button", label, "chip");
                  chip.type = "button";
                  chip.title = "Show only servers with " + label;
                  chip.addEventListener("click", function () { addLabel(label); });
                  cell.appendChild(chip);
                });
                row.appendChild(cell);
                row.appendChild(text("td", (node.logins || []).join(", ")));
                row.appendChild(connectCell(node));
                table.appendChild(row);
              });
              empty.hidden = items.length > 0;
            }
            async function load() {
              var params = new URLSearchParams();
              params.set("search", search.value);
              params.set("labels", state.labels.join(","));
              params.set("sort", sort.value);
              params.set("limit", String(pageSize));
              params.set("page_token", state.tokens[state.tokens.length - 1]);
              try {
                var path = state.cluster ? "/webapi/sites/" + encodeURIComponent(state.cluster) + "/nodes?" : "/webapi/nodes?";
                var seq = ++state.seq;
                var response = await fetch(path + params.toString(), { credentials: "same-origin" });
                if (seq !== state.seq) { return; }
                if (response.status === 401) {
                  window.location.assign("/web/login");
                  return;
                }
                if (!response.ok) {
                  var text = await message(response);
                  if (seq !== state.seq) { return; }
                  render([]);
                  showError(text);
                  return;
                }
                var body = await response.json();
                if (seq !== state.seq) { return; }
                document.getElementById("error").hidden = true;
                render(body.items || []);
                state.nextToken = body.next_page_token || null;
                next.disabled = !state.nextToken;
                prev.disabled = state.tokens.length < 2;
              } catch (e) {
                showError("The proxy could not be reached; check your connection and try again.");
              }
            }
            function restart() {
              state.tokens = [""];
              renderChips();
              load();
            }
            document.getElementById("nodes-filter").addEventListener("submit", function (event) {
              event.preventDefault();
              restart();
            });
            search.addEventListener("input", function () {
              clearTimeout(state.timer);
              state.timer = setTimeout(restart, 250);
            });
            sort.addEventListener("change", restart);
            next.addEventListener("click", function () {
              if (!state.nextToken) { return; }
              state.tokens.push(state.nextToken);
              load();
            });
            prev.addEventListener("click", function () {
              if (state.tokens.length < 2) { return; }
              state.tokens.pop();
              load();
            });
            setupClusters(function (cluster) {
              state.cluster = cluster;
              restart();
            }, state.cluster);
            restart();
          }
          // The cluster selector: shown when leaf clusters exist; the root's name selects this
          // cluster (cluster= leaves the URL), a leaf's is kept in the URL.
          async function setupClusters(changed, selected) {
            var picker = document.getElementById("cluster-picker");
            var select = document.getElementById("cluster");
            if (!picker || !select) { return; }
            try {
              var response = await fetch("/webapi/sites", { credentials: "same-origin" });
              if (!response.ok) { return; }
              var sites = await response.json();
              if (!Array.isArray(sites) || sites.length < 2) { return; }
              select.replaceChildren();
              sites.forEach(function (site) {
                var option = document.createElement("option");
                option.value = site.type === "root" ? "" : site.name;
                option.textContent = site.name + (site.type === "root" ? "" : " (leaf, " + site.status + ")");
                option.selected = option.value === selected;
                select.appendChild(option);
              });
              picker.hidden = false;
              select.addEventListener("change", function () {
                var url = new URL(window.location.href);
                if (select.value) { url.searchParams.set("cluster", select.value); } else { url.searchParams.delete("cluster"); }
                window.history.replaceState(null, "", url.toString());
                changed(select.value);
              });
            } catch (e) { /* no selector */ }
          }
          // The Active sessions page's script uses the same selector.
          window.teleportClusterPicker = setupClusters;
          document.addEventListener("DOMContentLoaded", function () {
            setupLogin();
            setupLogout();
            setupNodes();
          });
        })();

        """#

    /// The pages' style: readable from 400 px wide up.
    static let appCSS = """
        :root { color-scheme: light; --accent: #512fc9; --text: #1b1b1f; --muted: #5a5a66; --line: #d6d6de; --error: #b3261e; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--text); background: #f4f3f8; }
        .bar { display: flex; align-items: center; gap: 1rem; padding: 0.75rem 1.5rem; background: #1f1a3a; color: #fff; flex-wrap: wrap; }
        .bar .brand { font-weight: 700; font-size: 1.15rem; }
        .bar .cluster { color: #c9c3ea; min-width: 0; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
        .bar nav { flex: 1; }
        .bar nav ul { list-style: none; display: flex; flex-wrap: wrap; gap: 0.25rem 1rem; margin: 0; padding: 0; }
        .bar nav a { color: #e6e1ff; text-decoration: none; padding: 0.2rem 0; border-bottom: 2px solid transparent; }
        .bar nav a:hover, .bar nav a:focus { border-bottom-color: #8d84c4; }
        .bar nav a[aria-current="page"] { color: #fff; border-bottom-color: #fff; }
        .bar button { background: transparent; color: #fff; border: 1px solid #8d84c4; }
        .card { max-width: 28rem; margin: 3rem auto; padding: 2rem; background: #fff; border: 1px solid var(--line); border-radius: 10px; }
        body[data-page="home"] .card { max-width: 48rem; }
        .card.wide { max-width: 72rem; }
        .bar a.brand { color: #fff; text-decoration: none; }
        .filters { display: grid; grid-template-columns: max-content 1fr max-content max-content; gap: 0.5rem 0.75rem; align-items: center; }
        .filters label { margin: 0; }
        select { font: inherit; padding: 0.55rem; border: 1px solid #a9a9b6; border-radius: 6px; background: #fff; }
        .cluster-picker { display: flex; align-items: center; gap: 0.75rem; margin-bottom: 0.75rem; flex-wrap: wrap; }
        .cluster-picker[hidden] { display: none; }
        .cluster-picker label { margin: 0; }
        .cluster-picker select { max-width: 100%; }
        .chips { display: flex; flex-wrap: wrap; gap: 0.4rem; margin: 0.75rem 0; min-height: 0.5rem; }
        button.chip { font-size: 0.8rem; padding: 0.15rem 0.55rem; margin: 0.1rem 0.25rem 0.1rem 0; border-radius: 999px; background: #ece8fb; color: #2e1f78; border: 1px solid #cfc6f5; overflow-wrap: anywhere; text-align: left; }
        button.chip.active { background: var(--accent); color: #fff; }
        table { width: 100%; border-collapse: collapse; margin-top: 0.5rem; }
        caption { text-align: left; }
        th, td { text-align: left; padding: 0.5rem; border-bottom: 1px solid var(--line); vertical-align: top; overflow-wrap: anywhere; }
        th { color: var(--muted); font-weight: 600; }
        .pager { display: flex; gap: 0.75rem; justify-content: flex-end; margin-top: 1rem; }
        h1 { font-size: 1.5rem; margin: 0 0 1rem; overflow-wrap: anywhere; }
        .cluster { color: var(--muted); overflow-wrap: anywhere; }
        label { display: block; font-weight: 600; margin: 1rem 0 0.3rem; }
        input { width: 100%; padding: 0.6rem 0.7rem; font: inherit; border: 1px solid #a9a9b6; border-radius: 6px; }
        input:focus, button:focus { outline: 3px solid #b9a8ff; outline-offset: 1px; }
        .help { color: var(--muted); font-size: 0.9rem; margin: 0.3rem 0 0; }
        button { font: inherit; padding: 0.55rem 1.2rem; border-radius: 6px; border: 0; background: var(--accent); color: #fff; cursor: pointer; }
        button:disabled { opacity: 0.6; cursor: progress; }
        form button { width: 100%; margin-top: 1.5rem; }
        .error { color: var(--error); background: #fdecea; border: 1px solid #f3b8b3; padding: 0.6rem 0.8rem; border-radius: 6px; }
        dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.4rem 1rem; }
        dt { font-weight: 600; color: var(--muted); }
        dd { margin: 0; overflow-wrap: anywhere; }
        @media (max-width: 480px) {
          .card { margin: 0; border: 0; border-radius: 0; padding: 1.25rem; }
          dl { grid-template-columns: 1fr; }
          .filters { grid-template-columns: 1fr; }
          thead { display: none; }
          tr, td { display: block; }
          td { border: 0; padding: 0.2rem 0; }
          tr { border-bottom: 1px solid var(--line); padding: 0.5rem 0; }
          td.name { font-weight: 600; }
        }

        """
}
