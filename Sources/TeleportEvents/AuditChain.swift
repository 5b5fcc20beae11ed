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
    static func seal(_ json: Data) throws -> (Data, String) {
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
        digest.map { String(format: "%02x", $0) }.joined()
    }
}

extension AuditChain {
    /// The `file://` log among an auth service's emitters, if any.
    public static func fileLog(of emitter: any AuditEmitter) -> FileAuditLog? {
        if let log = emitter as? FileAuditLog { return log }
        if let multi = emitter as? MultiEmitter { return multi.emitters.lazy.compactMap { $0 as? FileAuditLog }.first }
        return nil
    }
}
