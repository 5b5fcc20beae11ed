import CTeleportShims
public import Foundation
public import TeleportAPI
import TeleportAuthClient

#if canImport(Glibc)
    import Glibc
#endif

/// `tctl edit KIND/NAME`: the resource as YAML in a private temporary file, the user's editor on
/// it, then the same checks as `tctl create` and a conditional update.
///
/// The update only succeeds if the resource is still at the revision that was read: if someone
/// changed (or deleted) it while the editor was open, nothing is written and the edited copy is
/// kept for the user to merge by hand. A file saved unchanged writes nothing.
public enum ResourceEditor {
    /// Runs the edit; `editor` is a shell command line (`$EDITOR`, e.g. `vi` or `code --wait`).
    public static func edit(_ options: AdminConnection.Options, reference: String, editor: String) async throws -> String {
        let (kind, name) = try AdminCommands.parseReference(reference)
        guard let name else {
            throw TeleportError.badParameter("tctl edit needs KIND/NAME, e.g. tctl edit role/dev")
        }
        if let reason = AnyResource.whyNotEditable(kind) { throw TeleportError.badParameter(reason) }
        let client = try AdminConnection.client(options)
        let original = try await client.resource(kind: kind, name: name)
        let text = try ResourceCodec.yaml(withoutRevision(original).value)

        let workspace = try Workspace(fileName: "\(kind)-\(name).yaml", contents: text)
        /// Errors after the editor ran keep the edited file, so that no edit is lost.
        func keeping(_ error: TeleportError) -> TeleportError {
            TeleportError(error.code, "\(error.message) (your edited copy is kept in \(workspace.file.path))")
        }
        do {
            try await runEditor(editor, on: workspace.file)
        } catch {
            workspace.remove()
            throw error
        }
        let editedText: String
        do {
            editedText = try AdminCommands.readResourceFile(workspace.file.path)
        } catch let error as TeleportError {
            throw keeping(error)
        }
        if editedText == text {
            workspace.remove()
            return "no changes made to \(kind) \"\(name)\"\n"
        }
        let edited: AnyResource
        do {
            let documents = try ResourceCodec.decodeDocuments(editedText, source: "edited \(kind)/\(name)")
            guard documents.count == 1, let only = documents.first, only.kind == kind, only.name == name else {
                throw TeleportError.badParameter(
                    "the edited file must hold \(kind) \"\(name)\" alone (tctl create makes new resources); nothing was saved")
            }
            edited = try withoutRevision(only)
        } catch let error as TeleportError {
            throw keeping(error)
        }
        if edited == (try withoutRevision(original)) {
            workspace.remove()
            return "no changes made to \(kind) \"\(name)\"\n"
        }
        do {
            try await save(edited, over: original, client: client)
        } catch let error as TeleportError where error.code == .compareFailed || error.code == .notFound {
            let what = error.code == .notFound ? "deleted" : "changed"
            throw keeping(
                TeleportError(
                    error.code,
                    "\(kind) \"\(name)\" was \(what) on the server while it was being edited; nothing was saved (run tctl edit again)"))
        } catch let error as TeleportError {
            throw keeping(error)
        }
        workspace.remove()
        return "\(kind) \"\(name)\" has been updated\n"
    }

    /// Writes `edited` only if the stored resource is still `original`: the server compares the
    /// revision that was read and swaps (every stored resource carries one).
    static func save(_ edited: AnyResource, over original: AnyResource, client: AuthClient) async throws {
        guard let revision = original.value.metadata.revision, !revision.isEmpty else {
            throw TeleportError.internalError("\(original.kind) \"\(original.name)\" came without a revision; nothing was saved")
        }
        var value = edited.value
        value.metadata.revision = revision
        try await client.update(try AnyResource(value))
    }

    static func withoutRevision(_ resource: AnyResource) throws -> AnyResource {
        var value = resource.value
        value.metadata.revision = nil
        return try AnyResource(value)
    }

    /// Runs `editor FILE` through `/bin/sh` (the command may carry arguments) on the terminal tctl
    /// runs on, and waits for it.
    ///
    /// The editor runs in tctl's own process group, so it is in the terminal's foreground group
    /// and may read it (Foundation's `Process` starts a new group, and the terminal stops a
    /// background reader: `vi` and `nano` hung, stopped). While it runs, tctl ignores Ctrl-C and
    /// Ctrl-\ (they are the editor's, as `system(3)` does); the editor gets default signals.
    static func runEditor(_ editor: String, on file: URL) async throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // The editor gets the terminal (0, 1, 2) and nothing else of tctl's: not its connection to
        // the auth service, nor its event loops' descriptors.
        teleport_spawn_close_from(&actions, 3)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let words: [String] = ["/bin/sh", "-c", "\(editor) \"$1\"", "tctl-edit", file.path]
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let previousInterrupt = signal(SIGINT, SIG_IGN)
        let previousQuit = signal(SIGQUIT, SIG_IGN)
        defer {
            signal(SIGINT, previousInterrupt)
            signal(SIGQUIT, previousQuit)
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, "/bin/sh", &actions, &attributes, argv, environ)
        guard spawned == 0 else {
            throw TeleportError.badParameter("cannot run the editor \"\(editor)\": \(String(cString: strerror(spawned)))")
        }
        let child = pid
        let status: Int32 = await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                var status: Int32 = 0
                while waitpid(child, &status, 0) < 0 && errno == EINTR {}
                continuation.resume(returning: status)
            }
        }
        // WIFEXITED / WEXITSTATUS / WTERMSIG are C macros Swift does not import.
        let signalled = status & 0x7f
        let code = signalled == 0 ? (status >> 8) & 0xff : 128 + signalled
        guard code == 0 else {
            throw TeleportError.badParameter(
                "the editor \"\(editor)\" exited with status \(code); nothing was saved (set EDITOR to choose another)")
        }
    }

    /// A private directory (0700) holding the file to edit (0600).
    struct Workspace {
        let directory: URL
        let file: URL

        init(fileName: String, contents: String) throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("tctl-edit-\(UUID().uuidString.lowercased())")
            file = directory.appendingPathComponent(fileName)
            do {
                try FileManager.default.createDirectory(
                    at: directory, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
            } catch {
                throw TeleportError.connectionProblem("cannot create a temporary directory for editing: \(error.localizedDescription)")
            }
            guard FileManager.default.createFile(atPath: file.path, contents: Data(contents.utf8), attributes: [.posixPermissions: 0o600])
            else {
                try? FileManager.default.removeItem(at: directory)
                throw TeleportError.connectionProblem("cannot write \(file.path)")
            }
            EditCleanup.arm(directory: directory.path)
        }

        func remove() {
            EditCleanup.disarm()
            try? FileManager.default.removeItem(at: directory)
        }
    }
}

/// Removes the edit's temporary directory when tctl is interrupted or terminated (Ctrl-C outside
/// the editor, SIGTERM, SIGHUP) before it could remove it itself, then exits as the signal would.
/// The handler uses only C calls on paths prepared in advance.
enum EditCleanup {
    nonisolated(unsafe) static var directory: UnsafeMutablePointer<CChar>?
    static let signals: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT]

    static func arm(directory path: String) {
        directory = strdup(path)
        for number in signals {
            signal(number) { received in
                EditCleanup.removeDirectory()
                _exit(128 + received)
            }
        }
    }

    static func disarm() {
        for number in signals { signal(number, SIG_DFL) }
        free(directory)
        directory = nil
    }

    /// Deletes the directory's files (the edited file, an editor's swap file) and the directory.
    static func removeDirectory() {
        guard let directory, let handle = opendir(directory) else { return }
        let descriptor = dirfd(handle)
        while let entry = readdir(handle) {
            withUnsafePointer(to: entry.pointee.d_name) { name in
                name.withMemoryRebound(to: CChar.self, capacity: 256) { text in
                    if strcmp(text, ".") != 0 && strcmp(text, "..") != 0 { unlinkat(descriptor, text, 0) }
                }
            }
        }
        closedir(handle)
        rmdir(directory)
    }
}
