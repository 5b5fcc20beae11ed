import Foundation
import TeleportAPI

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The auth address that `tctl nodes add` tells a new node to join with, and where it came from:
/// never a loopback address that no other host can use when a better one is known.
public struct JoinAddress: Sendable, Equatable {
    /// `HOST:PORT` for `--auth-server`.
    public var address: String
    /// Where the address came from, in words (printed after it).
    public var source: String

    /// Creates one.
    public init(address: String, source: String) {
        self.address = address
        self.source = source
    }

    /// Chooses, in order: the auth service's `public_addr`; `teleport.advertise_ip` with the
    /// listening port; the address given with `--auth-server`; when the auth service listens on
    /// every address, this host's first non-loopback address; else the address tctl used (with a
    /// warning when it is loopback).
    public static func choose(
        connected: String, explicit: Bool, publicAddrs: [String], advertiseIP: String?, listensEverywhere: Bool,
        hostAddresses: () -> [String]
    ) -> JoinAddress {
        let port = (try? HostPort.parse(connected, defaultPort: 3025, key: "auth address").port) ?? 3025
        if let first = publicAddrs.first(where: { !$0.isEmpty }) {
            let parsed = try? HostPort.parse(first, defaultPort: 3025, key: "auth_service.public_addr")
            return JoinAddress(address: parsed.map { HostPort.join($0.host, $0.port) } ?? first, source: "auth_service.public_addr")
        }
        if let advertiseIP, !advertiseIP.isEmpty {
            return JoinAddress(address: HostPort.join(advertiseIP, port), source: "teleport.advertise_ip")
        }
        if explicit {
            return JoinAddress(address: connected, source: "the --auth-server address")
        }
        let host = (try? HostPort.parse(connected, defaultPort: 3025, key: "auth address").host) ?? connected
        guard isLoopback(host) else { return JoinAddress(address: connected, source: "auth_service.listen_addr") }
        if listensEverywhere, let ip = hostAddresses().first {
            return JoinAddress(
                address: HostPort.join(ip, port),
                source: "this host's address: the auth service listens on every address; set auth_service.public_addr to advertise another")
        }
        return JoinAddress(
            address: connected,
            source: "a loopback address only this host can use: set auth_service.listen_addr to 0.0.0.0:\(port) "
                + "and auth_service.public_addr to the address nodes reach")
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host.hasPrefix("127.") || host == "::1"
    }

    /// This host's addresses other than loopback and link-local: IPv4 first.
    public static func hostAddresses() -> [String] {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return [] }
        defer { freeifaddrs(list) }
        var v4: [String] = []
        var v6: [String] = []
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let address = entry.pointee.ifa_addr else { continue }
            let family = Int32(address.pointee.sa_family)
            guard family == AF_INET || family == AF_INET6 else { continue }
            var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            let length = socklen_t(family == AF_INET ? MemoryLayout<sockaddr_in>.size : MemoryLayout<sockaddr_in6>.size)
            guard getnameinfo(address, length, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0 else { continue }
            let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if isLoopback(text) || text.hasPrefix("fe80") || text.contains("%") { continue }
            if family == AF_INET { v4.append(text) } else { v6.append(text) }
        }
        return v4 + v6
    }
}
