import Foundation
import TeleportAPI

/// The HTML of the signup and reset pages (`/web/newuser/:token`, `/web/reset/:token`): plain forms
/// that work without JavaScript, no external resources (the pages' CSP forbids them). Every value
/// from outside is escaped here.
enum UserTokenPage {
    /// The form: password, confirmation and, when the cluster uses OTP, the TOTP secret to enrol and
    /// a code field. `error` is shown above the form.
    static func form(_ info: AuthAPI.UserTokenInfo, csrfToken: String, error: String? = nil) -> String {
        let user = HTMLText.escape(info.user)
        let heading = info.kind == .reset ? "Reset your password" : "Create your account"
        var body = "<h1>\(heading)</h1>\n"
        body += "<p>User <strong id=\"user\">\(user)</strong>"
        if let cluster = info.clusterName { body += " in cluster <strong>\(HTMLText.escape(cluster))</strong>" }
        body += ". This link expires at \(HTMLText.escape(RFC3339.format(info.expires))).</p>\n"
        if let error { body += "<p class=\"error\" role=\"alert\">\(HTMLText.escape(error))</p>\n" }
        body += "<form method=\"post\" autocomplete=\"off\">\n"
        body += "<input type=\"hidden\" name=\"csrf_token\" value=\"\(HTMLText.escape(csrfToken))\">\n"
        body += "<label for=\"password\">New password</label>\n"
        body += "<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" required>\n"
        body += "<label for=\"password_confirm\">Confirm the password</label>\n"
        body += "<input id=\"password_confirm\" name=\"password_confirm\" type=\"password\" autocomplete=\"new-password\" required>\n"
        if let secret = info.totpSecret {
            let uri = OTPAuthURI.make(cluster: info.clusterName ?? "teleport", user: info.user, secret: secret)
            body += "<fieldset>\n<legend>Second factor</legend>\n"
            body += "<p>Add this account to an authenticator app (Google Authenticator, Authy, 1Password, ...): "
            body += "open the link below on the device that runs the app, or type the key in by hand.</p>\n"
            body += "<p>Key (base32): <code id=\"totp-secret\">\(HTMLText.escape(secret))</code></p>\n"
            body += "<p>Link: <a href=\"\(HTMLText.escape(uri))\"><code id=\"totp-uri\">\(HTMLText.escape(uri))</code></a></p>\n"
            body += "<label for=\"otp_code\">The 6-digit code the app shows now</label>\n"
            body += "<input id=\"otp_code\" name=\"otp_code\" type=\"text\" inputmode=\"numeric\" autocomplete=\"one-time-code\" "
            body += "pattern=\"[0-9]{6}\" maxlength=\"6\" required>\n"
            body += "</fieldset>\n"
        }
        body += "<button type=\"submit\">\(info.kind == .reset ? "Reset password" : "Create account")</button>\n</form>\n"
        return document(title: heading, body: body)
    }

    /// The page after a completed signup or reset: how to log in with `tsh`.
    ///
    /// With a self-signed proxy certificate the command carries `--insecure` (tsh cannot verify
    /// such a certificate) and the page says what that means; when the signup set up an
    /// authenticator, it says to wait for the app's next code (the one just entered is used).
    static func success(_ info: AuthAPI.UserTokenInfo, publicAddr: String, selfSignedCertificate: Bool = false) -> String {
        let heading = info.kind == .reset ? "Your password has been reset" : "Your account is ready"
        let command = "tsh login --proxy=\(publicAddr) --user=\(info.user)" + (selfSignedCertificate ? " --insecure" : "")
        var body = "<h1>\(heading)</h1>\n"
        body += "<p>Log in from a terminal with:</p>\n<pre id=\"login-command\">\(HTMLText.escape(command))</pre>\n"
        if selfSignedCertificate {
            body += "<p id=\"insecure-note\">This proxy uses a self-signed HTTPS certificate, which tsh cannot verify: "
            body += "<code>--insecure</code> tells it to accept it. Use it only on a test cluster or a network you trust; "
            body += "an administrator can install a certificate from a trusted authority (<code>proxy_service.https_keypairs</code>) "
            body += "so that it is not needed.</p>\n"
        }
        if info.totpSecret != nil {
            body += "<p id=\"otp-note\">The code you just entered is used up: when tsh asks for one, wait for the next code "
            body += "your app shows (a new one every 30 seconds).</p>\n"
        }
        body += "<p>tsh asks for your password"
        if info.totpSecret != nil { body += " and for the current code of your authenticator app" }
        body += ", then keeps short-lived certificates for <code>ssh</code> and <code>tsh ssh</code>.</p>\n"
        return document(title: heading, body: body)
    }

    /// The page for a token that is unknown, expired or used; `detail` is the auth service's reason.
    static func invalid(detail: String?) -> String {
        var body = "<h1>Invitation not valid</h1>\n"
        body += "<p class=\"error\">This invitation is invalid or has expired; ask your administrator for a new one.</p>\n"
        // The auth service's reason, unless it only repeats the sentence above.
        if let detail, !detail.isEmpty, !detail.lowercased().contains("invalid or has expired") {
            body += "<p class=\"detail\">Reason: \(HTMLText.escape(detail))</p>\n"
        }
        return document(title: "Invitation not valid", body: body)
    }

    /// Any other failure: a title and a message, both escaped.
    static func error(title: String, message: String) -> String {
        document(
            title: title,
            body: "<h1>\(HTMLText.escape(title))</h1>\n<p class=\"error\" role=\"alert\">\(HTMLText.escape(message))</p>\n")
    }

    /// The page around `body` (already HTML); `title` is escaped.
    static func document(title: String, body: String) -> String {
        """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="referrer" content="no-referrer">
        <title>\(HTMLText.escape(title)) · Teleport</title>
        <style>\(style)</style>
        </head>
        <body>
        <main>
        \(body)</main>
        </body>
        </html>

        """
    }

    static let style = """
        body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1b1d21;margin:0}\
        main{max-width:34rem;margin:3rem auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0002}\
        label{display:block;margin-top:1rem;font-weight:600}\
        input{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem;margin-top:.25rem}\
        fieldset{margin-top:1.5rem;border:1px solid #ccd;border-radius:6px}\
        code,pre{font-family:ui-monospace,monospace;word-break:break-all;white-space:pre-wrap}\
        pre{background:#f0f1f4;padding:.75rem;border-radius:4px}\
        button{margin-top:1.5rem;padding:.6rem 1.2rem;font-size:1rem}\
        .error{color:#b00020;font-weight:600}.detail{color:#555}
        """
}
