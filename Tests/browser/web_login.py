#!/usr/bin/env python3
"""Logs in to the proxy's web UI in a real browser (Debian's chromium driven by Playwright):
password + TOTP through the login page, sees "Signed in as USER", with --node opens the
servers page and filters it by a label chip (--chip), logs out, and checks that the
old session cookie is refused afterwards. Saves screenshots to --artifacts.

Run by WebBrowserTests (Tests/TeleportIntegrationTests); exits 0 on success, 1 on a failed check,
77 when chromium or Playwright is missing (the caller reports a skip).
"""
import argparse
import base64
import hashlib
import hmac
import os
import struct
import sys
import time

CHROMIUM = "/usr/bin/chromium"


def totp(secret_base32: str, at: float) -> str:
    """RFC 6238: HMAC-SHA1, 30 s steps, 6 digits."""
    padded = secret_base32 + "=" * (-len(secret_base32) % 8)
    key = base64.b32decode(padded)
    digest = hmac.new(key, struct.pack(">Q", int(at) // 30), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True, help="https://HOST:PORT of the proxy")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--secret", required=True, help="the user's TOTP secret (base32)")
    parser.add_argument("--after", type=float, required=True, help="unix time of the last TOTP step used")
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("--node", help="a server the user may reach: /web/nodes must list it")
    parser.add_argument("--other-node", help="a server without --chip's label: the chip must hide it")
    parser.add_argument("--chip", help="a label key=value of --node to filter by")
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

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.on("console", lambda m: csp_violations.append(m.text) if "Content Security Policy" in m.text else None)
        page.set_default_timeout(30_000)
        # Assertions have their own timeout (5 s by default): a loaded CI machine answers a refused
        # login slowly (refusals share one timing class), so give them the same 30 s.
        expect.set_options(timeout=30_000)

        page.goto(args.url + "/web/login")
        expect(page.get_by_role("heading", name="Sign in to Teleport")).to_be_visible()
        page.screenshot(path=os.path.join(args.artifacts, "login-1280.png"), full_page=True)
        page.set_viewport_size({"width": 400, "height": 800})
        page.screenshot(path=os.path.join(args.artifacts, "login-400.png"), full_page=True)
        page.set_viewport_size({"width": 1280, "height": 800})

        # A wrong code first: the error appears in place, as a sentence.
        page.get_by_label("User name").fill(args.user)
        page.get_by_label("Password").fill(args.password)
        page.get_by_label("Authenticator code").fill("000000" if totp(args.secret, args.after + 30) != "000000" else "111111")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("Invalid user name, password or one-time code")
        page.screenshot(path=os.path.join(args.artifacts, "login-error-1280.png"), full_page=True)

        # The right code: a step after the last one used (the server accepts one step ahead).
        page.get_by_label("Password").fill(args.password)
        page.get_by_label("Authenticator code").fill(totp(args.secret, args.after + 30))
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/web/")
        expect(page.get_by_role("heading", name=f"Signed in as {args.user}")).to_be_visible()
        check(True, f"signed in as {args.user}")
        page.screenshot(path=os.path.join(args.artifacts, "home-1280.png"), full_page=True)
        page.set_viewport_size({"width": 400, "height": 800})
        page.screenshot(path=os.path.join(args.artifacts, "home-400.png"), full_page=True)
        width = page.evaluate("document.documentElement.scrollWidth")
        check(width <= 400, f"no horizontal scrolling at 400 px (scrollWidth {width})")
        page.set_viewport_size({"width": 1280, "height": 800})

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
            page.screenshot(path=os.path.join(args.artifacts, "nodes-1280.png"), full_page=True)
            page.set_viewport_size({"width": 400, "height": 800})
            page.screenshot(path=os.path.join(args.artifacts, "nodes-400.png"), full_page=True)
            page.set_viewport_size({"width": 1280, "height": 800})

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
        check(not csp_violations, f"no Content-Security-Policy violations {csp_violations}")
        browser.close()

    print(f"screenshots: {args.artifacts}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
