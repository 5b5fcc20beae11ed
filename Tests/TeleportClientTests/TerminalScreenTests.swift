import TeleportClient
import Testing

@Suite("tsh play --format=text: the text a terminal showed")
struct TerminalTextTests {
    @Test(arguments: [
        // Colours and a bold prompt are dropped.
        ("\u{1B}[01;32mjoe@luna\u{1B}[00m:~$ ls\r\n", "joe@luna:~$ ls\n"),
        // CRLF line ends.
        ("one\r\ntwo\r\n", "one\ntwo\n"),
        // A progress line rewritten in place shows its last state.
        ("50%\r100%\r\n", "100%\n"),
        ("50%\rok\u{1B}[K\r\n", "ok\n"),
        // Backspace over a typo, as the line editor echoes it.
        ("lss\u{08}\u{1B}[K -l\r\n", "ls -l\n"),
        // A window title (OSC ... BEL and OSC ... ST) and a bell show nothing.
        ("\u{1B}]0;joe@luna: ~\u{07}$ \u{07}x\n", "$ x\n"),
        ("\u{1B}]2;title\u{1B}\\text\n", "text\n"),
        // Screen clears, cursor moves and charset switches are not text.
        ("\u{1B}[H\u{1B}[2Jtop\u{1B}(B\u{1B}[?25l\n", "top\n"),
        // Tabs stay tabs, Unicode stays.
        ("tab\there é✓\n", "tab\there é✓\n"),
        // The last line without a newline still ends in one.
        ("exit", "exit\n"),
        ("", ""),
    ])
    func render(raw: String, expected: String) {
        #expect(TerminalScreen.render(Array(raw.utf8)) == expected)
    }

    @Test func noControlCharacterSurvives() {
        let bytes: [UInt8] = Array(0...255).map(UInt8.init) + Array("\u{1B}[31mred\u{1B}[0m\n".utf8)
        let text = TerminalScreen.render(bytes)
        #expect(!text.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" && $0 != "\t" || $0.value == 0x7F || (0x80...0x9F).contains($0.value) })
        #expect(text.hasSuffix("red\n"))
    }
}
