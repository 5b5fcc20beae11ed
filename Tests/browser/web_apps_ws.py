#!/usr/bin/env python3
"""A WebSocket round trip in a real browser after launching an app from the web UI (Debian's
chromium driven by Playwright): signs in, opens Applications, clicks the app's Launch link, and
lands on the WebSocket app's page at https://APP.localhost:PORT/, whose script opens
wss://APP.localhost:PORT/ws with the app session cookie, sends a message and shows the echo.
The app's first message names the handshake headers it received: one teleport-jwt-assertion,
no app session cookie. Then logs out: a new WebSocket from the page is refused.

Run by WebAppsBrowserTests; exits 0 on success, 1 on a failed check, 77 when chromium or
Playwright is missing.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from webtest import CHROMIUM, WebTest  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--app", required=True, help="the app's name")
    t = WebTest.from_arguments(parser)
    args, check = t.args, t.check

    with t.playwright() as p:
        from playwright.sync_api import expect
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--host-resolver-rules=MAP *.localhost 127.0.0.1"])
        page = t.new_page(browser)
        started = time.monotonic()
        t.sign_in(page, args.user, args.password, t.codes.next())

        page.get_by_role("link", name="Applications").click()
        page.wait_for_url("**/web/apps")
        row = page.locator(f"#apps tr[data-name='{args.app}']")
        expect(row).to_have_count(1)
        row.get_by_role("link", name="Launch").click()
        page.wait_for_url(f"https://{args.app}.localhost:*/")
        expect(page).to_have_title("echoed")
        try:
            shown = json.loads(page.locator("#log").inner_text())
        except ValueError:
            shown = {}
        check(shown.get("echo") == "round trip from chromium", f"chromium's WebSocket round trip through the proxy: {shown}")
        hello = shown.get("hello", {})
        headers = {}
        for name, value in hello.get("headers", []):
            headers.setdefault(name.lower(), []).append(value)
        check(hello.get("path") == "/ws" and headers.get("upgrade") == ["websocket"], "the app saw the WebSocket handshake")
        check(len(headers.get("teleport-jwt-assertion", [])) == 1, "the handshake carries the JWT assertion")
        check("__Host-teleport-app-session" not in " ".join(headers.get("cookie", [])), "the app session cookie is not forwarded")
        page.screenshot(path=os.path.join(args.artifacts, "ws-app-1280.png"), full_page=True)
        print(f"timing: round trip done after {time.monotonic() - started:.1f} s", flush=True)

        # After logout a WebSocket from the app's page (still open in a second tab, with the
        # cookie) is refused: the cookie's web session ended.
        app_url = page.url
        app_page = page.context.new_page()
        app_page.on("request", lambda r: print(f"timing: request {r.url} at {time.monotonic() - started:.1f} s", flush=True))
        app_page.on("requestfinished", lambda r: print(f"timing: finished {r.url} at {time.monotonic() - started:.1f} s", flush=True))
        app_page.on("websocket", lambda w: print(f"timing: websocket {w.url} at {time.monotonic() - started:.1f} s", flush=True))
        app_page.goto(app_url)
        print(f"timing: second tab loaded after {time.monotonic() - started:.1f} s", flush=True)
        expect(app_page).to_have_title("echoed")
        print(f"timing: second tab after {time.monotonic() - started:.1f} s", flush=True)
        page.goto(args.url + "/web/")
        page.get_by_role("button", name="Log out").click()
        page.wait_for_url("**/web/login")
        outcome = app_page.evaluate(
            """(url) => new Promise((resolve) => {
                   const ws = new WebSocket(url);
                   ws.onopen = () => { ws.close(); resolve("opened"); };
                   ws.onerror = () => resolve("refused");
               })""",
            app_url.replace("https://", "wss://").rstrip("/") + "/ws")
        print(f"timing: refused after {time.monotonic() - started:.1f} s", flush=True)
        check(outcome == "refused", f"after logout a WebSocket to the app is refused ({outcome})")
        browser.close()
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
