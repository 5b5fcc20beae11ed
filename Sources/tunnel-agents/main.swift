import ArgumentParser
import Foundation
import Logging
import NIOCore
import Synchronization
import TeleportAPI
import TeleportAuthClient
import TeleportTunnel

#if canImport(Glibc)
    import Glibc
#endif

/// A load generator for `bench/tunnels.py`: N simulated nodes, each a real tunnel client. It joins
/// N hosts with a node token (``JoinClient/join``, fresh UUIDs, bounded concurrency), heartbeats
/// their node records (registered as tunnelled; the proxy closes the tunnel of an unregistered
/// node) and runs one ``ReverseTunnelAgent`` per host, with its real ``ReconnectMachine``, whose
/// `node-ssh` service refuses every channel. Not a test and not part of the product.
///
/// Output, one line each, for a script to read:
///
///     joined N hosts in S s
///     registered N hosts                  (then waits for a line on stdin with --wait-stdin)
///     status at=EPOCH connected=C attempts=A established=E failures=F lost=L heartbeat_failures=H
///     second at=EPOCH dials=D failures=F up=U lost=L   (once per whole second that had any)
///     all N connected at=EPOCH
///
/// `status` comes every `--status-interval` seconds and on SIGUSR1; `attempts` counts dials
/// (every dial asks the target first), `failures` failed dials or handshakes, `lost` tunnels
/// that closed, `established` tunnels that came up.
@main
struct TunnelAgents: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tunnel-agents", abstract: "Runs N real reverse-tunnel agents against one proxy (a benchmark tool).")

    @Option(help: "The auth service address to join through and heartbeat to, HOST:PORT.")
    var auth: String
    @Option(help: "A node join token.")
    var token: String
    @Option(name: .customLong("ca-pin"), help: "The CA pin (sha256:...); without it the CA is trusted on first use.")
    var caPin: [String] = []
    @Option(help: "The proxy's tunnel address, HOST:PORT.")
    var proxy: String
    @Option(help: "How many agents.")
    var count = 1000
    @Option(help: "How many joins run at once.")
    var concurrency = 16
    @Option(name: .customLong("heartbeat-interval"), help: "Seconds between two heartbeats of one host (the daemon's: 10).")
    var heartbeatInterval = 10.0
    @Option(name: .customLong("status-interval"), help: "Seconds between two status lines (0: only on SIGUSR1).")
    var statusInterval = 1.0
    @Flag(name: .customLong("wait-stdin"), help: "After registering the hosts, wait for a line on stdin before dialling.")
    var waitStdin = false

    func run() async throws {
        let quiet = Logger(label: "tunnel-agents") { _ in SwiftLogNoOpLogHandler() }
        let (proxyHost, proxyPort) = try HostPort.parse(proxy, defaultPort: 3024, key: "--proxy")
        let counters = Counters()

        // 1. Join N hosts, at most `concurrency` at once.
        let started = Date()
        let hosts = try await joinAll(logger: quiet)
        emit("joined \(hosts.count) hosts in \(String(format: "%.1f", Date().timeIntervalSince(started))) s")

        // 2. Register them (one heartbeat each), then keep heartbeating in the background.
        let clients = try hosts.map { try AuthClient(address: auth, identity: $0.identity, timeout: .seconds(20)) }
        try await forEachBounded(Array(hosts.indices)) { index in
            try await Self.retrying("heartbeat of \(hosts[index].node.spec.hostname)") { try await clients[index].heartbeat(hosts[index].node) }
        }
        emit("registered \(hosts.count) hosts")
        if waitStdin { await Self.readLine() }

        try await withThrowingTaskGroup(of: Void.self) { group in
            let interval = heartbeatInterval
            for index in hosts.indices {
                group.addTask {
                    let offset = interval * Double(index) / Double(max(hosts.count, 1))
                    try? await Task.sleep(for: .seconds(offset))
                    while !Task.isCancelled {
                        do {
                            try await clients[index].heartbeat(hosts[index].node)
                        } catch {
                            counters.heartbeatFailures.add(1, ordering: .relaxed)
                        }
                        try? await Task.sleep(for: .seconds(interval))
                    }
                }
            }

            // 3. One real agent per host.
            for host in hosts {
                let state = AgentState(counters: counters, total: hosts.count)
                let configuration = ReverseTunnelAgent.Configuration(
                    hostUUID: host.node.name, clusterName: host.clusterName, proxyHost: proxyHost, proxyPort: proxyPort,
                    tlsContext: try TunnelTLS.clientTLSContext(
                        certificatePEM: host.identity.certificatePEM, keyPEM: host.identity.keyPEM,
                        trustedCAPEMs: host.identity.trustedCAPEMs),
                    services: [
                        .nodeSSH: { channel, _ in
                            channel.eventLoop.makeFailedFuture(TeleportError.accessDenied("a benchmark agent serves no SSH"))
                        }
                    ]
                ).resolving {
                    counters.attempts.add(1, ordering: .relaxed)
                    counters.record(.dial)
                    return (proxyHost, proxyPort)
                }
                let agent = ReverseTunnelAgent(configuration: configuration, logger: Logger(label: "agent") { _ in CountingLogHandler(state: state) })
                group.addTask { await agent.run() }
            }

            // 4. Status lines: periodically and on SIGUSR1.
            let report: @Sendable () -> Void = {
                emit(counters.statusLine())
                for line in counters.completedSeconds() { emit(line) }
            }
            signal(SIGUSR1, SIG_IGN)
            let usr1 = DispatchSource.makeSignalSource(signal: SIGUSR1, queue: .global())
            usr1.setEventHandler(handler: report)
            usr1.resume()
            if statusInterval > 0 {
                let every = statusInterval
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .seconds(every))
                        report()
                    }
                }
            }
            try await group.waitForAll()
            usr1.cancel()
        }
    }

    /// A joined host: its node record, identity and cluster.
    struct Host: Sendable {
        var node: ServerNode
        var identity: ClientIdentity
        var clusterName: String
    }

    func joinAll(logger: Logger) async throws -> [Host] {
        let (auth, token, caPin) = (self.auth, self.token, self.caPin)
        let joined = Mutex<[Host]>([])
        try await forEachBounded(Array(0..<count)) { index in
            let name = "agent-\(index)"
            // A fresh UUID per attempt: a join that succeeded but whose reply was lost holds its UUID.
            let (uuid, identity, clusterName) = try await Self.retrying("join of \(name)") {
                let uuid = UUID().uuidString.lowercased()
                let (identity, clusterName) = try await JoinClient.join(
                    authServer: auth, token: token, caPins: caPin, role: .node, hostUUID: uuid, nodeName: name, addresses: [],
                    sshHostPublicKey: nil, logger: logger)
                return (uuid, identity, clusterName)
            }
            var node = ServerNode(uuid: uuid, hostname: name, addr: "", labels: ["bench": "tunnel-agents"])
            node.spec.useTunnel = true
            let host = Host(node: node, identity: identity, clusterName: clusterName)
            joined.withLock { $0.append(host) }
        }
        return joined.withLock { $0 }
    }

    /// Runs `body` for every item, at most ``concurrency`` at once; the first error ends it.
    func forEachBounded<T: Sendable>(_ items: [T], _ body: @escaping @Sendable (T) async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = items.makeIterator()
            for _ in 0..<max(concurrency, 1) {
                guard let item = next.next() else { break }
                group.addTask { try await body(item) }
            }
            while try await group.next() != nil {
                guard let item = next.next() else { continue }
                group.addTask { try await body(item) }
            }
        }
    }

    /// Runs `body` up to three times (a loaded machine times out a call now and then), logging
    /// each failure to stderr; the last error is thrown.
    static func retrying<T: Sendable>(_ what: String, _ body: @Sendable () async throws -> T) async throws -> T {
        var attempt = 1
        while true {
            do {
                return try await body()
            } catch {
                FileHandle.standardError.write(Data("\(what), attempt \(attempt): \((error as? TeleportError)?.message ?? "\(error)")\n".utf8))
                guard attempt < 3 else { throw error }
                attempt += 1
                try await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Waits for one line on stdin (or its end) on a thread of its own.
    static func readLine() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                _ = Swift.readLine()
                continuation.resume()
            }
        }
    }
}

/// Writes one line to stdout at once (unbuffered: a script reads it as it comes).
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// The counters every agent adds to, in total and per wall-clock second.
final class Counters: Sendable {
    let connected = Atomic<Int>(0)
    let attempts = Atomic<Int>(0)
    let established = Atomic<Int>(0)
    let failures = Atomic<Int>(0)
    let lost = Atomic<Int>(0)
    let heartbeatFailures = Atomic<Int>(0)

    /// What happened in one second.
    enum Event: Int { case dial = 0, failure, up, lost }
    /// Per epoch second: dials, failures, tunnels up, tunnels lost.
    private let seconds = Mutex<[Int: [Int]]>([:])

    func record(_ event: Event) {
        let second = Int(Date().timeIntervalSince1970)
        seconds.withLock { $0[second, default: [0, 0, 0, 0]][event.rawValue] += 1 }
    }

    /// One `second` line per whole second that is over, oldest first (each second once).
    func completedSeconds() -> [String] {
        let now = Int(Date().timeIntervalSince1970)
        let done = seconds.withLock { buckets -> [(Int, [Int])] in
            let over = buckets.filter { $0.key < now }.sorted { $0.key < $1.key }
            for (second, _) in over { buckets[second] = nil }
            return over
        }
        return done.map { second, counts in
            "second at=\(second) dials=\(counts[0]) failures=\(counts[1]) up=\(counts[2]) lost=\(counts[3])"
        }
    }

    func statusLine() -> String {
        let at = String(format: "%.3f", Date().timeIntervalSince1970)
        return "status at=\(at) connected=\(connected.load(ordering: .relaxed)) attempts=\(attempts.load(ordering: .relaxed)) "
            + "established=\(established.load(ordering: .relaxed)) failures=\(failures.load(ordering: .relaxed)) "
            + "lost=\(lost.load(ordering: .relaxed)) heartbeat_failures=\(heartbeatFailures.load(ordering: .relaxed))"
    }
}

/// One agent's tunnel state, kept from what the agent logs (it exposes no other signal).
final class AgentState: Sendable {
    let counters: Counters
    let total: Int
    private let up = Mutex(false)

    init(counters: Counters, total: Int) {
        self.counters = counters
        self.total = total
    }

    func observe(_ message: String) {
        if message.hasPrefix("reverse tunnel to the proxy is up") {
            counters.established.add(1, ordering: .relaxed)
            counters.record(.up)
            guard up.withLock({ value in defer { value = true }; return !value }) else { return }
            let now = counters.connected.add(1, ordering: .relaxed).newValue
            if now == total {
                emit("all \(total) connected at=\(String(format: "%.3f", Date().timeIntervalSince1970))")
            }
        } else if message.hasPrefix("cannot open the reverse tunnel") {
            counters.failures.add(1, ordering: .relaxed)
            counters.record(.failure)
        } else if message.hasPrefix("the reverse tunnel closed") || message.hasPrefix("the proxy missed") {
            counters.lost.add(1, ordering: .relaxed)
            counters.record(.lost)
            if up.withLock({ value in defer { value = false }; return value }) {
                counters.connected.subtract(1, ordering: .relaxed)
            }
        }
    }
}

/// Feeds an agent's log messages to its ``AgentState``; prints nothing.
struct CountingLogHandler: LogHandler {
    let state: AgentState
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .debug

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        state.observe(event.message.description)
    }
}
