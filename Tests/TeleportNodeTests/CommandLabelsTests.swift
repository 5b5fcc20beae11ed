import Foundation
import Logging
import TeleportAPI
import TeleportNode
import TeleportRecording
import Testing

@Suite("dynamic labels")
struct CommandLabelsTests {
    // Generous limits: the whole suite runs in parallel and starts many processes at once; only
    // the timeout test below depends on a short limit.
    @Test("a command's trimmed output is the value; its argv is not run through a shell")
    func output() async {
        #expect(await CommandLabels.execute(["echo", "  hello  "], timeout: .seconds(60)) == "hello")
        #expect(await CommandLabels.execute(["/bin/echo", "a;", "rm", "-rf", "$HOME"], timeout: .seconds(60)) == "a; rm -rf $HOME")
        #expect(await CommandLabels.execute(["printf", "one\\ntwo\\n"], timeout: .seconds(60)) == "one two")
    }

    @Test("failures are values, not crashes")
    func failures() async {
        #expect(await CommandLabels.execute(["false"], timeout: .seconds(60)) == "error: exit status 1")
        #expect(await CommandLabels.execute(["no-such-command-xyz"], timeout: .seconds(60)) == "error: no-such-command-xyz not found in PATH")
        #expect(await CommandLabels.execute([], timeout: .seconds(60)) == "error: empty command")
        let started = ContinuousClock.now
        #expect(await CommandLabels.execute(["sleep", "30"], timeout: .milliseconds(300)) == "error: timed out")
        // The command is stopped, not waited for: well under the 30 s it would take (wide: CI is loaded).
        #expect(ContinuousClock.now - started < .seconds(25))
    }

    @Test("output is capped")
    func cap() async {
        let value = await CommandLabels.execute(["head", "-c", "5000", "/dev/zero"], timeout: .seconds(60))
        #expect(value.utf8.count <= CommandLabels.maxOutputBytes)
    }

    @Test("periods below a minute are raised to a minute; the first run happens at once")
    func schedule() async throws {
        let command = CommandLabels.Command(name: "greeting", argv: ["echo", "hi"], period: 5)
        #expect(command.period == 60)
        let labels = CommandLabels(commands: [command], logger: Logger(label: "test"))
        let task = Task { await labels.run() }
        var value: String?
        for _ in 0..<50 where value == nil {
            value = labels.current["greeting"]?.result
            try await Task.sleep(for: .milliseconds(50))
        }
        task.cancel()
        #expect(value == "hi")
        #expect(labels.current["greeting"]?.period == "1m0s")
        #expect(labels.current["greeting"]?.command == ["echo", "hi"])
    }
}

@Suite("command label output is a valid label value")
struct CommandLabelValueTests {
    @Test("control bytes in the output are escaped and long output is cut to the label limit, so the heartbeat is accepted")
    func printableAndBounded() async throws {
        let coloured = await CommandLabels.execute(["printf", "\\033[31mred\\033[0m\\a"], timeout: .seconds(60))
        #expect(coloured == "\\x1b[31mred\\x1b[0m\\x07")
        let zeros = await CommandLabels.execute(["head", "-c", "5000", "/dev/zero"], timeout: .seconds(60))
        #expect(zeros.count == LabelRules.maxValueLength)
        try LabelRules.check(value: coloured, key: "k", source: "test")
        try LabelRules.check(value: zeros, key: "k", source: "test")
    }
}
