#!/usr/bin/env python3
"""The web UI's Management and Account pages in a real browser (Debian's chromium driven by
Playwright): an administrator signs in, creates a user in Management and gets the invite link; a
SECOND browser context completes the invite (password + TOTP on the signup page) and signs in as
the new user, who then changes the password on the Account page and signs in again with it.
Saves screenshots of the Management and Account pages (1280 and 400 px wide) to --artifacts.

Run by WebManageBrowserTests (Tests/TeleportIntegrationTests); exits 0 on success, 1 on a failed
check, 77 when chromium or Playwright is missing (the caller reports a skip).
"""
import argparse
import base64
import hashlib
import hmac
import os
import re
import struct
import sys
import time
from urllib.parse import urlparse

CHROMIUM = "/usr/bin/chromium"


def totp(secret_base32: str, step: int) -> str:
    """RFC 6238: HMAC-SHA1, 30 s steps, 6 digits."""
    padded = secret_base32 + "=" * (-len(secret_base32) % 8)
    key = base64.b32decode(padded)
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


class Codes:
    """Codes the server accepts once each: a step after the last one used, at most one step ahead
    of now (waiting for the clock when needed)."""

    def __init__(self, secret: str, last_used: float):
        self.secret = secret
        self.last_step = int(last_used) // 30

    def next(self) -> str:
        while True:
            now = int(time.time()) // 30
            candidate = max(self.last_step + 1, now)
            if candidate <= now + 1:
                self.last_step = candidate
                return totp(self.secret, candidate)
            time.sleep(1)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True, help="https://HOST:PORT of the proxy")
    parser.add_argument("--user", required=True, help="an administrator (rules for users, roles, tokens, locks)")
    parser.add_argument("--password", required=True)
    parser.add_argument("--secret", required=True, help="the administrator's TOTP secret (base32)")
    parser.add_argument("--after", type=float, required=True, help="unix time of the last TOTP code used")
    parser.add_argument("--new-user", required=True, help="the user to create in Management")
    parser.add_argument("--artifacts", required=True)
    args = parser.parse_args()

    if not os.access(CHROMIUM, os.X_OK):
        print(f"SKIP: {CHROMIUM} is missing (apt-get install chromium; scripts/install-test-deps.sh)")
        return 77
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        print("SKIP: the playwright Python module is missing (pip install playwright; scripts/install-test-deps.sh)")
        return 77

    os.makedirs(args.artifacts, exist_ok=True)
    failures = []
    csp_violations = []

    def check(condition, what):
        print(("ok: " if condition else "FAIL: ") + what, flush=True)
        if not condition:
            failures.append(what)

    def shots(page, name):
        page.screenshot(path=os.path.join(args.artifacts, f"{name}-1280.png"), full_page=True)
        page.set_viewport_size({"width": 400, "height": 800})
        page.screenshot(path=os.path.join(args.artifacts, f"{name}-400.png"), full_page=True)
        width = page.evaluate("document.documentElement.scrollWidth")
        check(width <= 400, f"{name}: no horizontal scrolling at 400 px (scrollWidth {width})")
        page.set_viewport_size({"width": 1280, "height": 800})

    def sign_in(page, user, password, code):
        page.goto(args.url + "/web/login")
        page.get_by_label("User name").fill(user)
        page.get_by_label("Password").fill(password)
        page.get_by_label("Authenticator code").fill(code)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/web/")
        expect(page.get_by_role("heading", name=f"Signed in as {user}")).to_be_visible()

    new_password = "a fresh passphrase 2024"
    changed_password = "and another one, changed 77"

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        expect.set_options(timeout=30_000)

        # The administrator, in the first context.
        admin_context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 800})
        admin = admin_context.new_page()
        admin.set_default_timeout(30_000)
        admin.on("console", lambda m: csp_violations.append(m.text) if "Content Security Policy" in m.text else None)
        admin_codes = Codes(args.secret, args.after)
        sign_in(admin, args.user, args.password, admin_codes.next())
        check(True, f"signed in as {args.user}")

        admin.get_by_role("link", name="Management").click()
        admin.wait_for_url("**/web/manage")
        expect(admin.locator("body[data-loaded=yes]")).to_have_count(1)
        expect(admin.locator("#users-body tr").filter(has_text=args.user)).to_have_count(1)
        check(True, "Management lists the users")
        expect(admin.locator("#roles-list").get_by_role("button", name="Edit role access")).to_be_visible()

        admin.locator("#user-name").fill(args.new_user)
        admin.locator("#user-roles").fill("access")
        admin.locator("#user-logins").fill(args.new_user)
        admin.get_by_role("button", name="Create user").click()
        link = admin.locator("#invite-url")
        expect(link).to_contain_text("/web/newuser/")
        invite = link.text_content() or ""
        check("/web/newuser/" in invite, f"the invite link is shown: {invite}")
        expect(admin.locator("#users-body tr").filter(has_text=args.new_user)).to_have_count(1)

        # A role opened for editing: its YAML in the textarea; a broken edit shows the error in place.
        admin.locator("#roles-list").get_by_role("button", name="Edit role access").click()
        expect(admin.locator("#role-yaml")).to_have_value(re.compile("kind: role"))
        yaml = admin.locator("#role-yaml").input_value()
        check("kind: role" in yaml, "the role's YAML is in the editor")
        admin.locator("#role-yaml").fill("kind: role\nmetadata: [unclosed\n")
        admin.get_by_role("button", name="Save role").click()
        expect(admin.locator("#role-status")).to_be_visible()
        check(bool(admin.locator("#role-status").text_content()), "an invalid role is refused in place: " + (admin.locator("#role-status").text_content() or ""))
        admin.locator("#role-yaml").fill(yaml)

        # A join token: the teleport start line.
        admin.get_by_role("button", name="Create token").click()
        expect(admin.locator("#token-command")).to_contain_text("teleport start --roles=node --token=")
        check(True, "a join token shows the teleport start line")
        shots(admin, "manage")

        # The invite, in a second context: set a password and enrol TOTP on the signup page.
        user_context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 800})
        user = user_context.new_page()
        user.set_default_timeout(30_000)
        user.on("console", lambda m: csp_violations.append(m.text) if "Content Security Policy" in m.text else None)
        # The link names the proxy's public address; the browser here reaches it at --url.
        user.goto(args.url + urlparse(invite).path)
        secret = (user.locator("#totp-secret").text_content() or "").strip()
        check(len(secret) >= 16, "the signup page shows a TOTP key")
        user.locator("#password").fill(new_password)
        user.locator("#password_confirm").fill(new_password)
        enrolled_at = time.time()
        user.locator("#otp_code").fill(totp(secret, int(enrolled_at) // 30))
        user.get_by_role("button", name="Create account").click()
        expect(user.get_by_role("heading", name="Your account is ready")).to_be_visible()
        check(True, "the invite link was completed in a second browser context")
        user_codes = Codes(secret, enrolled_at)
        sign_in(user, args.new_user, new_password, user_codes.next())
        check(True, f"the new user {args.new_user} signs in")

        # Management for a user without rules: a sentence, no table.
        user.goto(args.url + "/web/manage")
        expect(user.locator("#users-error")).to_contain_text("You are not allowed")
        check(True, "Management tells a user without rights so in a sentence")

        # The account page: the authenticator, then a password change.
        user.get_by_role("link", name="Account").click()
        user.wait_for_url("**/web/account")
        expect(user.locator("#totp-device")).to_contain_text("added")
        user.locator("#pw-current").fill(new_password)
        user.locator("#pw-code").fill(user_codes.next())
        user.locator("#pw-new").fill(changed_password)
        user.locator("#pw-confirm").fill(changed_password)
        user.get_by_role("button", name="Change password").click()
        expect(user.locator("#password-done")).to_contain_text("Your password has been changed")
        check(True, "the password was changed on the Account page")
        shots(user, "account")

        user.get_by_role("button", name="Log out").click()
        user.wait_for_url("**/web/login")
        user.get_by_label("User name").fill(args.new_user)
        user.get_by_label("Password").fill(new_password)
        user.get_by_label("Authenticator code").fill(user_codes.next())
        user.get_by_role("button", name="Sign in").click()
        expect(user.get_by_role("alert")).to_contain_text("Invalid user name, password or one-time code")
        check(True, "the old password is refused")
        sign_in(user, args.new_user, changed_password, user_codes.next())
        check(True, "the new password signs in")

        check(not csp_violations, f"no Content-Security-Policy violations {csp_violations}")
        browser.close()

    print(f"screenshots: {args.artifacts}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
