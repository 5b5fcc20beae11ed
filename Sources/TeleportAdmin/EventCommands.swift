public import Foundation
public import TeleportAPI
import TeleportAuthClient

/// `tctl events ls`: the audit log, by time range and type.
public enum EventCommands {
    /// Reads `--from`/`--to`: RFC 3339 (`2026-11-21T10:00:00Z`), a day (`2026-11-21`, UTC), or a
    /// duration back from now (`2h`).
    public static func parseTime(_ text: String, flag: String, now: Date) throws -> Date {
        if let date = RFC3339.parse(text) { return date }
        if let date = RFC3339.parse(text + "T00:00:00Z") { return date }
        if let seconds = GoDuration.parse(text) { return now.addingTimeInterval(-seconds) }
        throw TeleportError.badParameter("\(flag)=\(text) is not a time: use 2026-11-21, 2026-11-21T10:00:00Z or a duration back from now such as 2h")
    }

    /// Lists events (every page up to `limit`) as text or JSON.
    public static func list(
        _ options: AdminConnection.Options, from: String?, to: String?, types: [String], limit: Int, format: AdminCommands.Format,
        clock: any WallClock = SystemClock()
    ) async throws -> String {
        let now = clock.now()
        let start = try from.map { try parseTime($0, flag: "--from", now: now) } ?? now.addingTimeInterval(-86_400)
        let end = try to.map { try parseTime($0, flag: "--to", now: now) } ?? now.addingTimeInterval(60)
        guard start <= end else { throw TeleportError.badParameter("--from is after --to") }
        let client = try AdminConnection.client(options)
        var events: [[String: JSONValue]] = []
        var key: String?
        repeat {
            let page = try await client.searchEvents(from: start, to: end, types: types, limit: min(500, limit - events.count), startKey: key)
            events += page.events
            key = page.nextKey
        } while key != nil && events.count < limit
        switch format {
        case .json, .yaml:
            let data = try ResourceCodec.jsonEncoder().encode(events)
            return String(decoding: data, as: UTF8.self) + "\n"
        case .text:
            let rows = events.map { event -> [String] in
                func text(_ key: String) -> String {
                    switch event[key] {
                    case .string(let value)?: return value
                    case .int(let value)?: return String(value)
                    case .bool(let value)?: return String(value)
                    default: return ""
                    }
                }
                let details = ["sid", "command", "exitCode", "path", "addr", "error", "addr.remote"].compactMap { key -> String? in
                    let value = text(key)
                    return value.isEmpty ? nil : "\(key)=\(value)"
                }.joined(separator: " ")
                return [text("time"), text("event"), text("code"), text("user"), text("login"), details]
            }
            return TextTable.render(headers: ["Time", "Event", "Code", "User", "Login", "Details"], rows: rows)
        }
    }
}

extension EventCommands {
    /// `tctl audit verify [--from DAY] [--to DAY]`: the hash chain and the signed checkpoints.
    public static func verify(_ options: AdminConnection.Options, from: String?, to: String?, clock: any WallClock = SystemClock()) async throws
        -> (output: String, ok: Bool)
    {
        let now = clock.now()
        let start = try from.map { try parseTime($0, flag: "--from", now: now) }
        let end = try to.map { try parseTime($0, flag: "--to", now: now) }
        let report = try await AdminConnection.client(options).verifyAudit(from: start, to: end)
        if report.ok {
            return ("OK: \(report.events) events in \(report.files) files, \(report.checkpoints) signed checkpoints match\n", true)
        }
        return ("FAILED: \(report.problem ?? "the audit log does not verify") (checked \(report.events) events before it)\n", false)
    }
}
