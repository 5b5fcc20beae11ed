import Foundation
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The README's tour, run as written: every command of its "A quick tour" block and of the
/// backup-restore block, in order, in a scratch directory laid out like a checkout (`scripts/start.sh`
/// and `.build/debug` pointing at the built binaries), on a terminal, on the default ports. Only what a
/// person does outside the shell is played by the test: opening the signup link in a browser (the
/// form is filled in over HTTPS), typing the password and one-time code at `tsh login`'s prompts,
/// typing in the shell that `tsh ssh` opens, and picking a session id from `tsh recordings ls`.
/// A command that fails fails the test with the line and its terminal output, so the README cannot
/// drift from what the binaries do.
@Suite("README tour", .serialized)
struct ReadmeTourTests {
    /// Lines the test cannot run, with the reason.
    static let skipped: [String: String] = [
        "tsh join SESSION_ID": "needs a session running at that moment (RecordingTests covers tsh join)",
    ]

    @Test("every command of the README's tour and backup-restore blocks works as written")
    func tour() async throws {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: repository.appendingPathComponent("README.md"), encoding: .utf8)
        let tour = try #require(Self.block(after: "## A quick tour", in: readme), "the README has no tour block")
        let restore = try #require(Self.block(after: "Restoring a backup", in: readme), "the README has no restore block")
        for port: UInt16 in [3000, 3022, 3023, 3024, 3025, 3080, 4022, 4023, 4024, 4025, 4080] {
            try #require(!(await TestSupport.waitForPort(port, timeout: .milliseconds(1))), "port \(port) is in use: the tour needs the default ports")
        }

        let run = try TourRun(repository: repository)
        defer { run.cleanUp() }
        do {
            for command in Self.commands(in: tour) + Self.commands(in: restore) {
                if let reason = Self.skipped[command.text] {
                    print("README tour: skipped `\(command.text)`: \(reason)")
                    continue
                }
                try await run.perform(command.text)
            }
        } catch {
            await run.stopDaemons()
            throw error
        }
        await run.stopDaemons()
    }

    /// Issue 19: `systemctl reload` (SIGHUP) is a graceful restart, so the README's unit reloads by
    /// signal and keeps the pid file that follows the serving process (GracefulRestartTests run it).
    @Test("the README's systemd unit reloads with SIGHUP through the pid file and explains the signals")
    func systemdUnitReloadsGracefully() throws {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: repository.appendingPathComponent("README.md"), encoding: .utf8)
        let heading = try #require(readme.range(of: "## Running under systemd"), "the README has no systemd section")
        let open = try #require(readme.range(of: "```ini\n", range: heading.upperBound..<readme.endIndex))
        let close = try #require(readme.range(of: "```\n", range: open.upperBound..<readme.endIndex))
        let unit = readme[open.upperBound..<close.lowerBound]
        #expect(unit.contains("--pid-file=/run/teleport.pid") && unit.contains("ExecReload=/bin/kill -HUP $MAINPID"), "\(unit)")
        #expect(unit.contains("PIDFile=/run/teleport.pid"), "\(unit)")
        #expect(readme[close.upperBound...].prefix(1500).contains("graceful restart"), "the README explains the reload")
    }

    @Test("the tour's parser joins here-documents and drops comments and blank lines")
    func parser() {
        let block = """
            # a comment
            tctl status   # trailing words

            cat > x.yaml <<'EOF'
            kind: role
              # not a comment inside the document
            EOF
            tsh ls
            """
        #expect(Self.commands(in: block).map(\.text) == ["tctl status", "cat > x.yaml <<'EOF'\nkind: role\n  # not a comment inside the document\nEOF", "tsh ls"])
    }

    /// The first ```sh block after the line starting with `heading`.
    static func block(after heading: String, in readme: String) -> String? {
        guard let headingRange = readme.range(of: heading),
            let open = readme.range(of: "```sh\n", range: headingRange.upperBound..<readme.endIndex),
            let close = readme.range(of: "```\n", range: open.upperBound..<readme.endIndex)
        else { return nil }
        return String(readme[open.upperBound..<close.lowerBound])
    }

    /// One shell command of a block: a line without its comment, or a here-document with its body.
    struct Command {
        var text: String
    }

    static func commands(in block: String) -> [Command] {
        var commands: [Command] = []
        var lines = block.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)[...]
        while let line = lines.popFirst() {
            if let marker = line.range(of: "<<'") {
                let terminator = line[marker.upperBound...].prefix { $0 != "'" }
                var text = line
                while let body = lines.popFirst() {
                    text += "\n" + body
                    if body == terminator { break }
                }
                commands.append(Command(text: text))
                continue
            }
            let command = withoutComment(line).trimmingCharacters(in: .whitespaces)
            if !command.isEmpty { commands.append(Command(text: command)) }
        }
        return commands
    }

    /// `line` up to a `#` that starts a comment (outside quotes, after a space or at the start).
    static func withoutComment(_ line: String) -> String {
        var quote: Character?
        var previous: Character = " "
        for (offset, character) in line.enumerated() {
            if let open = quote {
                if character == open { quote = nil }
            } else if character == "'" || character == "\"" {
                quote = character
            } else if character == "#" && previous.isWhitespace {
                return String(line.prefix(offset))
            }
            previous = character
        }
        return line
    }
}

/// The scratch checkout and the state a person keeps in their head while following the tour.
final class TourRun {
    let directory: URL
    let home: URL
    let environment: [String: String]
    private var daemons: [pid_t] = []
    private var password = "tour password 1234"
    private var codes: TSHCodes?
    private var lastOutput = ""
    private var sessionID: String?

    init(repository: URL) throws {
        directory = try TestSupport.makeTemporaryDirectory(prefix: "tour")
        home = directory.appendingPathComponent("home")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        let scripts = directory.appendingPathComponent("scripts")
        try FileManager.default.createDirectory(at: scripts, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            at: repository.appendingPathComponent("scripts/start.sh"), to: scripts.appendingPathComponent("start.sh"))
        let build = directory.appendingPathComponent(".build")
        try FileManager.default.createDirectory(at: build, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(at: build.appendingPathComponent("debug"), withDestinationURL: ClusterFixture.binDirectory)
        var environment = ProcessInfo.processInfo.environment
        environment["HOME"] = home.path
        environment["PATH"] = build.appendingPathComponent("debug").path + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
        environment["TELEPORT_SKIP_BUILD"] = "1"
        environment["EDITOR"] = "true"  // `tctl edit`: the person closes the editor without a change
        environment["SSH_AUTH_SOCK"] = nil
        environment["TELEPORT_HOME"] = nil
        environment["TELEPORT_PROXY"] = nil
        environment["TELEPORT_USER"] = nil
        environment["TERM"] = "xterm"
        self.environment = environment
    }

    /// Runs one command of the tour as a person would, and fails with its output when it fails.
    func perform(_ command: String) async throws {
        if command == "scripts/start.sh" {
            try await startDaemon(command, readyPort: 3080, log: "start.log")
            return
        }
        if command.hasPrefix("teleport start ") {
            try await startDaemon(command, readyPort: 4080, log: "restore.log")
            return
        }
        var line = command
        if line.contains("SESSION_ID") {
            let id = try #require(sessionID, "no session id: `tsh recordings ls` listed none before `\(command)`")
            line = line.replacingOccurrences(of: "SESSION_ID", with: id)
        }
        if line.hasPrefix("ssh ") {
            // OpenSSH reads ~/.ssh/config from the passwd entry's home, not $HOME: point it at the
            // tour's home, where a person's `tsh config >> ~/.ssh/config` wrote.
            line = "ssh -F \"$HOME/.ssh/config\" " + line.dropFirst(4)
        }
        let terminal = try TSHTerminal("/bin/bash", ["-c", "cd \(directory.path) && \(line)"], environment: environment)
        if line.hasPrefix("tsh login ") {
            try await terminal.expect("password")
            terminal.sendLine(password)
            try await terminal.expect("OTP")
            var codes = try #require(codes, "tsh login before any user signed up")
            terminal.sendLine(try await codes.next())
            self.codes = codes
        } else if line == "tsh ssh root@$(hostname)" {
            // The shell: wait until it answers, then leave it.
            var answered = false
            for _ in 0..<30 where !answered {
                terminal.sendLine("echo tour-$((6*7))")
                answered = await terminal.appears("tour-42", timeout: .seconds(2))
            }
            #expect(answered, "the shell of `\(command)` never answered")
            terminal.sendLine("exit")
        }
        let status = try await terminal.wait(timeout: .seconds(90))
        lastOutput = terminal.transcript
        try #require(status == 0, "README tour: `\(command)` exited with \(status):\n\(terminal.transcript)")
        try await afterwards(command, output: terminal.transcript)
    }

    /// What a person does after reading a command's output.
    private func afterwards(_ command: String, output: String) async throws {
        if command.contains("users add joe ") {
            // Opens the link in a browser and fills in the form.
            let path = try #require(
                output.split(whereSeparator: \.isWhitespace).first { $0.contains("/web/newuser/") }.flatMap { URL(string: String($0))?.path },
                "no signup link in:\n\(output)")
            let (secret, time) = try await TourBrowser.enrol(path: path, password: password, in: directory)
            codes = TSHCodes(secret: secret, usedAt: time)
        } else if command == "tsh recordings ls" {
            let uuid = try Regex("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
            sessionID = output.firstMatch(of: uuid).map { String(output[$0.range]) }
        } else if command.hasPrefix("curl -s 127.0.0.1:3000/readyz") {
            #expect(output.contains("\"ok\""), "\(output)")
        } else if command.hasPrefix("ssh root@") {
            #expect(output.contains(ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? ""), "\(output)")
        } else if command.hasPrefix("tsh scp root@") {
            let original = try String(contentsOf: directory.appendingPathComponent("dir/hello.txt"), encoding: .utf8)
            let copy = try String(contentsOf: directory.appendingPathComponent("copy.txt"), encoding: .utf8)
            #expect(original == copy)
        } else if command.contains("access explain") {
            #expect(output.contains("Verdict:"), "\(output)")
        } else if command.hasPrefix("tctl --config fresh.yaml get all") {
            // state.yaml was taken at the start of the tour: the cluster's name and CAs, the preset roles.
            #expect(output.contains("cluster_name: local.cluster") && output.contains("name: auditor"), "the restored cluster differs:\n\(output)")
        }
    }

    private func startDaemon(_ command: String, readyPort: UInt16, log: String) async throws {
        let logURL = directory.appendingPathComponent(log)
        var arguments = ["-C", directory.path]
        for (name, value) in environment.sorted(by: { $0.key < $1.key }) where ["HOME", "PATH", "TELEPORT_SKIP_BUILD"].contains(name) {
            arguments.append("\(name)=\(value)")
        }
        arguments += ["/bin/bash", "-c", "exec \(command)"]
        let pid = try TestSupport.spawnDaemon("/usr/bin/env", arguments, logPath: logURL.path)
        daemons.append(pid)
        let ready = await TestSupport.waitForPort(readyPort, timeout: .seconds(90))
        let output = (try? String(contentsOf: logURL, encoding: .utf8)) ?? ""
        try #require(ready, "README tour: `\(command)` did not start listening on \(readyPort):\n\(output)")
        // Listening is not yet ready: wait for the daemon's "teleport is ready" line, as a person would.
        let deadline = ContinuousClock.now + .seconds(60)
        var text = ""
        while ContinuousClock.now < deadline {
            text = (try? String(contentsOf: logURL, encoding: .utf8)) ?? ""
            if text.contains("teleport is ready") { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("README tour: `\(command)` never logged that it is ready:\n\(text)")
        throw CancellationError()
    }

    func stopDaemons() async {
        for pid in daemons.reversed() { await TestSupport.stopDaemon(pid) }
        daemons = []
    }

    func cleanUp() {
        try? FileManager.default.removeItem(at: directory)
    }
}

/// The browser of the tour: opens a signup link on the proxy (3080) and fills in the form with curl.
enum TourBrowser {
    static func enrol(path: String, password: String, in directory: URL) async throws -> (secret: String, time: Date) {
        let jar = directory.appendingPathComponent("cookies.txt")
        let page = try await TestSupport.run("/usr/bin/curl", ["-s", "-k", "-m", "30", "-b", jar.path, "-c", jar.path, "https://127.0.0.1:3080\(path)"])
        let reply = WebReply(status: 200, headers: [], body: page.stdout)
        let secret = try #require(reply.totpSecret, "no TOTP secret on the signup page:\n\(page.stdout)")
        let csrf = try #require(reply.csrfToken, "no CSRF token on the signup page:\n\(page.stdout)")
        let now = Date()
        let code = try TestTOTP.code(base32: secret, time: now.timeIntervalSince1970)
        var arguments = ["-s", "-k", "-m", "30", "-b", jar.path, "-c", jar.path]
        for (name, value) in [("csrf_token", csrf), ("otp_code", code), ("password", password), ("password_confirm", password)] {
            arguments += ["--data-urlencode", "\(name)=\(value)"]
        }
        let done = try await TestSupport.run("/usr/bin/curl", arguments + ["https://127.0.0.1:3080\(path)"])
        try #require(done.stdout.contains("Your account is ready"), "the signup form was refused:\n\(done.stdout)")
        return (secret, now)
    }
}
