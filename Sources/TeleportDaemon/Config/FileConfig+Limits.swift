import TeleportAPI

extension FileConfig {
    /// `teleport.connection_limits` (the seed's "Teleport Scalability Tweaks"): `max_connections`
    /// and `max_users` per SSH listener; 0 means no limit.
    mutating func parseConnectionLimits(_ node: ConfigNode) throws {
        for (limit, limitValue) in try node.mapping() {
            switch limit {
            case "max_connections": teleport.connectionLimits.maxConnections = try limitValue.count()
            case "max_users": teleport.connectionLimits.maxUsers = try limitValue.count()
            case "rates": warn(limitValue, "rate limits are not enforced yet")
            default: throw Self.unknown(limitValue, file: node.file)
            }
        }
    }

    /// `teleport.cache`: the proxy's and node's caches are in memory, which is what
    /// `type: in-memory` asks for; `enabled` is accepted (the cache cannot be turned off).
    mutating func parseCache(_ node: ConfigNode) throws {
        for (key, value) in try node.mapping() {
            switch key {
            case "type":
                let type = try value.string()
                guard type.lowercased() == "in-memory" else {
                    throw TeleportError.badParameter(
                        "\(node.file): \(value.path): the cache type \"\(type)\" is not supported; the allowed value is in-memory (or remove the key)")
                }
            case "enabled":
                if try !value.bool() { warn(value, "the cache cannot be turned off; it stays on, in memory") }
            case "ttl": warn(value, "the in-memory cache follows the cluster's changes as they happen; a TTL has no effect")
            default: throw Self.unknown(value, file: node.file)
            }
        }
    }
}
