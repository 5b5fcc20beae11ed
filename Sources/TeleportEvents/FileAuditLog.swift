public import Foundation
public import TeleportAPI

/// The `file://` audit log: one JSON-lines file per UTC day in a directory, named as the seed shows
/// (`2017-02-03.00:00:00.log`), created with mode 0640.
///
/// The lines form a hash chain across files: each carries `prev_hash` (the `hash` of the line before
/// it) and ends with `"hash":"<hex>"`, the SHA-256 of the line's bytes up to that field. An edited,
/// removed or reordered line breaks the chain (see ``AuditChain``); the auth service signs
/// checkpoints of the chain's head so that removing the last lines is found too.
public actor FileAuditLog: AuditEmitter, AuditReader {
    /// The directory holding the day files.
    public nonisolated let directory: URL
    private var handle: FileHandle?
    private var currentDay: String?
    /// Days since 1970 (UTC) of ``currentDay``: the name is formatted only when the day changes.
    private var currentDayNumber: Int64?
    /// The `hash` of the last line written (empty before the first).
    private var lastHash: String
    /// The number of lines in the current day's file.
    private var linesInDay = 0

    /// Opens (creating if needed, mode 0750) the log directory and finds the chain's head.
    public init(directory: URL) throws {
        self.directory = directory
        do {
            try FileManager.default.createDirectory(
                at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
        } catch {
            throw TeleportError.connectionProblem(
                "cannot create the audit log directory \(directory.path): \(error.localizedDescription)")
        }
        lastHash = ""
        if let newest = AuditChain.dayFiles(in: directory).last,
            let data = FileManager.default.contents(atPath: directory.appendingPathComponent(newest).path)
        {
            let lines = data.split(separator: 0x0A)
            if let last = lines.last, let hash = AuditChain.storedHash(Data(last)) { lastHash = hash }
            currentDay = nil
        }
    }

    /// The file name for the UTC day of `date`.
    public static func fileName(for date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? .current
        let parts = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d.00:00:00.log", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0)
    }

    public func emit(_ event: AuditEvent) async throws {
        var chained = event
        chained.fields["prev_hash"] = .string(lastHash)
        chained.fields["hash"] = nil
        let (line, hash) = try AuditChain.seal(chained.jsonLine())
        let dayNumber = Int64((event.time.timeIntervalSince1970 / 86_400).rounded(.down))
        let day = dayNumber == currentDayNumber ? (currentDay ?? Self.fileName(for: event.time)) : Self.fileName(for: event.time)
        do {
            if day != currentDay || handle == nil {
                try handle?.close()
                let url = directory.appendingPathComponent(day)
                if !FileManager.default.fileExists(atPath: url.path) {
                    guard FileManager.default.createFile(atPath: url.path, contents: nil, attributes: [.posixPermissions: 0o640])
                    else {
                        throw TeleportError.connectionProblem("cannot create the audit log file \(url.path)")
                    }
                }
                let opened = try FileHandle(forWritingTo: url)
                try opened.seekToEnd()
                handle = opened
                currentDay = day
                currentDayNumber = dayNumber
                linesInDay = (FileManager.default.contents(atPath: url.path) ?? Data()).split(separator: 0x0A).count
            }
            let start = try handle?.offset()
            do {
                try handle?.write(contentsOf: line + Data([0x0A]))
            } catch {
                // A full disk may take half a line: cut it off, so the file stays a whole chain.
                if let start { try? handle?.truncate(atOffset: start) }
                throw error
            }
            lastHash = hash
            linesInDay += 1
        } catch let error as TeleportError {
            throw error
        } catch {
            try? handle?.close()
            handle = nil
            throw TeleportError.connectionProblem("cannot write the audit log in \(directory.path): \(error.localizedDescription)")
        }
    }

    /// The chain's head: the current file, how many lines it has, and the last line's hash.
    public func head() -> AuditChain.Head? {
        guard let currentDay, !lastHash.isEmpty else { return nil }
        return AuditChain.Head(file: currentDay, lines: linesInDay, hash: lastHash)
    }

    public func events(from: Date, to: Date) throws -> [AuditEvent] {
        var day = from
        var result: [AuditEvent] = []
        var seen = Set<String>()
        while day <= to.addingTimeInterval(86_400) {
            let name = Self.fileName(for: day)
            if seen.insert(name).inserted { result += try events(on: day) }
            day = day.addingTimeInterval(86_400)
        }
        return result.filter { $0.time >= from && $0.time <= to }
    }

    /// Every event stored for the UTC day of `date`, in order.
    public func events(on date: Date) throws -> [AuditEvent] {
        let url = directory.appendingPathComponent(Self.fileName(for: date))
        guard let data = FileManager.default.contents(atPath: url.path) else { return [] }
        // The chain's fields are the log's business, not the events'.
        return try data.split(separator: 0x0A).map {
            var event = try AuditEvent(jsonLine: Data($0))
            event.fields["hash"] = nil
            event.fields["prev_hash"] = nil
            return event
        }
    }
}

/// The `stdout://` audit sink: one JSON line per event on standard output.
public struct StdoutAuditLog: AuditEmitter {
    /// Creates the sink.
    public init() {}

    public func emit(_ event: AuditEvent) async throws {
        var line = try event.jsonLine()
        line.append(0x0A)
        try FileHandle.standardOutput.write(contentsOf: line)
    }
}
