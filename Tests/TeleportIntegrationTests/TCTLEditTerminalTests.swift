import Foundation
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `tctl edit` with an editor that reads the terminal, as `vi` and `nano` do, on a real
/// pseudo-terminal. Before: the editor ran in a background process group and was stopped by the
/// terminal (state T) on its first read; Ctrl-C left `$TMPDIR/tctl-edit-*` behind.
@Suite("tctl edit on a terminal", .serialized)
struct TCTLEditTerminalTests {
    /// An editor that asks on the terminal: `save` edits the file, anything else quits with 3.
    static let editor = """
        #!/bin/sh
        printf 'editor-ready\\n' > /dev/tty
        [ -z "$FD_LIST" ] || ls -l /proc/$$/fd > "$FD_LIST"
        read answer < /dev/tty
        [ "$answer" = "save" ] || exit 3
        sed -i 's/olduser/ttyuser/' "$1"

        """

    func leftovers(_ directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasPrefix("tctl-edit-") }
    }

    @Test("the editor owns the terminal and inherits no other descriptor; Ctrl-C, SIGTERM and SIGHUP leave no temporary file", .timeLimit(.minutes(3)))
    func editorOwnsTheTerminal() async throws {
        try await withCluster(try ClusterFixture()) { cluster in
            try await cluster.start()
            let tests = ResourceCommandTests()
            #expect(try await cluster.tctl(["create", try tests.write(ResourceCommandTests.devRole, "dev.yaml", in: cluster)]).exitCode == 0)
            let editorPath = try tests.write(Self.editor, "tty-editor.sh", in: cluster)
            try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: editorPath)
            let temporary = cluster.directory.appendingPathComponent("tmp")
            try FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: true)
            var environment = ProcessInfo.processInfo.environment
            environment["EDITOR"] = editorPath
            environment["TMPDIR"] = temporary.path
            let descriptors = cluster.directory.appendingPathComponent("editor-fds.txt")
            environment["FD_LIST"] = descriptors.path
            let arguments = ["-c", cluster.configURL.path, "edit", "role/dev"]
            let tctl = try ClusterFixture.binary("tctl")

            // The editor reads the answer from the terminal and the edit is saved.
            let saving = try TSHTerminal(tctl, arguments, environment: environment)
            try await saving.expect("editor-ready")
            saving.sendLine("save")
            #expect(try await saving.wait(timeout: .seconds(30)) == 0, "\(saving.transcript)")
            #expect(saving.transcript.contains("role \"dev\" has been updated"), "\(saving.transcript)")
            #expect(try await cluster.tctl(["get", "role/dev"]).stdout.contains("ttyuser"))
            #expect(leftovers(temporary.path).isEmpty)
            // Not tctl's sockets or event loops (its TLS connection to the auth service).
            let fds = (try? TestSupport.read(descriptors)) ?? ""
            #expect(fds.contains("/dev/pts") && !fds.contains("socket:") && !fds.contains("anon_inode"), "\(fds)")

            // Ctrl-C goes to the editor (which ends); tctl stays to clean up, saves nothing.
            let interrupted = try TSHTerminal(tctl, arguments, environment: environment)
            try await interrupted.expect("editor-ready")
            #expect(leftovers(temporary.path).count == 1)
            interrupted.send("\u{03}")
            let status = try await interrupted.wait(timeout: .seconds(30))
            #expect(status != 0, "\(interrupted.transcript)")
            #expect(interrupted.transcript.contains("nothing was saved"), "\(interrupted.transcript)")
            #expect(leftovers(temporary.path).isEmpty, "\(leftovers(temporary.path))")

            // tctl terminated while the editor is open: the temporary directory goes too.
            let terminated = try TSHTerminal(tctl, arguments, environment: environment)
            try await terminated.expect("editor-ready")
            terminated.signal(SIGTERM)
            #expect(try await terminated.wait(timeout: .seconds(30)) == 128 + SIGTERM, "\(terminated.transcript)")
            #expect(leftovers(temporary.path).isEmpty, "\(leftovers(temporary.path))")
            #expect(try await cluster.tctl(["get", "role/dev"]).stdout.contains("ttyuser"))

            // The terminal hung up (the window closed, the SSH connection dropped): the same.
            let hungUp = try TSHTerminal(tctl, arguments, environment: environment)
            try await hungUp.expect("editor-ready")
            #expect(leftovers(temporary.path).count == 1)
            hungUp.signal(SIGHUP)
            #expect(try await hungUp.wait(timeout: .seconds(30)) == 128 + SIGHUP, "\(hungUp.transcript)")
            #expect(leftovers(temporary.path).isEmpty, "\(leftovers(temporary.path))")
            #expect(try await cluster.tctl(["get", "role/dev"]).stdout.contains("ttyuser"))
        }
    }

    /// The reported case itself: no `EDITOR`, so tctl runs `vi` (Debian's vim-tiny or vim), which
    /// reads the keyboard at once; before, it was stopped by the terminal (state T) and tctl hung.
    @Test(
        "tctl edit with the default editor, vi: a substitution and :wq save the change",
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/vi"), "needs vi (vim-tiny, from install-test-deps)"),
        .timeLimit(.minutes(3)))
    func defaultEditorVi() async throws {
        try await withCluster(try ClusterFixture()) { cluster in
            try await cluster.start()
            let tests = ResourceCommandTests()
            #expect(try await cluster.tctl(["create", try tests.write(ResourceCommandTests.devRole, "dev.yaml", in: cluster)]).exitCode == 0)
            let temporary = cluster.directory.appendingPathComponent("tmp")
            try FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: true)
            var environment = ProcessInfo.processInfo.environment
            environment["EDITOR"] = nil
            environment["VISUAL"] = nil
            environment["TERM"] = "xterm"
            environment["TMPDIR"] = temporary.path
            // A private home: no user vimrc, no viminfo left behind.
            environment["HOME"] = temporary.path
            let vi = try TSHTerminal(
                try ClusterFixture.binary("tctl"), ["-c", cluster.configURL.path, "edit", "role/dev"], environment: environment)
            vi.resize(rows: 24, columns: 80)
            // vi shows the file (its status line names it; the text itself comes highlighted).
            try await vi.expect("role-dev.yaml")
            vi.send(":%s/olduser/viuser/\r")
            vi.send(":wq\r")
            let status = try await vi.wait(timeout: .seconds(60))
            #expect(status == 0, "\(vi.transcript)")
            #expect(vi.transcript.contains("role \"dev\" has been updated"), "\(vi.transcript)")
            #expect(try await cluster.tctl(["get", "role/dev"]).stdout.contains("viuser"))
            #expect(leftovers(temporary.path).isEmpty, "\(leftovers(temporary.path))")
        }
    }
}
