import TeleportAPI

/// The Account page (`/web/account`): change the password; see and replace the authenticator.
/// Behaviour in `/web/js/account.js` (``AccountRoutes``); looks from `/web/css/manage.css`.
enum AccountPage {
    static func html(_ info: AuthAPI.WebSessionInfo, clusterName: String) -> String {
        var main = "<link rel=\"stylesheet\" href=\"/web/css/manage.css\">\n<h1>Account</h1>\n"
        main += "<p>Signed in as <strong id=\"account-user\">\(HTMLText.escape(info.user))</strong></p>\n"

        main += "<section id=\"password\" aria-labelledby=\"password-title\">\n<h2 id=\"password-title\">Change password</h2>\n"
        main += "<form id=\"password-form\" class=\"inline-form\">\n"
        main += "<label for=\"pw-current\">Current password</label><input id=\"pw-current\" type=\"password\" autocomplete=\"current-password\" required>\n"
        main += "<label for=\"pw-code\">Authenticator code</label><input id=\"pw-code\" type=\"text\" inputmode=\"numeric\" autocomplete=\"one-time-code\" pattern=\"[0-9 ]{6,7}\" maxlength=\"7\" required>\n"
        main += "<label for=\"pw-new\">New password</label><input id=\"pw-new\" type=\"password\" autocomplete=\"new-password\" minlength=\"12\" required aria-describedby=\"pw-help\">\n"
        main += "<p id=\"pw-help\" class=\"help\">At least 12 characters.</p>\n"
        main += "<label for=\"pw-confirm\">New password again</label><input id=\"pw-confirm\" type=\"password\" autocomplete=\"new-password\" minlength=\"12\" required>\n"
        main += "<p id=\"password-error\" class=\"error\" role=\"alert\" hidden></p>\n<p id=\"password-done\" class=\"ok\" role=\"status\" hidden></p>\n"
        main += "<button id=\"password-save\" type=\"submit\">Change password</button>\n</form>\n</section>\n"

        main += "<section id=\"totp\" aria-labelledby=\"totp-title\">\n<h2 id=\"totp-title\">Authenticator</h2>\n"
        main += "<p id=\"totp-device\">Loading…</p>\n"
        main += "<form id=\"totp-begin\" class=\"inline-form\">\n<h3>Replace the authenticator</h3>\n"
        main += "<label for=\"totp-password\">Current password</label><input id=\"totp-password\" type=\"password\" autocomplete=\"current-password\" required>\n"
        main += "<label for=\"totp-code\">Code of your current authenticator</label><input id=\"totp-code\" type=\"text\" inputmode=\"numeric\" autocomplete=\"one-time-code\" maxlength=\"7\" required>\n"
        main += "<p id=\"totp-error\" class=\"error\" role=\"alert\" hidden></p>\n"
        main += "<button id=\"totp-start\" type=\"submit\">Continue</button>\n</form>\n"
        main += "<form id=\"totp-confirm\" class=\"inline-form\" hidden>\n<h3>Add the new authenticator</h3>\n"
        main += "<p>Add this account to your authenticator app with the link or the key, then enter the code it shows.</p>\n"
        main += "<p><a id=\"totp-uri\" href=\"#\" rel=\"noreferrer\">Open in an authenticator app</a></p>\n"
        main += "<p>Key (base32): <code id=\"totp-secret\"></code></p>\n"
        main += "<label for=\"totp-new-code\">Code of the new authenticator</label><input id=\"totp-new-code\" type=\"text\" inputmode=\"numeric\" autocomplete=\"one-time-code\" maxlength=\"7\" required>\n"
        main += "<p id=\"totp-confirm-error\" class=\"error\" role=\"alert\" hidden></p>\n"
        main += "<button id=\"totp-finish\" type=\"submit\">Replace authenticator</button>\n</form>\n"
        main += "<p id=\"totp-done\" class=\"ok\" role=\"status\" hidden></p>\n</section>\n"
        return WebUIPages.shell(info, clusterName: clusterName, title: "Account", page: "account", main: main, scripts: ["/web/js/account.js"], wide: false)
    }

    /// The page's behaviour; values go into the page with `textContent` only.
    static let script = #"""
        "use strict";
        (function () {
          var csrf = "";
          function el(id) { return document.getElementById(id); }
          function show(id, text) { var box = el(id); box.textContent = text; box.hidden = !text; }
          function sentence(text) {
            text = String(text || "The request failed");
            text = text.replace(/[\s:]+$/, "");
            return text.charAt(0).toUpperCase() + text.slice(1) + (/[.!?)]$/.test(text) ? "" : ".");
          }
          async function api(method, path, body) {
            var options = { method: method, credentials: "same-origin", headers: {} };
            if (method !== "GET") { options.headers["X-CSRF-Token"] = csrf; }
            if (body !== undefined) { options.headers["Content-Type"] = "application/json"; options.body = JSON.stringify(body); }
            var response;
            try { response = await fetch("/webapi/account/" + path, options); } catch (e) {
              return { ok: false, message: "The proxy cannot be reached; check your connection and try again." };
            }
            if (response.status === 401) { window.location.assign("/web/login"); return { ok: false, message: "Your session has ended." }; }
            var data = null;
            try { data = await response.json(); } catch (e) { data = null; }
            if (!response.ok) { return { ok: false, message: sentence(data && data.error && data.error.message) }; }
            return { ok: true, data: data || {} };
          }
          async function loadDevice() {
            var result = await api("GET", "totp");
            if (!result.ok) { el("totp-device").textContent = result.message; return; }
            el("totp-device").textContent = result.data.enrolled
              ? "An authenticator app (TOTP) is enrolled" + (result.data.added ? ", added " + new Date(result.data.added).toLocaleString() + "." : ".")
              : "No authenticator is enrolled.";
          }
          document.addEventListener("DOMContentLoaded", function () {
            if (document.body.dataset.page !== "account") { return; }
            csrf = (el("logout") && el("logout").dataset.csrf) || "";
            el("password-form").addEventListener("submit", async function (event) {
              event.preventDefault();
              show("password-done", "");
              if (el("pw-new").value !== el("pw-confirm").value) { show("password-error", "The new password and its confirmation do not match."); return; }
              el("password-save").disabled = true;
              var result = await api("POST", "password", {
                current_password: el("pw-current").value, otp_code: el("pw-code").value,
                new_password: el("pw-new").value, new_password_confirm: el("pw-confirm").value
              });
              el("password-save").disabled = false;
              if (!result.ok) { show("password-error", result.message); return; }
              show("password-error", "");
              el("password-form").reset();
              show("password-done", "Your password has been changed. Use the new one the next time you sign in.");
            });
            el("totp-begin").addEventListener("submit", async function (event) {
              event.preventDefault();
              el("totp-start").disabled = true;
              var result = await api("POST", "totp/begin", { current_password: el("totp-password").value, otp_code: el("totp-code").value });
              el("totp-start").disabled = false;
              if (!result.ok) { show("totp-error", result.message); return; }
              show("totp-error", "");
              el("totp-begin").reset();
              el("totp-begin").hidden = true;
              el("totp-uri").href = result.data.uri;
              el("totp-secret").textContent = result.data.secret;
              el("totp-confirm").hidden = false;
              el("totp-new-code").focus();
            });
            el("totp-confirm").addEventListener("submit", async function (event) {
              event.preventDefault();
              var result = await api("POST", "totp/confirm", { otp_code: el("totp-new-code").value });
              if (!result.ok) { show("totp-confirm-error", result.message); return; }
              show("totp-confirm-error", "");
              el("totp-confirm").reset();
              el("totp-confirm").hidden = true;
              el("totp-begin").hidden = false;
              show("totp-done", "Your new authenticator is in use; codes of the old one no longer work.");
              await loadDevice();
            });
            loadDevice();
          });
        })();
        """#
}
