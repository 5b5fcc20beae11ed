import TeleportAPI

/// The Management page (`/web/manage`): users, roles, locks and join tokens, each a section filled
/// by `/web/js/manage.js` from ``ManagementRoutes``' JSON API. The page holds no data: what the
/// user may see is what the auth service answers for them; a refusal is shown as its sentence.
enum ManagementPage {
    static func html(_ info: AuthAPI.WebSessionInfo, clusterName: String) -> String {
        var main = "<link rel=\"stylesheet\" href=\"/web/css/manage.css\">\n<h1>Management</h1>\n"
        main += "<nav class=\"tabs\" aria-label=\"Management sections\"><ul>"
        main += "<li><a href=\"#users\">Users</a></li><li><a href=\"#roles\">Roles</a></li>"
        main += "<li><a href=\"#locks\">Locks</a></li><li><a href=\"#tokens\">Join tokens</a></li></ul></nav>\n"

        main += "<section id=\"users\" aria-labelledby=\"users-title\">\n<h2 id=\"users-title\">Users</h2>\n"
        main += "<p id=\"users-error\" class=\"error\" role=\"alert\" hidden></p>\n"
        main += "<table id=\"users-table\"><thead><tr><th scope=\"col\">User</th><th scope=\"col\">Roles</th>"
        main += "<th scope=\"col\">Logins</th><th scope=\"col\">Actions</th></tr></thead><tbody id=\"users-body\"></tbody></table>\n"
        main += "<form id=\"user-form\" class=\"inline-form\">\n<h3>Add a user</h3>\n"
        main += "<label for=\"user-name\">User name</label><input id=\"user-name\" name=\"name\" type=\"text\" autocomplete=\"off\" autocapitalize=\"none\" spellcheck=\"false\" required>\n"
        main += "<label for=\"user-roles\">Roles (comma-separated)</label><input id=\"user-roles\" name=\"roles\" type=\"text\" autocomplete=\"off\" required>\n"
        main += "<label for=\"user-logins\">Logins (comma-separated; empty: the user name)</label><input id=\"user-logins\" name=\"logins\" type=\"text\" autocomplete=\"off\">\n"
        main += "<button id=\"user-create\" type=\"submit\">Create user</button>\n</form>\n"
        main += "<form id=\"user-edit\" class=\"inline-form\" hidden>\n<h3>Roles of <span id=\"user-edit-name\"></span></h3>\n"
        main += "<label for=\"user-edit-roles\">Roles (comma-separated)</label><input id=\"user-edit-roles\" type=\"text\" autocomplete=\"off\" required>\n"
        main += "<button id=\"user-edit-save\" type=\"submit\">Save roles</button> <button id=\"user-edit-cancel\" type=\"button\" class=\"secondary\">Cancel</button>\n</form>\n"
        main += "<div id=\"invite\" class=\"result\" role=\"status\" hidden><p id=\"invite-text\"></p>"
        main += "<p><a id=\"invite-url\" href=\"#\" rel=\"noreferrer\"></a></p></div>\n</section>\n"

        main += "<section id=\"roles\" aria-labelledby=\"roles-title\">\n<h2 id=\"roles-title\">Roles</h2>\n"
        main += "<p id=\"roles-error\" class=\"error\" role=\"alert\" hidden></p>\n"
        main += "<ul id=\"roles-list\" class=\"plain\"></ul>\n"
        main += "<button id=\"role-new\" type=\"button\" class=\"secondary\">New role</button>\n"
        main += "<form id=\"role-form\" hidden>\n<h3 id=\"role-title\">Role</h3>\n"
        main += "<label for=\"role-yaml\">Role definition (YAML)</label>\n"
        main += "<textarea id=\"role-yaml\" rows=\"18\" spellcheck=\"false\" autocapitalize=\"none\" aria-describedby=\"role-status\"></textarea>\n"
        main += "<p id=\"role-status\" class=\"error\" role=\"alert\" hidden></p>\n"
        main += "<p id=\"role-saved\" class=\"ok\" role=\"status\" hidden></p>\n"
        main += "<button id=\"role-save\" type=\"submit\">Save role</button> <button id=\"role-delete\" type=\"button\" class=\"danger\">Delete role</button>\n</form>\n</section>\n"

        main += "<section id=\"locks\" aria-labelledby=\"locks-title\">\n<h2 id=\"locks-title\">Locks</h2>\n"
        main += "<p id=\"locks-error\" class=\"error\" role=\"alert\" hidden></p>\n"
        main += "<table id=\"locks-table\"><thead><tr><th scope=\"col\">Target</th><th scope=\"col\">Message</th>"
        main += "<th scope=\"col\">Expires</th><th scope=\"col\">Actions</th></tr></thead><tbody id=\"locks-body\"></tbody></table>\n"
        main += "<p id=\"locks-empty\" class=\"help\" hidden>No locks are in place.</p>\n"
        main += "<form id=\"lock-form\" class=\"inline-form\">\n<h3>Add a lock</h3>\n<p class=\"help\">Give a user, a login, a node or several: all must match.</p>\n"
        main += "<label for=\"lock-user\">User</label><input id=\"lock-user\" type=\"text\" autocomplete=\"off\">\n"
        main += "<label for=\"lock-login\">Login</label><input id=\"lock-login\" type=\"text\" autocomplete=\"off\">\n"
        main += "<label for=\"lock-node\">Node (name or ID)</label><input id=\"lock-node\" type=\"text\" autocomplete=\"off\">\n"
        main += "<label for=\"lock-message\">Message</label><input id=\"lock-message\" type=\"text\" autocomplete=\"off\">\n"
        main += "<label for=\"lock-ttl\">Expires after (e.g. 1h; empty: never)</label><input id=\"lock-ttl\" type=\"text\" autocomplete=\"off\">\n"
        main += "<button id=\"lock-create\" type=\"submit\">Create lock</button>\n</form>\n</section>\n"

        main += "<section id=\"tokens\" aria-labelledby=\"tokens-title\">\n<h2 id=\"tokens-title\">Join tokens</h2>\n"
        main += "<p id=\"tokens-error\" class=\"error\" role=\"alert\" hidden></p>\n"
        main += "<table id=\"tokens-table\"><thead><tr><th scope=\"col\">Token</th><th scope=\"col\">Roles</th>"
        main += "<th scope=\"col\">Expires</th><th scope=\"col\">Actions</th></tr></thead><tbody id=\"tokens-body\"></tbody></table>\n"
        main += "<p id=\"tokens-empty\" class=\"help\" hidden>No join tokens.</p>\n"
        main += "<form id=\"token-form\" class=\"inline-form\">\n<h3>Add a join token</h3>\n"
        main += "<label for=\"token-roles\">Joins as</label><select id=\"token-roles\"><option value=\"node\">node</option><option value=\"proxy\">proxy</option></select>\n"
        main += "<label for=\"token-ttl\">Valid for</label><input id=\"token-ttl\" type=\"text\" value=\"30m\" autocomplete=\"off\">\n"
        main += "<button id=\"token-create\" type=\"submit\">Create token</button>\n</form>\n"
        main += "<div id=\"token-result\" class=\"result\" role=\"status\" hidden><p id=\"token-text\"></p>"
        main += "<pre id=\"token-command\"></pre></div>\n</section>\n"
        return WebUIPages.shell(info, clusterName: clusterName, title: "Management", page: "manage", main: main, scripts: ["/web/js/manage.js"])
    }

    /// The page's looks (added to `/web/app.css`).
    static let style = """
        .tabs ul { list-style: none; display: flex; flex-wrap: wrap; gap: 0.5rem 1.25rem; margin: 0 0 1rem; padding: 0; }
        section { border-top: 1px solid var(--line); padding-top: 1rem; margin-top: 1.5rem; }
        h2 { font-size: 1.2rem; margin: 0 0 0.5rem; }
        h3 { font-size: 1rem; margin: 1rem 0 0; }
        .inline-form { max-width: 32rem; }
        .inline-form button, #role-form button { width: auto; margin-top: 1rem; }
        textarea { width: 100%; font: 0.9rem/1.4 ui-monospace, "DejaVu Sans Mono", monospace; padding: 0.6rem; border: 1px solid #a9a9b6; border-radius: 6px; }
        pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f4f3f8; padding: 0.75rem; border-radius: 6px; border: 1px solid var(--line); }
        .result { background: #eef8f0; border: 1px solid #b7dfc0; padding: 0.6rem 0.8rem; border-radius: 6px; margin-top: 1rem; overflow-wrap: anywhere; }
        .ok { color: #1e6b34; }
        button.secondary { background: #fff; color: var(--accent); border: 1px solid var(--accent); }
        button.danger { background: var(--error); }
        td button { padding: 0.25rem 0.6rem; margin: 0.1rem 0.3rem 0.1rem 0; font-size: 0.85rem; }
        ul.plain { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 0.4rem; }
        @media (max-width: 600px) {
          thead { display: none; }
          table, tbody, tr, td { display: block; width: 100%; }
          tr { border-bottom: 1px solid var(--line); padding: 0.4rem 0; }
          td { border: 0; padding: 0.15rem 0; }
          .card { margin: 0.5rem; padding: 1rem; }
        }
        """

    /// The page's behaviour. Data is put in the page with `textContent` only.
    static let script = #"""
        "use strict";
        (function () {
          var csrf = "";
          function el(id) { return document.getElementById(id); }
          function sentence(text) {
            text = String(text || "");
            if (!text) { return "The request failed."; }
            text = text.replace(/[\s:]+$/, "");
            return text.charAt(0).toUpperCase() + text.slice(1) + (/[.!?)]$/.test(text) ? "" : ".");
          }
          async function api(method, path, body) {
            var options = { method: method, credentials: "same-origin", headers: {} };
            if (method !== "GET") { options.headers["X-CSRF-Token"] = csrf; }
            if (body !== undefined) {
              options.headers["Content-Type"] = "application/json";
              options.body = JSON.stringify(body);
            }
            var response;
            try {
              response = await fetch("/webapi/manage/" + path, options);
            } catch (e) {
              return { ok: false, status: 0, message: "The proxy cannot be reached; check your connection and try again." };
            }
            if (response.status === 401) { window.location.assign("/web/login"); return { ok: false, status: 401, message: "Your session has ended." }; }
            var data = null;
            try { data = await response.json(); } catch (e) { data = null; }
            if (!response.ok) {
              var message = data && data.error && data.error.message;
              var prefix = response.status === 403 ? "You are not allowed to do this: " : "";
              return { ok: false, status: response.status, message: prefix + sentence(message || ("the proxy answered HTTP " + response.status)) };
            }
            return { ok: true, status: response.status, data: data || {} };
          }
          function show(id, text) { var box = el(id); box.textContent = text; box.hidden = !text; }
          function cell(row, value) { var td = document.createElement("td"); td.textContent = value; row.appendChild(td); return td; }
          function button(parent, label, className, action) {
            var b = document.createElement("button");
            b.type = "button"; b.textContent = label;
            if (className) { b.className = className; }
            b.addEventListener("click", action);
            parent.appendChild(b);
            return b;
          }
          // A destructive action asks once more in place (no dialog): the first click arms it.
          function confirmButton(parent, label, what, action) {
            var b = button(parent, label, "danger", async function () {
              if (b.dataset.armed !== "yes") {
                b.dataset.armed = "yes"; b.textContent = "Confirm: " + what;
                return;
              }
              b.disabled = true;
              await action();
              b.disabled = false;
            });
            b.setAttribute("aria-label", label + " " + what);
            return b;
          }
          function list(text) { return String(text || "").split(",").map(function (s) { return s.trim(); }).filter(Boolean); }
          function when(value) { return value ? new Date(value).toLocaleString() : "never"; }

          // Users
          async function loadUsers() {
            var result = await api("GET", "users");
            var body = el("users-body");
            body.textContent = "";
            if (!result.ok) { show("users-error", result.message); el("users-table").hidden = true; return; }
            show("users-error", ""); el("users-table").hidden = false;
            result.data.items.forEach(function (user) {
              var row = document.createElement("tr");
              row.dataset.user = user.name;
              cell(row, user.name + (user.locked ? " (locked)" : ""));
              cell(row, (user.roles || []).join(", "));
              cell(row, (user.logins || []).join(", "));
              var actions = cell(row, "");
              button(actions, "Edit roles", "secondary", function () {
                el("user-edit-name").textContent = user.name;
                el("user-edit").dataset.user = user.name;
                el("user-edit-roles").value = (user.roles || []).join(",");
                el("user-edit").hidden = false;
                el("user-edit-roles").focus();
              }).setAttribute("aria-label", "Edit roles of " + user.name);
              button(actions, "Reset", "secondary", async function () {
                var reset = await api("POST", "users/" + encodeURIComponent(user.name) + "/reset");
                if (!reset.ok) { show("users-error", reset.message); return; }
                showInvite("Share this link with " + user.name + " to set a new password and authenticator (valid for " + reset.data.ttl + "):", reset.data.url);
              }).setAttribute("aria-label", "Reset " + user.name);
              confirmButton(actions, "Delete", user.name, async function () {
                var removed = await api("DELETE", "users/" + encodeURIComponent(user.name));
                if (!removed.ok) { show("users-error", removed.message); return; }
                await loadUsers();
              });
              body.appendChild(row);
            });
          }
          function showInvite(text, url) {
            el("invite-text").textContent = text;
            var link = el("invite-url");
            link.textContent = url; link.href = url;
            el("invite").hidden = false;
          }
          function setupUsers() {
            el("user-form").addEventListener("submit", async function (event) {
              event.preventDefault();
              var name = el("user-name").value.trim();
              var result = await api("POST", "users", { name: name, roles: list(el("user-roles").value), logins: list(el("user-logins").value) });
              if (!result.ok) { show("users-error", result.message); return; }
              show("users-error", "");
              el("user-form").reset();
              showInvite("User " + result.data.user + " has been created. Share this link with them to set a password and authenticator (valid for " + result.data.ttl + "):", result.data.url);
              await loadUsers();
            });
            el("user-edit").addEventListener("submit", async function (event) {
              event.preventDefault();
              var name = el("user-edit").dataset.user;
              var result = await api("PUT", "users/" + encodeURIComponent(name), { roles: list(el("user-edit-roles").value) });
              if (!result.ok) { show("users-error", result.message); return; }
              show("users-error", "");
              el("user-edit").hidden = true;
              await loadUsers();
            });
            el("user-edit-cancel").addEventListener("click", function () { el("user-edit").hidden = true; });
          }

          // Roles
          var template = "kind: role\nversion: v7\nmetadata:\n  name: NEW-ROLE\nspec:\n  allow:\n    logins: []\n    node_labels:\n      '*': '*'\n";
          async function loadRoles() {
            var result = await api("GET", "roles");
            var listBox = el("roles-list");
            listBox.textContent = "";
            if (!result.ok) { show("roles-error", result.message); el("role-new").hidden = true; return; }
            show("roles-error", ""); el("role-new").hidden = false;
            result.data.items.forEach(function (role) {
              var item = document.createElement("li");
              button(item, role.name, "secondary", function () { openRole(role.name); }).setAttribute("aria-label", "Edit role " + role.name);
              listBox.appendChild(item);
            });
          }
          async function openRole(name) {
            var result = await api("GET", "roles/" + encodeURIComponent(name));
            if (!result.ok) { show("roles-error", result.message); return; }
            var form = el("role-form");
            form.dataset.name = name;
            form.dataset.revision = result.data.revision;
            el("role-title").textContent = "Role " + name;
            el("role-yaml").value = result.data.yaml;
            el("role-delete").hidden = false;
            el("role-delete").dataset.armed = ""; el("role-delete").textContent = "Delete role";
            show("role-status", ""); show("role-saved", "");
            form.hidden = false;
            el("role-yaml").focus();
          }
          function setupRoles() {
            el("role-new").addEventListener("click", function () {
              var form = el("role-form");
              form.dataset.name = ""; form.dataset.revision = "";
              el("role-title").textContent = "New role";
              el("role-yaml").value = template;
              el("role-delete").hidden = true;
              show("role-status", ""); show("role-saved", "");
              form.hidden = false;
              el("role-yaml").focus();
            });
            el("role-form").addEventListener("submit", async function (event) {
              event.preventDefault();
              var form = el("role-form");
              var name = form.dataset.name;
              var result = name
                ? await api("PUT", "roles/" + encodeURIComponent(name), { yaml: el("role-yaml").value, revision: form.dataset.revision })
                : await api("POST", "roles", { yaml: el("role-yaml").value });
              if (!result.ok) { show("role-saved", ""); show("role-status", result.message); return; }
              show("role-status", "");
              await loadRoles();
              await openRole(result.data.name);
              show("role-saved", "Role " + result.data.name + " has been saved.");
            });
            el("role-delete").addEventListener("click", async function () {
              var b = el("role-delete");
              var name = el("role-form").dataset.name;
              if (b.dataset.armed !== "yes") { b.dataset.armed = "yes"; b.textContent = "Confirm: delete " + name; return; }
              var result = await api("DELETE", "roles/" + encodeURIComponent(name));
              if (!result.ok) { show("role-status", result.message); return; }
              el("role-form").hidden = true;
              await loadRoles();
            });
          }

          // Locks
          async function loadLocks() {
            var result = await api("GET", "locks");
            var body = el("locks-body");
            body.textContent = "";
            if (!result.ok) { show("locks-error", result.message); el("locks-table").hidden = true; return; }
            show("locks-error", ""); el("locks-table").hidden = result.data.items.length === 0;
            el("locks-empty").hidden = result.data.items.length !== 0;
            result.data.items.forEach(function (lock) {
              var row = document.createElement("tr");
              cell(row, lock.target); cell(row, lock.message || ""); cell(row, when(lock.expires));
              confirmButton(cell(row, ""), "Delete", "lock " + lock.target, async function () {
                var removed = await api("DELETE", "locks/" + encodeURIComponent(lock.name));
                if (!removed.ok) { show("locks-error", removed.message); return; }
                await loadLocks();
              });
              body.appendChild(row);
            });
          }
          function setupLocks() {
            el("lock-form").addEventListener("submit", async function (event) {
              event.preventDefault();
              var result = await api("POST", "locks", {
                user: el("lock-user").value, login: el("lock-login").value, node: el("lock-node").value,
                message: el("lock-message").value, ttl: el("lock-ttl").value
              });
              if (!result.ok) { show("locks-error", result.message); return; }
              el("lock-form").reset();
              await loadLocks();
            });
          }

          // Join tokens
          async function loadTokens() {
            var result = await api("GET", "tokens");
            var body = el("tokens-body");
            body.textContent = "";
            if (!result.ok) { show("tokens-error", result.message); el("tokens-table").hidden = true; return; }
            show("tokens-error", ""); el("tokens-table").hidden = result.data.items.length === 0;
            el("tokens-empty").hidden = result.data.items.length !== 0;
            result.data.items.forEach(function (token) {
              var row = document.createElement("tr");
              cell(row, token.token); cell(row, (token.roles || []).join(", ")); cell(row, token.static ? "static" : when(token.expires));
              var actions = cell(row, "");
              if (!token.static) {
                confirmButton(actions, "Delete", "token " + token.token, async function () {
                  var removed = await api("DELETE", "tokens/" + encodeURIComponent(token.token));
                  if (!removed.ok) { show("tokens-error", removed.message); return; }
                  await loadTokens();
                });
              }
              body.appendChild(row);
            });
          }
          function setupTokens() {
            el("token-form").addEventListener("submit", async function (event) {
              event.preventDefault();
              var result = await api("POST", "tokens", { roles: [el("token-roles").value], ttl: el("token-ttl").value });
              if (!result.ok) { show("tokens-error", result.message); return; }
              show("tokens-error", "");
              el("token-text").textContent = "The " + result.data.roles + " token expires in " + result.data.ttl + ". Run this on the new host to join the cluster (" + result.data.auth_server + " must be reachable from it):";
              el("token-command").textContent = result.data.command;
              el("token-result").hidden = false;
              await loadTokens();
            });
          }

          document.addEventListener("DOMContentLoaded", function () {
            if (document.body.dataset.page !== "manage") { return; }
            var logout = el("logout");
            csrf = (logout && logout.dataset.csrf) || "";
            setupUsers(); setupRoles(); setupLocks(); setupTokens();
            Promise.all([loadUsers(), loadRoles(), loadLocks(), loadTokens()]).then(function () {
              document.body.dataset.loaded = "yes";
            });
          });
        })();
        """#
}
