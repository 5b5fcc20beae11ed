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

    static func document(title: String, body: String, page: String) -> String {
        """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(HTMLText.escape(title))</title>
        <link rel="stylesheet" href="/web/app.css">
        <script src="/web/app.js" defer></script>
        </head>
        <body data-page="\(page)">
        \(body)
        </body>
        </html>

        """
    }

    /// The login page: user, password and one-time code; `error` above the form.
    static func login(clusterName: String, error: String? = nil) -> String {
        var body = "<main class=\"card\">\n<h1>Sign in to Teleport</h1>\n"
        body += "<p class=\"cluster\">Cluster <strong>\(HTMLText.escape(clusterName))</strong></p>\n"
        body += "<p id=\"error\" class=\"error\" role=\"alert\"\(error == nil ? " hidden" : "")>\(HTMLText.escape(error ?? ""))</p>\n"
        body += "<form id=\"login-form\" method=\"post\" action=\"/webapi/sessions\">\n"
        body += "<label for=\"user\">User name</label>\n"
        body += "<input id=\"user\" name=\"user\" type=\"text\" autocomplete=\"username\" autocapitalize=\"none\" spellcheck=\"false\" required autofocus>\n"
        body += "<label for=\"password\">Password</label>\n"
        body += "<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\n"
        body += "<label for=\"otp_code\">Authenticator code</label>\n"
        body += "<input id=\"otp_code\" name=\"otp_code\" type=\"text\" inputmode=\"numeric\" autocomplete=\"one-time-code\" "
        body += "pattern=\"[0-9 ]{6,7}\" maxlength=\"7\" aria-describedby=\"otp-help\">\n"
        body += "<p id=\"otp-help\" class=\"help\">The 6-digit code your authenticator app shows for this account.</p>\n"
        body += "<button id=\"login\" type=\"submit\">Sign in</button>\n</form>\n"
        // Single sign-on connectors (GitHub, OIDC, SAML) add their buttons here.
        body += "<section id=\"sso\" aria-label=\"Single sign-on\" hidden></section>\n</main>\n"
        return document(title: "Sign in · Teleport", body: body, page: "login")
    }

    /// The signed-in page.
    static func home(_ info: AuthAPI.WebSessionInfo, clusterName: String) -> String {
        var body = "<header class=\"bar\">\n<span class=\"brand\">Teleport</span>\n"
        body += "<span class=\"cluster\">\(HTMLText.escape(clusterName))</span>\n"
        body += "<button id=\"logout\" type=\"button\" data-csrf=\"\(HTMLText.escape(info.csrfToken))\">Log out</button>\n</header>\n"
        body += "<main class=\"card\">\n<h1 id=\"signed-in\">Signed in as <span id=\"username\">\(HTMLText.escape(info.user))</span></h1>\n"
        body += "<p id=\"error\" class=\"error\" role=\"alert\" hidden></p>\n"
        body += "<dl>\n<dt>Roles</dt><dd id=\"roles\">\(HTMLText.escape(info.roles.joined(separator: ", ")))</dd>\n"
        let logins = info.logins.isEmpty ? "none" : info.logins.joined(separator: ", ")
        body += "<dt>Logins</dt><dd id=\"logins\">\(HTMLText.escape(logins))</dd>\n"
        body += "<dt>Session ends</dt><dd>at the latest <time datetime=\"\(RFC3339.format(info.expires))\">\(HTMLText.escape(RFC3339.format(info.expires)))</time>, "
        body += "or after a time without use</dd>\n</dl>\n</main>\n"
        return document(title: "Teleport", body: body, page: "home")
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
          document.addEventListener("DOMContentLoaded", function () {
            setupLogin();
            setupLogout();
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
        .bar .cluster { color: #c9c3ea; flex: 1; min-width: 0; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
        .bar button { background: transparent; color: #fff; border: 1px solid #8d84c4; }
        .card { max-width: 28rem; margin: 3rem auto; padding: 2rem; background: #fff; border: 1px solid var(--line); border-radius: 10px; }
        body[data-page="home"] .card { max-width: 48rem; }
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
        }

        """
}
