public import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A host of its own for tests: a Linux network namespace joined to this one by a veth pair on a
/// private /30 of 10.211.0.0/16 (the tests' own addresses), optionally fenced by iptables so that it
/// can reach only the addresses and ports a test allows, and nothing can connect into it.
/// Needs root (`ip`, `iptables` from Debian's iproute2 and iptables); ``remove()`` deletes the
/// namespace and both veth ends. Run a process inside with ``wrap(_:_:)``: `ip netns exec` execs
/// the program itself, so the PID a test gets is the program's and it can be stopped by PID.
public final class NetworkNamespace: @unchecked Sendable {
    /// The namespace's name (`ip netns list`).
    public let name: String
    /// The address of this side of the veth pair (what the namespace reaches this host at).
    public let hostAddress: String
    /// The namespace's own address.
    public let address: String
    private let hostInterface: String

    private static let counter = Counter()

    private init(name: String, hostInterface: String, hostAddress: String, address: String) {
        self.name = name
        self.hostInterface = hostInterface
        self.hostAddress = hostAddress
        self.address = address
    }

    /// Whether namespaces can be made here (root, `ip` present).
    public static var available: Bool {
        getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip")
    }

    /// Creates a namespace with loopback up, a veth pair to this host and a default route through it.
    public static func create() async throws -> NetworkNamespace {
        let index = counter.next()
        // Unique per test process and namespace: the /30 comes from the PID and a counter.
        let slot = (Int(getpid()) % 200) * 64 + index
        let third = (slot / 64) % 250 + 1
        let fourth = (slot % 64) * 4
        let tag = "\(getpid() % 100_000)n\(index)"
        let namespace = NetworkNamespace(
            name: "tp\(tag)", hostInterface: "tv\(tag)", hostAddress: "10.211.\(third).\(fourth + 1)",
            address: "10.211.\(third).\(fourth + 2)")
        let peer = "tq\(tag)"
        do {
            try await ip(["netns", "add", namespace.name])
            try await ip(["link", "add", namespace.hostInterface, "type", "veth", "peer", "name", peer])
            try await ip(["link", "set", peer, "netns", namespace.name])
            try await ip(["addr", "add", "\(namespace.hostAddress)/30", "dev", namespace.hostInterface])
            try await ip(["link", "set", namespace.hostInterface, "up"])
            try await ip(["netns", "exec", namespace.name, "ip", "addr", "add", "\(namespace.address)/30", "dev", peer])
            try await ip(["netns", "exec", namespace.name, "ip", "link", "set", peer, "up"])
            try await ip(["netns", "exec", namespace.name, "ip", "link", "set", "lo", "up"])
            // A default route through this host, as a host behind NAT has: the namespace can reach
            // this host's other addresses (a proxy bound to another namespace's veth address); the
            // fence (``allowOnly(_:)``), not the routing, decides what it may reach.
            try await ip(["netns", "exec", namespace.name, "ip", "route", "add", "default", "via", namespace.hostAddress])
        } catch {
            await namespace.remove()
            throw error
        }
        return namespace
    }

    /// Fences the namespace: outgoing connections only to `destinations` (host, TCP port) and its
    /// own loopback; incoming only replies to its own connections. Nothing else in or out.
    public func allowOnly(_ destinations: [(host: String, port: UInt16)]) async throws {
        let iptables = ["netns", "exec", name, "iptables"]
        try await Self.ip(iptables + ["-P", "INPUT", "DROP"])
        try await Self.ip(iptables + ["-P", "OUTPUT", "DROP"])
        try await Self.ip(iptables + ["-P", "FORWARD", "DROP"])
        try await Self.ip(iptables + ["-A", "INPUT", "-i", "lo", "-j", "ACCEPT"])
        try await Self.ip(iptables + ["-A", "OUTPUT", "-o", "lo", "-j", "ACCEPT"])
        try await Self.ip(iptables + ["-A", "INPUT", "-m", "state", "--state", "ESTABLISHED,RELATED", "-j", "ACCEPT"])
        try await Self.ip(iptables + ["-A", "OUTPUT", "-m", "state", "--state", "ESTABLISHED,RELATED", "-j", "ACCEPT"])
        for destination in destinations {
            try await Self.ip(
                iptables + ["-A", "OUTPUT", "-p", "tcp", "-d", destination.host, "--dport", "\(destination.port)", "-j", "ACCEPT"])
        }
    }

    /// `executable arguments` run inside the namespace (`ip netns exec NAME ...`), as an
    /// executable and arguments for ``TestSupport/spawnDaemon(_:_:logPath:)`` or ``TestSupport/run``.
    public func wrap(_ executable: String, _ arguments: [String]) -> (String, [String]) {
        ("/usr/sbin/ip", ["netns", "exec", name, executable] + arguments)
    }

    /// Deletes the namespace and the veth pair (deleting either end deletes both). Idempotent.
    public func remove() async {
        _ = try? await TestSupport.run("/usr/sbin/ip", ["netns", "del", name])
        _ = try? await TestSupport.run("/usr/sbin/ip", ["link", "del", hostInterface])
    }

    private static func ip(_ arguments: [String]) async throws {
        let result = try await TestSupport.run("/usr/sbin/ip", arguments)
        guard result.exitCode == 0 else {
            throw NamespaceError(message: "ip \(arguments.joined(separator: " ")) failed: \(result.stderr)")
        }
    }

    /// A failed `ip`/`iptables` command.
    public struct NamespaceError: Error, CustomStringConvertible {
        /// What failed.
        public let message: String
        public var description: String { message }
    }

    private final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        func next() -> Int {
            lock.lock()
            defer { lock.unlock() }
            value += 1
            return value
        }
    }
}
