"""What the browser tests share: TOTP codes, the common arguments, the chromium/Playwright check, a
page with the CSP and script-error listeners, signing in, screenshots at 1280 and 400 px, and the
checks' outcome.

A script does:
    t = WebTest.from_arguments(parser)      # parses; exits 77 when chromium or Playwright is missing
    with t.playwright() as p:
        browser = t.launch(p)
        page = t.new_page(browser)
        t.sign_in(page, t.args.user, t.args.password, t.codes.next())
        t.check(condition, "what")
        t.shots(page, "name")
    return t.finish()
"""
import argparse
import base64
import hashlib
import hmac
import os
import ssl
import struct
import sys
import time
from urllib.parse import urlparse

CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 30_000


def totp(secret_base32: str, step: int) -> str:
    """RFC 6238: HMAC-SHA1, 30 s steps, 6 digits; `step` is unix time // 30."""
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

    def wrong(self) -> str:
        """A code that is not the next one."""
        upcoming = totp(self.secret, max(self.last_step + 1, int(time.time()) // 30))
        return "111111" if upcoming == "000000" else "000000"



class WebTest:
    def __init__(self, args):
        self.args = args
        self.failures = []
        self.csp_violations = []
        self.page_errors = []
        self.codes = Codes(args.secret, args.after)
        os.makedirs(args.artifacts, exist_ok=True)

    @staticmethod
    def add_common_arguments(parser: argparse.ArgumentParser):
        parser.add_argument("--url", required=True, help="https://HOST:PORT of the proxy")
        parser.add_argument("--user", required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument("--secret", required=True, help="the user's TOTP secret (base32)")
        parser.add_argument("--after", type=float, required=True, help="unix time of the last TOTP code used")
        parser.add_argument("--artifacts", required=True, help="where screenshots go")

    @classmethod
    def from_arguments(cls, parser: argparse.ArgumentParser):
        """Parses the arguments (common ones included); exits 77 (the caller reports a skip) when
        chromium or Playwright is missing."""
        cls.add_common_arguments(parser)
        args = parser.parse_args()
        if not os.access(CHROMIUM, os.X_OK):
            print(f"SKIP: {CHROMIUM} is missing (apt-get install chromium; scripts/install-test-deps.sh)")
            sys.exit(77)
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            print("SKIP: the playwright Python module is missing (pip install playwright; scripts/install-test-deps.sh)")
            sys.exit(77)
        return cls(args)

    def playwright(self):
        from playwright.sync_api import expect, sync_playwright
        # Assertions have their own timeout (5 s by default): a loaded CI machine is slower.
        expect.set_options(timeout=TIMEOUT_MS)
        return sync_playwright()

    def launch(self, p):
        return p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)

    def new_page(self, browser, width=1280, height=800):
        """A page in a fresh context (its own cookies), listening for CSP violations and script errors."""
        context = browser.new_context(ignore_https_errors=True, viewport={"width": width, "height": height})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("console", lambda m: self.csp_violations.append(m.text) if "Content Security Policy" in m.text else None)
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        return page

    def terminal_refusal(self, query, cookie, origin=None):
        """The close code and reason the proxy answers a `/webapi/terminal?QUERY` WebSocket with
        (sent with `cookie` and `origin`, by default the proxy's own), or None and the error when
        it did not close with a code. Needs the websockets module (the caller checks)."""
        from websockets.exceptions import ConnectionClosed
        from websockets.sync.client import connect
        host = urlparse(self.args.url).netloc
        tls = ssl.create_default_context()
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
        headers = {"Cookie": cookie} if cookie else {}
        try:
            with connect(f"wss://{host}/webapi/terminal?{query}", ssl=tls, origin=origin or "https://" + host,
                         additional_headers=headers, open_timeout=30, close_timeout=5) as ws:
                while True:
                    ws.recv(timeout=60)
        except ConnectionClosed as closed:
            return (closed.rcvd.code if closed.rcvd else None), (closed.rcvd.reason if closed.rcvd else "")
        except Exception as error:  # noqa: BLE001
            return None, f"{type(error).__name__}: {error}"

    def check(self, condition, what):
        print(("ok: " if condition else "FAIL: ") + what, flush=True)
        if not condition:
            self.failures.append(what)

    def sign_in(self, page, user, password, code):
        from playwright.sync_api import expect
        page.goto(self.args.url + "/web/login")
        page.get_by_label("User name").fill(user)
        page.get_by_label("Password").fill(password)
        page.get_by_label("Authenticator code").fill(code)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/web/")
        expect(page.get_by_role("heading", name=f"Signed in as {user}")).to_be_visible()

    def shots(self, page, name, narrow=True):
        """Screenshots NAME-1280.png and (narrow) NAME-400.png, checking nothing scrolls sideways at 400 px."""
        page.screenshot(path=os.path.join(self.args.artifacts, f"{name}-1280.png"), full_page=True)
        if narrow:
            size = page.viewport_size or {"width": 1280, "height": 800}
            page.set_viewport_size({"width": 400, "height": 800})
            page.screenshot(path=os.path.join(self.args.artifacts, f"{name}-400.png"), full_page=True)
            width = page.evaluate("document.documentElement.scrollWidth")
            self.check(width <= 400, f"{name}: no horizontal scrolling at 400 px (scrollWidth {width})")
            page.set_viewport_size(size)

    def finish(self) -> int:
        self.check(not self.csp_violations, f"no Content-Security-Policy violations {self.csp_violations}")
        self.check(not self.page_errors, f"no script errors {self.page_errors}")
        print(f"screenshots: {self.args.artifacts}")
        return 1 if self.failures else 0
