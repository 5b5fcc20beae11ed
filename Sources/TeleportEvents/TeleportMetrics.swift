public import Foundation
import Synchronization

/// The process's metrics registry: counters, gauges and histograms, rendered in the Prometheus
/// text format on the diagnostics listener's `/metrics`.
///
/// The daemon creates one and injects it into the services (`AuthSettings.metrics`,
/// `SSHAudit.metrics`, the metered backend); each call site is one line. The names follow the
/// Prometheus conventions: `teleport_` prefix, base units (`_seconds`), `_total` on counters.
/// It is also the swift-metrics backend (`TeleportMetrics+MetricsFactory.swift`), so library
/// code that uses swift-metrics' `Counter` lands here too: one registry, one page.
public final class TeleportMetrics: Sendable {
    /// The metrics the services record, with their type and help text.
    public enum Metric: String, Sendable, CaseIterable {
        /// Build information; the value is 1, the version is a label.
        case buildInfo = "teleport_build_info"
        /// SSH connections accepted, by `service` (`node`, `proxy`).
        case connections = "teleport_connections_total"
        /// SSH connections open now, by `service`.
        case connectionsActive = "teleport_connections_active"
        /// Connections refused by `teleport.connection_limits`, by `service` and `reason`
        /// (`max_connections`, `max_users`).
        case connectionsRejected = "teleport_connections_rejected_total"
        /// Sessions started, by `service`.
        case sessions = "teleport_sessions_total"
        /// Sessions running now, by `service`.
        case sessionsActive = "teleport_sessions_active"
        /// User logins (password and second factor) at the auth service, by `result` (`success`, `failure`).
        case logins = "teleport_logins_total"
        /// SSH authentications at a node or proxy, by `service` and `result`.
        case sshAuthentications = "teleport_ssh_authentications_total"
        /// Certificates issued by the auth service, by `type` (`user`, `host`).
        case certificatesIssued = "teleport_certificates_issued_total"
        /// Node heartbeats received by the auth service.
        case heartbeats = "teleport_heartbeats_received_total"
        /// Audit events written to the audit log by the auth service.
        case auditEventsWritten = "teleport_audit_events_written_total"
        /// Audit events dropped under `audit_failure: continue`.
        case auditEventsDropped = "teleport_audit_events_dropped_total"
        /// Backend operation latency, by `operation`.
        case backendLatency = "teleport_backend_request_duration_seconds"
        /// Tunnels through the proxy's web port (ALPN) open now.
        case tunnelsActive = "teleport_proxy_tunnels_active"
        /// Tunnels through the proxy's web port opened.
        case tunnels = "teleport_proxy_tunnels_total"
        /// Agents' reverse tunnels to this proxy open now.
        case reverseTunnelsActive = "teleport_reverse_tunnels_active"
        /// Agents' reverse tunnels this proxy refused.
        case reverseTunnelsRejected = "teleport_reverse_tunnels_rejected_total"

        /// The Prometheus type.
        public var kind: Kind {
            switch self {
            case .buildInfo, .connectionsActive, .sessionsActive, .tunnelsActive, .reverseTunnelsActive: .gauge
            case .backendLatency: .histogram
            default: .counter
            }
        }

        /// The `# HELP` text.
        public var help: String {
            switch self {
            case .buildInfo: "Build information; the value is 1."
            case .connections: "SSH connections accepted, by service."
            case .connectionsActive: "SSH connections open now, by service."
            case .connectionsRejected: "Connections refused by teleport.connection_limits, by service and reason."
            case .sessions: "Sessions started, by service."
            case .sessionsActive: "Sessions running now, by service."
            case .logins: "User logins at the auth service, by result."
            case .sshAuthentications: "SSH authentications at nodes and proxies, by service and result."
            case .certificatesIssued: "Certificates issued by the auth service, by type."
            case .heartbeats: "Node heartbeats received by the auth service."
            case .auditEventsWritten: "Audit events written to the audit log."
            case .auditEventsDropped: "Audit events dropped under audit_failure: continue."
            case .backendLatency: "Backend operation latency in seconds, by operation."
            case .tunnelsActive: "Tunnels through the proxy's web port open now."
            case .tunnels: "Tunnels through the proxy's web port opened."
            case .reverseTunnelsActive: "Agents' reverse tunnels to this proxy open now."
            case .reverseTunnelsRejected: "Agents' reverse tunnels this proxy refused."
            }
        }
    }

    /// A Prometheus metric type.
    public enum Kind: String, Sendable {
        /// Only goes up (`_total`).
        case counter
        /// Goes up and down.
        case gauge
        /// Observations in buckets, with their sum and count.
        case histogram
    }

    /// The upper bounds of the histogram buckets, in seconds.
    public static let buckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    struct Series: Sendable {
        var value = 0.0
        var bucketCounts: [Int] = []
        var count = 0
    }

    struct Family: Sendable {
        var kind: Kind
        var help: String
        var series: [String: Series] = [:]
    }

    private let families = Mutex<[String: Family]>([:])

    /// Creates an empty registry.
    public init() {}

    /// Adds `amount` to a counter (or a gauge).
    public func increment(_ metric: Metric, _ labels: [String: String] = [:], by amount: Double = 1) {
        update(metric.rawValue, kind: metric.kind, help: metric.help, labels: labels) { $0.value += amount }
    }

    /// Subtracts `amount` from a gauge.
    public func decrement(_ metric: Metric, _ labels: [String: String] = [:], by amount: Double = 1) {
        update(metric.rawValue, kind: metric.kind, help: metric.help, labels: labels) { $0.value -= amount }
    }

    /// Sets a gauge.
    public func set(_ metric: Metric, _ labels: [String: String] = [:], to value: Double) {
        update(metric.rawValue, kind: metric.kind, help: metric.help, labels: labels) { $0.value = value }
    }

    /// Records one observation (seconds) in a histogram.
    public func observe(_ metric: Metric, _ labels: [String: String] = [:], seconds: Double) {
        observeNamed(metric.rawValue, help: metric.help, labels: labels, seconds: seconds)
    }

    func observeNamed(_ name: String, help: String, labels: [String: String], seconds: Double) {
        update(name, kind: .histogram, help: help, labels: labels) { series in
            if series.bucketCounts.isEmpty { series.bucketCounts = Array(repeating: 0, count: Self.buckets.count) }
            for (index, bound) in Self.buckets.enumerated() where seconds <= bound { series.bucketCounts[index] += 1 }
            series.value += seconds
            series.count += 1
        }
    }

    /// Times `body` into a histogram (also when it throws).
    public func time<T>(_ metric: Metric, _ labels: [String: String] = [:], _ body: () async throws -> T) async rethrows -> T {
        let start = ContinuousClock.now
        defer {
            let elapsed = ContinuousClock.now - start
            observe(metric, labels, seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        }
        return try await body()
    }

    /// The current value of a counter or gauge (the observation count of a histogram); 0 when never set.
    public func value(_ metric: Metric, _ labels: [String: String] = [:]) -> Double {
        families.withLock { families in
            guard let series = families[metric.rawValue]?.series[Self.labelText(labels)] else { return 0 }
            return metric.kind == .histogram ? Double(series.count) : series.value
        }
    }

    /// Records into a family by name (the swift-metrics backend's entry point).
    func update(_ name: String, kind: Kind, help: String, labels: [String: String], _ change: (inout Series) -> Void) {
        let key = Self.labelText(labels)
        families.withLock { families in
            var family = families[name] ?? Family(kind: kind, help: help)
            var series = family.series[key] ?? Series()
            change(&series)
            family.series[key] = series
            families[name] = family
        }
    }

    /// The Prometheus text exposition (version 0.0.4) of every metric, sorted by name.
    public func render() -> String {
        let snapshot = families.withLock { $0 }
        var out = ""
        for name in snapshot.keys.sorted() {
            guard let family = snapshot[name] else { continue }
            out += "# HELP \(name) \(family.help)\n# TYPE \(name) \(family.kind.rawValue)\n"
            for key in family.series.keys.sorted() {
                guard let series = family.series[key] else { continue }
                switch family.kind {
                case .counter, .gauge:
                    out += "\(name)\(key.isEmpty ? "" : "{\(key)}") \(Self.number(series.value))\n"
                case .histogram:
                    let prefix = key.isEmpty ? "" : key + ","
                    for (index, bound) in Self.buckets.enumerated() {
                        let count = series.bucketCounts.isEmpty ? 0 : series.bucketCounts[index]
                        out += "\(name)_bucket{\(prefix)le=\"\(Self.number(bound))\"} \(count)\n"
                    }
                    out += "\(name)_bucket{\(prefix)le=\"+Inf\"} \(series.count)\n"
                    out += "\(name)_sum\(key.isEmpty ? "" : "{\(key)}") \(Self.number(series.value))\n"
                    out += "\(name)_count\(key.isEmpty ? "" : "{\(key)}") \(series.count)\n"
                }
            }
        }
        return out
    }

    /// `a="1",b="2"`, sorted by label name, values escaped as the text format requires.
    static func labelText(_ labels: [String: String]) -> String {
        if labels.isEmpty { return "" }
        return labels.keys.sorted().map { name in
            var value = labels[name] ?? ""
            // Every request counts and times itself: skip Foundation's replacing when nothing needs it.
            if value.utf8.contains(where: { $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\n") }) {
                value = value.replacingOccurrences(of: "\\", with: "\\\\")
                    .replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
            }
            return "\(name)=\"\(value)\""
        }.joined(separator: ",")
    }

    static func number(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }
}
