#!/usr/bin/env python3
"""Completes a single sign-on login in a real browser (Debian's chromium driven by Playwright): fills the
identity provider's login form (#username, #password, #submit: the test OIDC provider's and the GitHub
stand-in's) and follows the redirects to the end.

Two flows:
  tsh:  --url URL (what `tsh login --auth=NAME --browser=none` printed): open it, sign in on the provider,
        follow the provider -> proxy callback -> tsh's own 127.0.0.1 callback; with --expect success the
        last page must say "Login successful".
  web:  --url https://PROXY --web-connector NAME: open the proxy's /web/login, click that connector's
        button (data-connector=NAME), sign in on the provider, land on /web/ "Signed in as --expect-user",
        and check that the session cookie works (GET /webapi/me answers 200 with it).
--capture-callback stops at the proxy's /v1/webapi/*/callback request (it is not sent), prints
"callback: URL" and exits 0: the test then replays or tampers with it itself.

Prints "nav: URL" per page the browser loads, "final: URL", "heading: TEXT", "text: BODY" and
"ok: ..."/"FAIL: ..." per check. Exits 0 when every check passed, 1 otherwise, 77 when chromium or
Playwright is missing (the caller reports a skip).
"""
import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from webtest import CHROMIUM, TIMEOUT_MS  # noqa: E402

failures = []


def check(condition, what):
    print(("ok: " if condition else "FAIL: ") + what, flush=True)
    if not condition:
        failures.append(what)
    return condition


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True, help="tsh's login URL, or with --web-connector the proxy's https://HOST:PORT")
    parser.add_argument("--user", required=True, help="the identity provider's user")
    parser.add_argument("--password", required=True)
    parser.add_argument("--web-connector", help="web flow: the connector whose button to click on /web/login")
    parser.add_argument("--expect", choices=["success", "failure", "any"], default="success")
    parser.add_argument("--expect-user", help="web flow: the Teleport user the page must say is signed in")
    parser.add_argument("--capture-callback", action="store_true",
                        help="stop at the proxy's callback request and print its URL instead of sending it")
    parser.add_argument("--artifacts", help="a directory for screenshots")
    args = parser.parse_args()
    if not os.access(CHROMIUM, os.X_OK):
        print(f"SKIP: {CHROMIUM} is missing (apt-get install chromium; scripts/install-test-deps.sh)")
        return 77
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        print("SKIP: the playwright Python module is missing (pip install playwright; scripts/install-test-deps.sh)")
        return 77
    expect.set_options(timeout=TIMEOUT_MS)

    def shot(page, name):
        if args.artifacts:
            os.makedirs(args.artifacts, exist_ok=True)
            page.screenshot(path=os.path.join(args.artifacts, f"{name}.png"), full_page=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("framenavigated", lambda frame: print("nav: " + frame.url, flush=True) if frame == page.main_frame else None)
        captured = []
        if args.capture_callback:
            # Playwright does not route the requests of a followed redirect, so the provider's answer to
            # the login form is fetched here without following it, and its Location kept.
            def hold(route):
                if route.request.method != "POST":
                    route.continue_()
                    return
                response = route.fetch(max_redirects=0)
                location = response.headers.get("location", "")
                if "/callback" in location:
                    captured.append(location)
                    print("callback: " + location, flush=True)
                    route.abort()
                else:
                    route.fulfill(response=response)
            context.route(lambda url: "/authorize" in url, hold)

        if args.web_connector:
            page.goto(args.url.rstrip("/") + "/web/login")
            button = page.locator(f'[data-connector="{args.web_connector}"]')
            expect(button).to_be_visible()
            check(True, f"the login page shows the button {button.inner_text().strip()!r}")
            shot(page, "sso-login-page")
            button.click()
        else:
            page.goto(args.url)

        # The provider's login form (or its error page: a refused authorization request).
        page.locator("#username, #error").first.wait_for()
        provider_origin = page.url.split("/", 3)[:3]
        if page.locator("#username").count() == 0:
            print("provider-error: " + page.locator("#error").inner_text(), flush=True)
            check(args.expect != "success", f"the provider refused the authorization request (expected: {args.expect})")
            browser.close()
            return 1 if failures else 0
        check(True, "the provider's login form: " + page.url.split("?")[0])
        page.locator("#username").fill(args.user)
        page.locator("#password").fill(args.password)
        shot(page, "provider-login")
        if args.capture_callback:
            with page.expect_event("requestfailed", lambda r: r.method == "POST"):
                page.locator("#submit").click(no_wait_after=True)
            check(bool(captured), "the provider sent the browser to the proxy's callback (held back)")
            browser.close()
            return 1 if failures else 0
        page.locator("#submit").click()
        page.wait_for_load_state("load")
        if page.url.split("/", 3)[:3] == provider_origin and page.locator("#error").count():
            print("provider-error: " + page.locator("#error").inner_text(), flush=True)
            check(args.expect != "success", f"the provider refused the sign-in (expected: {args.expect})")
            browser.close()
            return 1 if failures else 0
        # Away from the provider: the proxy's callback and whatever it redirects to.
        page.wait_for_url(lambda url: url.split("/", 3)[:3] != provider_origin)
        page.wait_for_load_state("load")
        if args.web_connector and args.expect == "success":
            page.wait_for_url(re.compile(r"^https://[^/]+/web/?$"))
            page.wait_for_load_state("load")
        heading = page.locator("h1").first.inner_text() if page.locator("h1").count() else ""
        text = page.locator("body").inner_text() if page.locator("body").count() else ""
        print("final: " + page.url, flush=True)
        print("heading: " + heading.strip(), flush=True)
        print("text: " + " ".join(text.split())[:2000], flush=True)
        shot(page, "final")

        if args.web_connector:
            if args.expect == "success":
                name = args.expect_user or args.user
                expect(page.get_by_role("heading", name=f"Signed in as {name}")).to_be_visible()
                check(True, f"signed in as {name} on /web/")
                cookies = [c for c in context.cookies() if c["name"] == "__Host-session"]
                check(len(cookies) == 1, "the browser holds the __Host-session cookie")
                if cookies:
                    c = cookies[0]
                    check(c["secure"] and c["httpOnly"] and c["path"] == "/", "the session cookie is Secure, HttpOnly, Path=/")
                    api = p.request.new_context(ignore_https_errors=True,
                                                extra_http_headers={"Cookie": f"__Host-session={c['value']}"})
                    status = api.get(args.url.rstrip("/") + "/webapi/me").status
                    check(status == 200, f"the session cookie works: GET /webapi/me answers {status}")
                    api.dispose()
            elif args.expect == "failure":
                signed_in = page.get_by_role("heading", name="Signed in as").count() > 0
                cookies = [c for c in context.cookies() if c["name"] == "__Host-session"]
                check(not signed_in and not cookies, "not signed in: no 'Signed in as' and no session cookie")
        else:
            if args.expect == "success":
                check("Login successful" in heading, f"tsh's callback page says the login succeeded ({heading.strip()!r})")
            elif args.expect == "failure":
                check("Login successful" not in heading, f"the login did not succeed ({heading.strip()!r})")
        browser.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
