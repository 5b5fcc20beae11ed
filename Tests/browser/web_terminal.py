#!/usr/bin/env python3
"""The web terminal in a real browser (Debian's chromium driven by Playwright) against a real
cluster: signs in with password + TOTP, connects to --node as --login from the Servers table, types
`echo $((6*7))` and reads 42, resizes the window and sees `stty size` follow, runs `top` and quits
it with q; a second browser context as --user2 joins the session as observer from Active sessions
and sees what is typed; `exit 3` shows "Session ended (exit status 3)". Then the WebSocket's
refusals with the `websockets` client: a foreign Origin (4403), no cookie (4401), a logged-out
cookie (4401), a login the user's roles do not allow (4403), an unknown node (4404); and a dropped
WebSocket ends the SSH session (the node's session.end appears in the audit log, read as --user2).
Prints `sid: SID` of the browser session. Saves terminal-1280.png and sessions-1280.png.

Run by WebTerminalTests (Tests/TeleportIntegrationTests); exits 0 on success, 1 on a failed check,
77 when chromium, Playwright or websockets is missing (the caller reports a skip).
"""
import argparse
import base64
import os
import re
import socket
import ssl
import sys
import time
from urllib.parse import urlparse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from webtest import Codes, WebTest  # noqa: E402

TEXT = "window.teleportTerminalText ? window.teleportTerminalText() : ''"


def wait_text(page, pattern, timeout_ms=30_000):
    """Waits until the terminal's text matches the regular expression `pattern`."""
    page.wait_for_function(
        "(p) => window.teleportTerminalText && new RegExp(p, 'm').test(window.teleportTerminalText())", arg=pattern, timeout=timeout_ms)
    return page.evaluate(TEXT)


def type_line(page, line):
    page.keyboard.type(line)
    page.keyboard.press("Enter")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--node", required=True)
    parser.add_argument("--login", required=True)
    parser.add_argument("--bad-login", required=True, help="a login the user's roles do not allow")
    parser.add_argument("--user2", required=True, help="joins as observer; may read the audit log")
    parser.add_argument("--secret2", required=True)
    parser.add_argument("--after2", type=float, required=True)
    t = WebTest.from_arguments(parser)
    try:
        from websockets.sync.client import connect
    except ImportError:
        print("SKIP: the websockets Python module is missing (pip install websockets; scripts/install-test-deps.sh)")
        return 77
    args, check = t.args, t.check
    codes2 = Codes(args.secret2, args.after2)
    host = urlparse(args.url).netloc
    tls = ssl.create_default_context()
    tls.check_hostname = False
    tls.verify_mode = ssl.CERT_NONE

    def cookie_of(page):
        for cookie in page.context.cookies():
            if cookie["name"] == "__Host-session":
                return "__Host-session=" + cookie["value"]
        return ""

    refusal = t.terminal_refusal

    with t.playwright() as p:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout
        from playwright.sync_api import expect
        browser = t.launch(p)
        page = t.new_page(browser)
        t.sign_in(page, args.user, args.password, t.codes.next())

        # Servers: the node's row has a login picker and Connect.
        page.get_by_role("navigation", name="Sections").get_by_role("link", name="Servers").click()
        page.wait_for_url("**/web/nodes")
        row = page.locator("#nodes-body tr", has=page.locator("td.name", has_text=args.node))
        expect(row).to_have_count(1)
        row.get_by_label(f"Login for {args.node}").select_option(args.login)
        row.get_by_role("button", name=f"Connect to {args.node}").click()
        page.wait_for_url("**/web/terminal?*")
        expect(page.locator("#terminal-status")).to_have_text("Connected")
        wait_text(page, r"[#$] ?$")
        check(True, "Connect opens a shell in the browser")
        page.locator("#terminal").click()

        type_line(page, "echo $((6*7))")
        wait_text(page, r"^42\s*$")
        check(True, "echo $((6*7)) prints 42")

        # Resize: stty size follows the window.
        sizes = []
        for width, height in [(1280, 800), (900, 560)]:
            page.set_viewport_size({"width": width, "height": height})
            page.wait_for_function(
                "(w) => { var s = window.teleportTerminalSize(); return s.cols < w / 6 && s.cols > 20; }", arg=width)
            time.sleep(0.3)  # the last resize message reaches the node before the command
            size = page.evaluate("window.teleportTerminalSize()")
            marker = f"SIZE{len(sizes)}"
            type_line(page, f"echo {marker}=$(stty size)=")
            text = wait_text(page, rf"^{marker}=\d+ \d+=")
            found = re.search(rf"^{marker}=(\d+) (\d+)=", text, re.M)
            sizes.append(((int(found.group(1)), int(found.group(2))), (size["rows"], size["cols"])))
        check(all(seen == shown for seen, shown in sizes), f"stty size follows the terminal's size {sizes}")
        check(sizes[0][0] != sizes[1][0], f"resizing the window changes the size {sizes}")
        page.set_viewport_size({"width": 1280, "height": 800})

        # A full-screen program. The shell says when top has exited, so nothing is typed to the shell
        # while top may still be reading keys (letters typed into top are top's commands). On a loaded
        # machine top may not read its first keypress at once: q again until it has (up to 90 s), then
        # Ctrl-U clears any q that reached the shell's prompt.
        type_line(page, "top; echo top-exited-$?")
        wait_text(page, r"load average")
        deadline = time.time() + 90
        quit_top = False
        while not quit_top and time.time() < deadline:
            page.keyboard.press("q")
            try:
                wait_text(page, r"^top-exited-0\s*$", timeout_ms=10_000)
                quit_top = True
            except PlaywrightTimeout:
                pass
        page.keyboard.press("Control+u")
        check(quit_top, "top runs and quits with q")

        type_line(page, "printf '\\033[1;32mgreen\\033[0m and \\033[1;34mblue\\033[0m\\n'; ls -la /")
        wait_text(page, r"green and blue")
        # (Before a second page opens: headless chromium stops painting a page's canvas behind another.)
        at_bottom = page.evaluate("() => { var b = window.teleportTerm._core.buffer; return b.ydisp === b.ybase; }")
        check(at_bottom, "the terminal shows its latest lines after the resizes")
        page.wait_for_timeout(500)
        t.shots(page, "terminal", narrow=False)

        # A second user joins as observer from Active sessions and sees what is typed.
        observer = t.new_page(browser)
        t.sign_in(observer, args.user2, args.password, codes2.next())
        observer.get_by_role("navigation", name="Sections").get_by_role("link", name="Active sessions").click()
        observer.wait_for_url("**/web/sessions")
        live = observer.locator("#sessions-body tr", has=observer.locator("td.user", has_text=args.user))
        expect(live).to_have_count(1)
        sid = live.get_attribute("data-sid")
        print(f"sid: {sid}", flush=True)
        t.shots(observer, "sessions", narrow=False)
        live.get_by_role("button", name=re.compile("^Join as observer")).click()
        observer.wait_for_url("**/web/terminal?*")
        expect(observer.locator("#terminal-status")).to_have_text("Connected")
        # The node attaches the party once the observer's shell request is answered, which a loaded
        # machine delays: the line is typed again until the observer sees it (up to 90 s).
        deadline = time.time() + 90
        seen = False
        while not seen and time.time() < deadline:
            type_line(page, "echo observed-$((20+3))")
            wait_text(page, r"^observed-23\s*$")
            try:
                wait_text(observer, r"observed-23", timeout_ms=5_000)
                seen = True
            except PlaywrightTimeout:
                pass
        check(seen, "the observer sees the typed text")

        type_line(page, "exit 3")
        expect(page.locator("#terminal-status")).to_have_text("Session ended (exit status 3)")
        check(True, "exit 3 shows the exit status")
        expect(observer.locator("#terminal")).to_have_attribute("data-state", "ended")
        check(True, "the observer's terminal ends with the session")

        # The node recorded the session: the recording (read as the observer, an auditor) has the text.
        output = ""
        deadline = time.time() + 90
        while "observed-23" not in output and time.time() < deadline:
            reply = observer.request.get(f"{args.url}/webapi/recordings/{sid}")
            if reply.ok:
                frames = reply.json().get("frames", [])
                output = b"".join(base64.b64decode(f["o"]) for f in frames if f.get("o")).decode("utf-8", "replace")
            else:
                time.sleep(1)
        check("42" in output and "observed-23" in output, "the recording holds the session's text")

        # Refusals, as close codes with a reason.
        cookie = cookie_of(page)
        code, reason = refusal(f"node={args.node}&login={args.login}", cookie, origin="https://evil.example")
        check(code == 4403, f"a foreign Origin is refused with 4403 ({code} {reason})")
        code, reason = refusal(f"node={args.node}&login={args.login}", "")
        check(code == 4401, f"no cookie is refused with 4401 ({code} {reason})")
        code, reason = refusal(f"node={args.node}&login={args.bad_login}", cookie)
        check(code == 4403, f"a login the roles do not allow is refused with 4403 ({code} {reason})")
        code, reason = refusal(f"node=no-such-node&login={args.login}", cookie)
        check(code == 4404, f"an unknown node is refused with 4404 ({code} {reason})")
        code, reason = refusal("node=&login=", cookie)
        check(code == 4400, f"missing parameters are refused with 4400 ({code} {reason})")
        # A logged-out cookie.
        gone = t.new_page(browser)
        t.sign_in(gone, args.user, args.password, t.codes.next())
        gone_cookie = cookie_of(gone)
        gone.get_by_role("button", name="Log out").click()
        gone.wait_for_url("**/web/login")
        code, reason = refusal(f"node={args.node}&login={args.login}", gone_cookie)
        check(code == 4401, f"a logged-out cookie is refused with 4401 ({code} {reason})")

        # A dropped WebSocket ends the SSH session: the node's session.end is audited.
        def session_ends():
            reply = observer.request.get(f"{args.url}/webapi/audit/events?type=session.end&user={args.user}&limit=1000")
            return len(reply.json().get("events", [])) if reply.ok else -1
        before = session_ends()
        ws = connect(f"wss://{host}/webapi/terminal?node={args.node}&login={args.login}", ssl=tls, origin="https://" + host,
                     additional_headers={"Cookie": cookie}, open_timeout=30)
        seen = b""
        deadline = time.time() + 30
        while not re.search(rb"[#$] ?$", seen) and time.time() < deadline:
            message = ws.recv(timeout=30)
            seen += message if isinstance(message, bytes) else b""
        ws.send(b"echo dropped\r")
        time.sleep(0.5)
        raw = ws.socket
        raw.shutdown(socket.SHUT_RDWR)
        raw.close()
        after = before
        deadline = time.time() + 60
        while after <= before and time.time() < deadline:
            time.sleep(0.5)
            after = session_ends()
        check(before >= 0 and after > before, f"a dropped WebSocket ends the SSH session (session.end events {before} -> {after})")

    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
