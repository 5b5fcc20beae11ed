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
import os
import re
import sys
import time
from urllib.parse import urlparse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from webtest import Codes, WebTest, totp  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--new-user", required=True, help="the user to create in Management")
    t = WebTest.from_arguments(parser)
    args, check, shots, sign_in = t.args, t.check, t.shots, t.sign_in

    new_password = "a fresh passphrase 2024"
    changed_password = "and another one, changed 77"

    with t.playwright() as p:
        from playwright.sync_api import expect
        browser = t.launch(p)

        # The administrator, in the first context.
        admin = t.new_page(browser)
        sign_in(admin, args.user, args.password, t.codes.next())
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
        user = t.new_page(browser)
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
        # Checking the current password and hashing the new one are slow on purpose; on a loaded
        # machine (the whole suite at once) they took longer than the usual wait.
        expect(user.locator("#password-done:not([hidden]), #password-error:not([hidden])")).to_be_visible(timeout=120_000)
        expect(user.locator("#password-done")).to_contain_text("Your password has been changed", timeout=5_000)
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

        browser.close()
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
