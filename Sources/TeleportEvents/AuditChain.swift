public import Foundation
import Crypto
public import TeleportAPI

/// The hash chain of the `file://` audit log (tamper evidence).
///
/// A line is sealed by hashing its bytes up to the closing brace (the JSON object, which holds
/// `prev_hash`, the previous line's hash) and appending `,"hash":"<64 hex>"}`. Checking a file is
/// then byte-exact: no re-encoding of JSON is involved.
public enum AuditChain {
    /// The head of the chain at some moment, which the auth service signs.
    public struct Head: Codable, Sendable, Equatable {
        /// The day file.
        public var file: String
        /// How many lines it had.
        public var lines: Int
        /// The hash of its last line then.
        public var hash: String

        public init(file: String, lines: Int, hash: String) {
            self.file = file
            self.lines = lines
            self.hash = hash
        }
    }

    /// A signed head, as stored by the auth service.
    public struct Checkpoint: Codable, Sendable, Equatable {
        public var head: Head
        /// When it was signed (RFC 3339, kept as the text that was signed).
        public var time: String
        /// The signature (base64) over ``message``.
        public var signature: String

        public init(head: Head, time: Date, signature: String) {
            self.head = head
            self.time = RFC3339.format(time)
            self.signature = signature
        }

        /// What is signed.
        public var message: Data {
            Data("teleport-audit-checkpoint\n\(head.file)\n\(head.lines)\n\(head.hash)\n\(time)".utf8)
        }
    }

    /// What a verification found.
    public struct Report: Codable, Sendable, Equatable {
        /// True when nothing is wrong.
        public var ok: Bool
        /// Files and events checked.
        public var files: Int
        public var events: Int
        /// Checkpoints compared.
        public var checkpoints: Int
        /// The first problem, naming the file and line.
        public var problem: String?

        public init(ok: Bool, files: Int, events: Int, checkpoints: Int, problem: String?) {
            self.ok = ok
            self.files = files
            self.events = events
            self.checkpoints = checkpoints
            self.problem = problem
        }
    }

    static let suffixLength = #","hash":""#.utf8.count + 64 + #""}"#.utf8.count

    /// Seals one JSON object line: returns the line with its `hash` field, and the hash.
    public static func seal(_ json: Data) throws -> (Data, String) {
        guard json.last == UInt8(ascii: "}"), json.count > 2 else {
            throw TeleportError.internalError("an audit line must be a non-empty JSON object")
        }
        let content = json.dropLast()
        let hash = hex(SHA256.hash(data: content))
        return (content + Data(#","hash":"\#(hash)"}"#.utf8), hash)
    }

    /// The `hash` a sealed line carries, or nil when it is not sealed.
    public static func storedHash(_ line: Data) -> String? {
        guard line.count > suffixLength else { return nil }
        let suffix = line.suffix(suffixLength)
        let prefix = Data(#","hash":""#.utf8)
        guard suffix.starts(with: prefix), suffix.last == UInt8(ascii: "}"), suffix.dropLast().last == UInt8(ascii: "\"") else { return nil }
        let hash = String(decoding: suffix.dropFirst(prefix.count).dropLast(2), as: UTF8.self)
        guard hash.count == 64, hash.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else { return nil }
        return hash
    }

    /// The day files of a directory, oldest first.
    public static func dayFiles(in directory: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [])
            .filter { $0.hasSuffix(".00:00:00.log") && $0.count == "2017-02-03.00:00:00.log".count }.sorted()
    }

    /// Checks the chain of the day files from `fromFile` to `toFile` (names, inclusive) and the
    /// checkpoints that fall in them. The first line checked is taken as given (older files may
    /// have been removed on purpose); every later link must hold.
    public static func verify(directory: URL, fromFile: String, toFile: String, checkpoints: [Checkpoint]) -> Report {
        let files = dayFiles(in: directory).filter { $0 >= fromFile && $0 <= toFile }
        var previous: String?
        var events = 0
        var compared = 0
        func failed(_ problem: String) -> Report {
            Report(ok: false, files: files.count, events: events, checkpoints: compared, problem: problem)
        }
        for file in files {
            guard let data = FileManager.default.contents(atPath: directory.appendingPathComponent(file).path) else {
                return failed("\(file) cannot be read")
            }
            if !data.isEmpty, data.last != 0x0A { return failed("\(file) is truncated: its last line is incomplete") }
            let lines = data.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast().map { Data($0) }
            var hashes: [String] = []
            for (index, line) in lines.enumerated() {
                let place = "\(file) line \(index + 1)"
                guard let stored = storedHash(line) else { return failed("\(place) was edited (it is not a sealed audit line)") }
                guard hex(SHA256.hash(data: line.prefix(line.count - suffixLength))) == stored else {
                    return failed("\(place) was edited (its content does not match its hash)")
                }
                let fields = (try? ResourceCodec.jsonDecoder().decode([String: JSONValue].self, from: line)) ?? [:]
                guard case .string(let prev)? = fields["prev_hash"] else { return failed("\(place) was edited (it has no prev_hash)") }
                if let previous, prev != previous {
                    return failed(
                        index == 0
                            ? "\(place): events are missing before it (a day file, or the last lines of the one before, were removed)"
                            : "\(place): an event before it was removed, or the lines were reordered")
                }
                previous = stored
                hashes.append(stored)
                events += 1
            }
            for checkpoint in checkpoints where checkpoint.head.file == file {
                compared += 1
                guard hashes.count >= checkpoint.head.lines else {
                    return failed(
                        "\(file) is truncated: it has \(hashes.count) events but held \(checkpoint.head.lines) when the auth service signed a checkpoint at \(checkpoint.time)")
                }
                guard checkpoint.head.lines > 0, hashes[checkpoint.head.lines - 1] == checkpoint.head.hash else {
                    return failed("\(file) line \(checkpoint.head.lines) does not match the checkpoint signed at \(checkpoint.time)")
                }
            }
        }
        return Report(ok: true, files: files.count, events: events, checkpoints: compared, problem: nil)
    }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        LowerHex.string(digest)
    }
}

extension AuditChain {
    /// The hash-chained log among an auth service's emitters that it searches and verifies: the first
    /// one of `audit_events_uri` that keeps a chain (`postgresql://` or `file://`), if any.
    public static func chainedLog(of emitter: any AuditEmitter) -> (any ChainedAuditLog)? {
        if let log = emitter as? any ChainedAuditLog { return log }
        if let multi = emitter as? MultiEmitter { return multi.emitters.lazy.compactMap { $0 as? any ChainedAuditLog }.first }
        return nil
    }

    /// Checks one chain kept as numbered rows (the `postgresql://` log: one chain per auth server,
    /// `rows` in order of `seq`) and the checkpoints signed for it (`head.file` == `name`). The rows
    /// checked start at `seq` 1 unless `fromStart` is false (a time range: the first row is taken as
    /// given); every later row must follow the one before it, with no number missing.
    public static func verify(chain name: String, rows: [(seq: Int64, line: Data)], fromStart: Bool, checkpoints: [Checkpoint]) -> Report {
        var previous: (seq: Int64, hash: String)?
        var hashes: [Int64: String] = [:]
        var events = 0
        var compared = 0
        func failed(_ problem: String) -> Report {
            Report(ok: false, files: 1, events: events, checkpoints: compared, problem: problem)
        }
        for (seq, line) in rows {
            let place = "\(name) event \(seq)"
            guard let stored = storedHash(line) else { return failed("\(place) was edited (it is not a sealed audit line)") }
            guard hex(SHA256.hash(data: line.prefix(line.count - suffixLength))) == stored else {
                return failed("\(place) was edited (its content does not match its hash)")
            }
            let fields = (try? ResourceCodec.jsonDecoder().decode([String: JSONValue].self, from: line)) ?? [:]
            guard case .string(let prev)? = fields["prev_hash"] else { return failed("\(place) was edited (it has no prev_hash)") }
            if let previous {
                guard seq == previous.seq + 1 else { return failed("\(name): events \(previous.seq + 1) to \(seq - 1) were removed") }
                guard prev == previous.hash else { return failed("\(place): the event before it was replaced, or the rows were reordered") }
            } else if fromStart {
                guard seq == 1, prev.isEmpty else { return failed("\(name): the chain's first events (before \(seq)) were removed") }
            }
            previous = (seq, stored)
            hashes[seq] = stored
            events += 1
        }
        let last = previous?.seq ?? 0
        for checkpoint in checkpoints where checkpoint.head.file == name {
            compared += 1
            let signed = Int64(checkpoint.head.lines)
            // (A time range may end before the signed event: only the whole chain can show truncation.)
            guard last >= signed || !fromStart else {
                return failed("\(name) is truncated: it has \(last) events but held \(signed) when the auth service signed a checkpoint at \(checkpoint.time)")
            }
            if let hash = hashes[signed], hash != checkpoint.head.hash {
                return failed("\(name) event \(signed) does not match the checkpoint signed at \(checkpoint.time)")
            }
        }
        return Report(ok: true, files: 1, events: events, checkpoints: compared, problem: nil)
    }
}

/// An audit log that keeps a hash chain the auth service signs checkpoints of and verifies
/// (`tctl audit verify`): `file://` (one chain across day files) and `postgresql://` (one chain per
/// auth server in a shared table).
public protocol ChainedAuditLog: AuditReader {
    /// The chain's head now (nil before the first event), to sign as a checkpoint.
    func chainHead() async throws -> AuditChain.Head?
    /// Checks the chain between two days (all when nil) and the `checkpoints` that belong to it.
    func verifyChain(from: Date?, to: Date?, checkpoints: [AuditChain.Checkpoint]) async throws -> AuditChain.Report
}

extension FileAuditLog: ChainedAuditLog {
    public func chainHead() -> AuditChain.Head? { head() }

    public func verifyChain(from: Date?, to: Date?, checkpoints: [AuditChain.Checkpoint]) -> AuditChain.Report {
        let fromFile = from.map { Self.fileName(for: $0) } ?? "0000"
        let toFile = to.map { Self.fileName(for: $0) } ?? "9999"
        return AuditChain.verify(directory: directory, fromFile: fromFile, toFile: toFile, checkpoints: checkpoints)
    }
}
