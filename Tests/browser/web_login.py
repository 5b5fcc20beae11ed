#!/usr/bin/env python3
"""Logs in to the proxy's web UI in a real browser (Debian's chromium driven by Playwright):
password + TOTP through the login page, sees "Signed in as USER", with --node opens the
servers page and filters it by a label chip (--chip), logs out, and checks that the
old session cookie is refused afterwards. Saves screenshots to --artifacts.

Run by WebBrowserTests (Tests/TeleportIntegrationTests); exits 0 on success, 1 on a failed check,
77 when chromium or Playwright is missing (the caller reports a skip).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from webtest import WebTest  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--node", help="a server the user may reach: /web/nodes must list it")
    parser.add_argument("--other-node", help="a server without --chip's label: the chip must hide it")
    parser.add_argument("--chip", help="a label key=value of --node to filter by")
    t = WebTest.from_arguments(parser)
    args, check = t.args, t.check

    with t.playwright() as p:
        from playwright.sync_api import expect
        browser = t.launch(p)
        page = t.new_page(browser)
        context = page.context

        page.goto(args.url + "/web/login")
        expect(page.get_by_role("heading", name="Sign in to Teleport")).to_be_visible()
        t.shots(page, "login")

        # A wrong code first: the error appears in place, as a sentence.
        page.get_by_label("User name").fill(args.user)
        page.get_by_label("Password").fill(args.password)
        page.get_by_label("Authenticator code").fill(t.codes.wrong())
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("Invalid user name, password or one-time code")
        t.shots(page, "login-error", narrow=False)

        # The right code: a step after the last one used (the server accepts one step ahead).
        page.get_by_label("Password").fill(args.password)
        page.get_by_label("Authenticator code").fill(t.codes.next())
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/web/")
        expect(page.get_by_role("heading", name=f"Signed in as {args.user}")).to_be_visible()
        check(True, f"signed in as {args.user}")
        t.shots(page, "home")

        cookies = [c for c in context.cookies() if c["name"] == "__Host-session"]
        check(len(cookies) == 1, "the browser holds the __Host-session cookie")
        if cookies:
            cookie = cookies[0]
            check(cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/",
                  "cookie flags: " + ", ".join(f"{k}={cookie[k]}" for k in ("path", "secure", "httpOnly", "sameSite")))
            check(page.evaluate("document.cookie").find("__Host-session") < 0, "page scripts cannot read the session cookie")

        if args.node:
            # The resources page: the node in the table; a label chip filters the list.
            page.get_by_role("link", name="Servers you can reach").click()
            page.wait_for_url("**/web/nodes")
            rows = page.locator("#nodes-body tr")
            expect(rows.filter(has_text=args.node)).to_have_count(1)
            check(True, f"/web/nodes lists {args.node}")
            if args.other_node:
                expect(rows.filter(has_text=args.other_node)).to_have_count(1)
            if args.chip:
                rows.filter(has_text=args.node).get_by_role("button", name=args.chip).click()
                expect(page.locator("#chips").get_by_role("button", name=f"Remove filter {args.chip}")).to_be_visible()
                if args.other_node:
                    expect(rows.filter(has_text=args.other_node)).to_have_count(0)
                expect(rows.filter(has_text=args.node)).to_have_count(1)
                check(True, f"the label chip {args.chip} filters the list")
            injected = page.evaluate("document.querySelectorAll('#nodes-body script').length")
            check(injected == 0, f"no label value became markup ({injected} script elements in the table)")
            t.shots(page, "nodes")

        page.get_by_role("button", name="Log out").click()
        page.wait_for_url("**/web/login")
        check(True, "logged out, back on the login page")
        page.goto(args.url + "/web/")
        page.wait_for_url("**/web/login")
        check(True, "/web/ sends a logged-out browser to the login page")

        if cookies:
            api = p.request.new_context(ignore_https_errors=True,
                                        extra_http_headers={"Cookie": f"__Host-session={cookies[0]['value']}"})
            status = api.get(args.url + "/webapi/me").status
            check(status == 401, f"the old cookie is refused after logout (HTTP {status})")
            api.dispose()
        browser.close()
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
