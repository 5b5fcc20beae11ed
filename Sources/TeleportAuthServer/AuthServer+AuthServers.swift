public import Foundation
public import TeleportAPI
import TeleportBackend
import TeleportServices

/// The cluster's auth servers announce themselves in the shared store so that hosts can learn of
/// auth servers they were not configured with (the seed's `authservers.json`, issue 18).
extension AuthServer {
    /// Where the announcements live: `/authservers/HOSTUUID`.
    static let authServersPrefix = "/authservers/"

    /// Writes (or refreshes) this auth server's announcement, kept for `ttl` seconds.
    public func announce(_ entry: AuthAPI.AuthServerEntry, ttl: TimeInterval) async throws {
        guard !entry.uuid.isEmpty, entry.uuid.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }) else {
            throw TeleportError.badParameter("\"\(entry.uuid)\" is not a host UUID")
        }
        try await stores.backend.put(
            Item(key: Self.authServersPrefix + entry.uuid, value: try ResourceCodec.json(entry), expires: clock.now().addingTimeInterval(ttl)))
    }

    /// The auth servers that announced themselves recently, ordered by address. An entry that does
    /// not decode is skipped (never fails the listing).
    public func authServers() async throws -> [AuthAPI.AuthServerEntry] {
        try await stores.backend.getRange(prefix: Self.authServersPrefix)
            .compactMap { try? ResourceCodec.jsonDecoder().decode(AuthAPI.AuthServerEntry.self, from: $0.value) }
            .sorted { $0.addr < $1.addr }
    }
}
