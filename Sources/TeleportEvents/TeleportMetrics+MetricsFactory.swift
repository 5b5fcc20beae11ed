public import CoreMetrics

/// ``TeleportMetrics`` as the swift-metrics backend: `MetricsSystem.bootstrap(metrics)` sends what
/// library code records with swift-metrics' `Counter`, `Recorder` and `Timer` to the same registry
/// (counters as counters, recorders as gauges, timers as histograms in seconds).
extension TeleportMetrics: MetricsFactory {
    /// A swift-metrics counter recording into this registry.
    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        Handler(registry: self, name: label, labels: Self.labels(dimensions), kind: .counter)
    }

    /// A swift-metrics recorder: a gauge, or a histogram when it aggregates.
    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        Handler(registry: self, name: label, labels: Self.labels(dimensions), kind: aggregate ? .histogram : .gauge)
    }

    /// A swift-metrics timer: a histogram in seconds.
    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        Handler(registry: self, name: label, labels: Self.labels(dimensions), kind: .histogram)
    }

    /// Series stay in the registry (a scrape still shows them).
    public func destroyCounter(_ handler: any CounterHandler) {}
    /// Series stay in the registry.
    public func destroyRecorder(_ handler: any RecorderHandler) {}
    /// Series stay in the registry.
    public func destroyTimer(_ handler: any TimerHandler) {}

    static func labels(_ dimensions: [(String, String)]) -> [String: String] {
        Dictionary(dimensions, uniquingKeysWith: { _, last in last })
    }

    /// One handler for the three kinds; it records into its family by name.
    final class Handler: CounterHandler, RecorderHandler, TimerHandler, Sendable {
        let registry: TeleportMetrics
        let name: String
        let labels: [String: String]
        let kind: Kind
        let help: String

        init(registry: TeleportMetrics, name: String, labels: [String: String], kind: Kind) {
            self.registry = registry
            self.name = name
            self.labels = labels
            self.kind = kind
            help = Metric(rawValue: name)?.help ?? name
        }

        func increment(by amount: Int64) { registry.update(name, kind: kind, help: help, labels: labels) { $0.value += Double(amount) } }
        func reset() { registry.update(name, kind: kind, help: help, labels: labels) { $0.value = 0 } }
        func record(_ value: Int64) { record(Double(value)) }
        func record(_ value: Double) {
            if kind == .histogram {
                registry.observeNamed(name, help: help, labels: labels, seconds: value)
            } else {
                registry.update(name, kind: kind, help: help, labels: labels) { $0.value = value }
            }
        }
        func recordNanoseconds(_ duration: Int64) { registry.observeNamed(name, help: help, labels: labels, seconds: Double(duration) / 1e9) }
    }
}
