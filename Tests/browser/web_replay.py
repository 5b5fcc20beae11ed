#!/usr/bin/env python3
"""Plays a recorded session in the proxy's web UI in a real browser (Debian's chromium driven by
Playwright): logs in with password + TOTP, finds the session --sid on the Recordings page, opens the
player, plays at x8 until the end and reads --marker from the player's terminal, seeks back to the
start, changes the speed, then opens the audit log filtered to the session and sees its
session.start and session.end. Saves screenshots to --artifacts.

Run by WebReplayTests (Tests/TeleportIntegrationTests); exits 0 on success, 1 on a failed check,
77 when chromium or Playwright is missing (the caller reports a skip).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from webtest import WebTest  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sid", required=True, help="the recorded session")
    parser.add_argument("--marker", required=True, help="text the session printed")
    t = WebTest.from_arguments(parser)
    args, check = t.args, t.check

    def shot(page, name, narrow=False):
        t.shots(page, name, narrow=narrow)

    with t.playwright() as p:
        from playwright.sync_api import expect
        browser = t.launch(p)
        page = t.new_page(browser)
        t.sign_in(page, args.user, args.password, t.codes.next())


        # Recordings: the session is listed; its Play link opens the player.
        page.get_by_role("link", name="Recordings").click()
        page.wait_for_url("**/web/recordings")
        row = page.locator(f"#recordings-body tr[data-sid='{args.sid}']")
        expect(row).to_have_count(1)
        expect(row.locator("td.user")).to_have_text(args.user)
        check(True, "the recording is listed")
        shot(page, "recordings", narrow=True)
        row.get_by_role("link", name="Play").click()
        page.wait_for_url(f"**/web/recordings/{args.sid}")
        player = page.locator("#player")
        expect(player).to_have_attribute("data-state", "ready")
        uses_xterm = page.evaluate("typeof window.Terminal === 'function' && !!document.querySelector('#terminal .xterm')")
        check(uses_xterm, "the player renders with xterm.js")

        # Skip idle time: the 2.5 s pause before the marker counts as 1 s.
        skipped = int(page.locator("#seek").get_attribute("max"))
        page.get_by_label("Skip idle time").uncheck()
        full = int(page.locator("#seek").get_attribute("max"))
        check(full - skipped >= 1000, f"skip idle time shortens the replay ({full} ms without, {skipped} ms with)")
        page.get_by_label("Skip idle time").check()

        # Play at x8 to the end: the marker is on the terminal.
        page.get_by_label("Speed").select_option("8")
        page.get_by_role("button", name="Play").click()
        expect(player).to_have_attribute("data-state", "ended", timeout=60_000)
        text = page.evaluate("window.teleportReplayText()")
        check(args.marker in text, f"the player shows {args.marker}")
        check("<b>red" in text, "output markup shows as text (<b> and the colour sequence drawn, not parsed)")
        injected = page.evaluate("document.querySelectorAll('#main script, #main b').length")
        check(injected == 0, f"no recorded output became markup ({injected} elements)")
        time_text = page.locator("#time").text_content()
        check(" / " in time_text and time_text.split(" / ")[0] == time_text.split(" / ")[1], f"at the end: {time_text}")
        shot(page, "player", narrow=True)

        # Seek to the start: the terminal is cleared and the clock shows 0:00.
        page.locator("#seek").fill("0")
        expect(page.locator("#time")).to_contain_text("0:00 /")
        text = page.evaluate("window.teleportReplayText()")
        check(args.marker not in text, "seek to the start clears the terminal")
        # Speed change while playing, then pause.
        page.get_by_label("Speed").select_option("0.5")
        check(page.get_by_label("Speed").input_value() == "0.5", "speed x0.5 selected")
        page.get_by_role("button", name="Play").click()
        expect(player).to_have_attribute("data-state", "playing")
        page.get_by_role("button", name="Pause").click()
        expect(player).to_have_attribute("data-state", "paused")
        # Seek to the end: the marker again.
        maximum = page.locator("#seek").get_attribute("max")
        page.locator("#seek").fill(maximum)
        text = page.evaluate("window.teleportReplayText()")
        check(args.marker in text, "seek to the end shows the marker again")

        # The audit log, filtered to this session.
        page.get_by_role("link", name="This session's audit events").click()
        page.wait_for_url("**/web/audit?sid=*")
        rows = page.locator("#events-body tr")
        expect(rows.filter(has=page.locator("td.event-type", has_text="session.start"))).to_have_count(1)
        expect(rows.filter(has=page.locator("td.event-type", has_text="session.end"))).to_have_count(1)
        kinds = set(page.locator("#events-body td.event-type").all_text_contents())
        check({"session.start", "session.end"} <= kinds, "the audit log shows session.start and session.end of the session")
        page.get_by_label("Event type").fill("session.start,session.end")
        page.get_by_role("button", name="Show").click()
        expect(rows).to_have_count(2)
        rows.first.locator("summary").click()
        json_text = rows.first.locator("pre.json").text_content()
        check(args.sid in json_text and '"event"' in json_text, "an event's JSON expands")
        shot(page, "audit", narrow=True)

        browser.close()
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
