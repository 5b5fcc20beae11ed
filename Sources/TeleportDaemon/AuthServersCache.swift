public import Foundation
import TeleportAPI

#if canImport(Glibc)
    import Glibc
#endif

/// The seed's `authservers.json` in the data dir: the auth servers a host last learned from the
/// cluster (`GET /v1/authservers`), kept fresh by ``AuthServersCacheService``. At start a proxy or a
/// node tries its configured `auth_servers` first and then these (so a host configured with an auth
/// server that was decommissioned, or is down, still finds the others). Pure functions; the file is
/// `{"auth_servers": ["host:port", ...]}`, written atomically with mode 0600.
public enum AuthServersCache {
    /// The file's name in the data dir.
    public static let fileName = "authservers.json"
    /// A larger file is ignored (it is a cache, never trusted to be sane).
    static let maxBytes = 64 * 1024
    /// At most this many addresses are kept.
    static let maxEntries = 64

    struct File: Codable, Equatable {
        var authServers: [String]
        enum CodingKeys: String, CodingKey { case authServers = "auth_servers" }
    }

    /// The cached addresses in `dataDir`, or none; `problem` says why a file present was ignored
    /// (for one warning line), never an error: a bad cache must not stop a host.
    public static func load(dataDir: URL) -> (addresses: [String], problem: String?) {
        let url = dataDir.appendingPathComponent(fileName)
        guard FileManager.default.fileExists(atPath: url.path) else { return ([], nil) }
        guard let data = try? Data(contentsOf: url) else { return ([], "\(url.path) cannot be read") }
        return decode(data, path: url.path)
    }

    /// Parses the file's bytes: valid `host:port` addresses, deduplicated, in order.
    static func decode(_ data: Data, path: String) -> (addresses: [String], problem: String?) {
        guard data.count <= maxBytes else { return ([], "\(path) is larger than \(maxBytes) bytes; ignored (it is rewritten from the cluster)") }
        guard let file = try? JSONDecoder().decode(File.self, from: data) else {
            return ([], "\(path) is not {\"auth_servers\": [\"host:port\", ...]}; ignored (it is rewritten from the cluster)")
        }
        var addresses: [String] = []
        var problem: String?
        for entry in file.authServers.prefix(maxEntries) {
            guard let address = normalized(entry) else {
                problem = "\(path): \"\(entry.prefix(80))\" is not a host:port address; skipped"
                continue
            }
            if !addresses.contains(address) { addresses.append(address) }
        }
        return (addresses, problem)
    }

    /// `host:port` with the auth port's default (3025), or nil when `text` is not an address.
    static func normalized(_ text: String) -> String? {
        guard !text.isEmpty, text.utf8.count <= 300, TerminalText.isPrintable(text), !text.contains(" "),
            let parsed = try? HostPort.parse(text, defaultPort: 3025, key: "auth_servers"), !parsed.host.isEmpty,
            (1...65535).contains(parsed.port)
        else { return nil }
        return HostPort.join(parsed.host, parsed.port)
    }

    /// The addresses a host dials: the configured ones in order, then the cached ones it was not
    /// configured with.
    public static func merge(configured: [String], cached: [String]) -> [String] {
        var merged = configured
        let known = Set(configured.compactMap(normalized))
        for address in cached where !known.contains(address) && !merged.contains(address) {
            merged.append(address)
        }
        return merged
    }

    /// The file's bytes for `addresses` (normalized, deduplicated, sorted so that a rewrite with
    /// the same servers is byte-identical).
    static func encode(_ addresses: [String]) throws -> Data {
        let clean = Array(Set(addresses.compactMap(normalized))).sorted().prefix(maxEntries)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return try encoder.encode(File(authServers: Array(clean)))
    }

    /// Writes the cache (a temporary file with mode 0600, then a rename: never half-written).
    /// Returns false when the file already held exactly this.
    @discardableResult
    public static func write(_ addresses: [String], dataDir: URL) throws -> Bool {
        let data = try encode(addresses)
        let url = dataDir.appendingPathComponent(fileName)
        if (try? Data(contentsOf: url)) == data { return false }
        let temporary = dataDir.appendingPathComponent(".\(fileName).\(UUID().uuidString).tmp")
        guard FileManager.default.createFile(atPath: temporary.path, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw TeleportError.connectionProblem("cannot write \(temporary.path) (is the data dir writable?)")
        }
        // rename(2) replaces the old file atomically.
        guard rename(temporary.path, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temporary)
            throw TeleportError.connectionProblem("cannot replace \(url.path): \(reason)")
        }
        return true
    }
}
