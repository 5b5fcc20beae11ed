public import Foundation
public import TeleportAPI

/// The `file://` audit log: one JSON-lines file per UTC day in a directory, named as the seed shows
/// (`2017-02-03.00:00:00.log`), created with mode 0640.
public actor FileAuditLog: AuditEmitter, AuditReader {
    /// The directory holding the day files.
    public let directory: URL
    private var handle: FileHandle?
    private var currentDay: String?

    /// Opens (creating if needed, mode 0750) the log directory.
    public init(directory: URL) throws {
        self.directory = directory
        do {
            try FileManager.default.createDirectory(
                at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
        } catch {
            throw TeleportError.connectionProblem(
                "cannot create the audit log directory \(directory.path): \(error.localizedDescription)")
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
        var line = try event.jsonLine()
        line.append(0x0A)
        let day = Self.fileName(for: event.time)
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
            }
            try handle?.write(contentsOf: line)
        } catch let error as TeleportError {
            throw error
        } catch {
            handle = nil
            throw TeleportError.connectionProblem("cannot write the audit log in \(directory.path): \(error.localizedDescription)")
        }
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
        return try data.split(separator: 0x0A).map { try AuditEvent(jsonLine: Data($0)) }
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
