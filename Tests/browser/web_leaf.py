#!/usr/bin/env python3
"""The web UI's cluster selector and a leaf cluster's terminal in a real browser (Debian's chromium
driven by Playwright) against a real root cluster that a real leaf cluster trusts (issue 20):
signs in to the root's proxy with password + TOTP, sees the cluster selector on Servers (the root
and --leaf), chooses the leaf and sees its --node (by address: both clusters' nodes are `testnode`), connects to it as --login, runs a command that
prints the cluster and user the node sees; a second page joins that session as observer from
Active sessions with the leaf chosen and sees what is typed; `exit 3` shows the exit status; choosing the root
again lists the root's servers. Then the terminal WebSocket's refusals for a leaf with the
`websockets` client: an unknown cluster (4404), a foreign Origin (4403), an unknown node of the
leaf (4404), a user whose roles map to nothing on the leaf (--denied-cookie, 4403). Saves
nodes-leaf-1280.png/-400.png and terminal-leaf-1280.png.

Run by TrustedClusterWebIntegrationTests (Tests/TeleportIntegrationTests); exits 0 on success, 1
on a failed check, 77 when chromium, Playwright or websockets is missing (the caller reports a skip).
"""
import argparse
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from webtest import WebTest  # noqa: E402


def wait_text(page, pattern, timeout_ms=60_000):
    """Waits until the terminal's text matches the regular expression `pattern`."""
    page.wait_for_function(
        "(p) => window.teleportTerminalText && new RegExp(p, 'm').test(window.teleportTerminalText())", arg=pattern, timeout=timeout_ms)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True, help="the root cluster's name")
    parser.add_argument("--leaf", required=True, help="the leaf cluster's name")
    parser.add_argument("--node", required=True, help="a node of the leaf")
    parser.add_argument("--root-addr", required=True, help="the address of a node of the root")
    parser.add_argument("--leaf-addr", required=True, help="the address of --node")
    parser.add_argument("--login", required=True)
    parser.add_argument("--denied-cookie", required=True, help="the session cookie of a user whose roles map to nothing on the leaf")
    t = WebTest.from_arguments(parser)
    try:
        import websockets  # noqa: F401
    except ImportError:
        print("SKIP: the websockets Python module is missing (pip install websockets; scripts/install-test-deps.sh)")
        return 77
    args, check = t.args, t.check

    refusal = t.terminal_refusal

    with t.playwright() as p:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout
        from playwright.sync_api import expect
        browser = t.launch(p)
        page = t.new_page(browser)
        t.sign_in(page, args.user, args.password, t.codes.next())

        # Servers: the selector lists the root and the leaf; the root's servers first.
        page.get_by_role("navigation", name="Sections").get_by_role("link", name="Servers").click()
        page.wait_for_url("**/web/nodes")
        picker = page.get_by_label("Cluster", exact=True)
        expect(picker).to_be_visible()
        options = picker.locator("option").all_text_contents()
        check(options[:1] == [args.root] and any(o.startswith(args.leaf + " (leaf, online") for o in options),
              f"the cluster selector lists the root and the leaf {options}")
        expect(page.locator("#nodes-body td", has_text=args.root_addr)).to_have_count(1)
        check(page.locator("#nodes-body td", has_text=args.leaf_addr).count() == 0, "the root's servers first, not the leaf's")

        # The leaf: its node, with the login the leaf allows.
        picker.select_option(args.leaf)
        page.wait_for_function("(c) => new URLSearchParams(location.search).get('cluster') === c", arg=args.leaf)
        row = page.locator("#nodes-body tr", has=page.locator("td.name", has_text=args.node))
        expect(row).to_have_count(1)
        expect(page.locator("#nodes-body td", has_text=args.leaf_addr)).to_have_count(1)
        check(page.locator("#nodes-body td", has_text=args.root_addr).count() == 0, "choosing the leaf lists the leaf's node, not the root's")
        expect(row.get_by_label(f"Login for {args.node}")).to_be_visible()
        t.shots(page, "nodes-leaf")

        # A reload keeps the leaf chosen.
        page.reload()
        expect(page.get_by_label("Cluster", exact=True)).to_have_value(args.leaf)
        expect(page.locator("#nodes-body td", has_text=args.leaf_addr)).to_have_count(1)
        check(True, "a reload keeps the leaf chosen")

        row = page.locator("#nodes-body tr", has=page.locator("td.name", has_text=args.node))
        row.get_by_label(f"Login for {args.node}").select_option(args.login)
        row.get_by_role("button", name=f"Connect to {args.node}").click()
        page.wait_for_url("**/web/terminal?*")
        check(f"cluster={args.leaf}" in page.url, f"the terminal's URL names the leaf ({page.url})")
        expect(page.locator("#terminal-status")).to_have_text("Connected")
        wait_text(page, r"[#$] ?$")
        check(True, "Connect opens a shell on the leaf's node in the browser")
        page.locator("#terminal").click()
        page.keyboard.type("echo on-$TELEPORT_CLUSTER_NAME-as-$TELEPORT_USERNAME")
        page.keyboard.press("Enter")
        wait_text(page, rf"^on-{args.leaf.replace('.', '[.]')}-as-{args.user}\s*$")
        check(True, "the shell runs on the leaf's node as the root user")
        page.wait_for_timeout(300)
        t.shots(page, "terminal-leaf", narrow=False)

        # Active sessions with the leaf chosen: the session is listed; joining it as observer
        # (its owner may) shows what is typed.
        observer = page.context.new_page()
        observer.goto(args.url + "/web/sessions")
        observer.get_by_label("Cluster", exact=True).select_option(args.leaf)
        live = observer.locator("#sessions-body tr", has=observer.locator("td.user", has_text=args.user))
        expect(live).to_have_count(1)
        check(True, "Active sessions lists the leaf's session")
        live.get_by_role("button", name=re.compile("^Join as observer")).click()
        observer.wait_for_url("**/web/terminal?*")
        check(f"cluster={args.leaf}" in observer.url, f"the join names the leaf ({observer.url})")
        expect(observer.locator("#terminal-status")).to_have_text("Connected")
        deadline = time.time() + 90
        seen = False
        while not seen and time.time() < deadline:
            page.keyboard.type("echo observed-$((20+3))")
            page.keyboard.press("Enter")
            wait_text(page, r"^observed-23\s*$")
            try:
                wait_text(observer, r"observed-23", timeout_ms=5_000)
                seen = True
            except PlaywrightTimeout:
                pass
        check(seen, "an observer joined from the leaf's Active sessions sees the typed text")
        page.keyboard.type("exit 3")
        page.keyboard.press("Enter")
        expect(page.locator("#terminal-status")).to_have_text("Session ended (exit status 3)")
        check(True, "exit 3 on the leaf shows the exit status")
        expect(observer.locator("#terminal")).to_have_attribute("data-state", "ended")
        check(True, "the observer's terminal ends with the session")
        observer.close()

        # Back to the root.
        page.goto(args.url + "/web/nodes?cluster=" + args.leaf)
        page.get_by_label("Cluster", exact=True).select_option(label=args.root)
        expect(page.locator("#nodes-body td", has_text=args.root_addr)).to_have_count(1)
        check("cluster=" not in page.url, f"choosing the root lists the root's servers ({page.url})")

        cookie = ""
        for item in page.context.cookies():
            if item["name"] == "__Host-session":
                cookie = "__Host-session=" + item["value"]

        code, reason = refusal(f"cluster=nosuch.example&node={args.node}&login={args.login}", cookie)
        check(code == 4404 and "is not known" in reason, f"an unknown cluster is refused with 4404 ({code} {reason})")
        code, reason = refusal(f"cluster={args.leaf}&node={args.node}&login={args.login}", cookie, origin="https://evil.example")
        check(code == 4403, f"a foreign Origin is refused with 4403 for a leaf ({code} {reason})")
        code, reason = refusal(f"cluster={args.leaf}&node=no-such-node&login={args.login}", cookie)
        check(code == 4404, f"an unknown node of the leaf is refused with 4404 ({code} {reason})")
        code, reason = refusal(f"cluster={args.leaf}&node={args.node}&login={args.login}", args.denied_cookie)
        check(code == 4403 and "has no roles" in reason, f"a user whose roles map to nothing is refused with 4403 ({code} {reason})")
        code, reason = refusal(f"cluster={args.leaf}&node={args.node}&login={args.login}", "")
        check(code == 4401, f"no cookie is refused with 4401 for a leaf ({code} {reason})")
        code, reason = refusal(f"cluster={args.leaf}&session=00000000-0000-4000-8000-000000000000&mode=observer", cookie)
        check(code == 4404, f"joining a session the leaf does not have is refused with 4404 ({code} {reason})")

    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
