#!/usr/bin/env python3
"""Launches an app from the web UI in a real browser (Debian's chromium driven by Playwright):
signs in at https://localhost:PORT, opens Applications (/web/apps), clicks the app's Launch link,
follows the one-time redirect to https://APP.localhost:PORT/ (chromium maps *.localhost to
loopback; --host-resolver-rules makes it explicit) and sees the echo app's page; the
teleport-jwt-assertion the app received verifies with PyJWT against the proxy's JWKS and names
the user. Then logs out and checks that the app origin sends the browser to the login page.

Run by WebAppsBrowserTests; exits 0 on success, 1 on a failed check, 77 when chromium or
Playwright is missing.
"""
import argparse
import json
import os
import ssl
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from webtest import CHROMIUM, WebTest  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--app", required=True, help="the app's name")
    parser.add_argument("--audience", required=True, help="the app's URI (the JWT's aud)")
    parser.add_argument("--cluster", required=True, help="the cluster's name (the JWT's iss)")
    t = WebTest.from_arguments(parser)
    args, check = t.args, t.check

    with t.playwright() as p:
        from playwright.sync_api import expect
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--host-resolver-rules=MAP *.localhost 127.0.0.1"])
        page = t.new_page(browser)
        t.sign_in(page, args.user, args.password, t.codes.next())

        page.get_by_role("link", name="Applications").click()
        page.wait_for_url("**/web/apps")
        row = page.locator(f"#apps tr[data-name='{args.app}']")
        expect(row).to_have_count(1)
        check(True, f"/web/apps lists {args.app}")
        t.shots(page, "apps")

        row.get_by_role("link", name="Launch").click()
        page.wait_for_url(f"https://{args.app}.localhost:*/")
        text = page.locator("body").inner_text()
        try:
            echoed = json.loads(text)
        except ValueError:
            echoed = {}
        check(echoed.get("path") == "/", f"the echo app's page is shown at {page.url}")
        headers = {k.lower(): v for k, v in echoed.get("headers", [])}
        check("__Host-teleport-app-session" not in headers.get("cookie", ""), "the app session cookie is not forwarded")
        token = headers.get("teleport-jwt-assertion", "")
        cookies = [c for c in page.context.cookies() if c["name"] == "__Host-teleport-app-session"]
        check(len(cookies) == 1 and cookies[0]["httpOnly"] and cookies[0]["secure"] and cookies[0]["sameSite"] == "Lax",
              "the browser holds the app session cookie (Secure, HttpOnly, SameSite=Lax)")
        page.screenshot(path=os.path.join(args.artifacts, "app-1280.png"), full_page=True)

        import jwt
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with urllib.request.urlopen(args.url + "/.well-known/jwks.json", context=context) as response:
            jwks = json.load(response)
        try:
            kid = jwt.get_unverified_header(token)["kid"]
            key = next(k for k in jwks["keys"] if k["kid"] == kid)
            public = jwt.algorithms.ECAlgorithm.from_jwk(json.dumps(key))
            claims = jwt.decode(token, public, algorithms=["ES256"], audience=args.audience, issuer=args.cluster)
        except Exception as error:  # noqa: BLE001
            claims = {"error": str(error)}
        check(claims.get("username") == args.user, f"the app's JWT verifies and names {args.user}: {claims}")

        # Log out in the web UI: the app origin then sends the browser to the login page.
        page.goto(args.url + "/web/")
        page.get_by_role("button", name="Log out").click()
        page.wait_for_url("**/web/login")
        page.goto(f"https://{args.app}.localhost:{args.url.rsplit(':', 1)[1]}/")
        page.wait_for_url("**/web/login")
        check(True, "after logout the app origin sends the browser to the login page")
        browser.close()
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
