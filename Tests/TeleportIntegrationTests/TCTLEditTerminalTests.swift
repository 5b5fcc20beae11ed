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
        read answer < /dev/tty
        [ "$answer" = "save" ] || exit 3
        sed -i 's/olduser/ttyuser/' "$1"

        """

    func leftovers(_ directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasPrefix("tctl-edit-") }
    }

    @Test("the editor owns the terminal; Ctrl-C and SIGTERM leave no temporary file", .timeLimit(.minutes(3)))
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
        }
    }
}
