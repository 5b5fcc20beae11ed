import CoreMetrics
import Foundation
import TeleportEvents
import Testing

/// The metrics registry's Prometheus text: types, help, labels, histograms, and swift-metrics
/// handles landing in the same registry.
@Suite("metrics registry")
struct TeleportMetricsTests {
    @Test func countersAndGaugesRenderWithHelpTypeAndSortedLabels() {
        let metrics = TeleportMetrics()
        metrics.increment(.logins, ["result": "success"])
        metrics.increment(.logins, ["result": "success"])
        metrics.increment(.logins, ["result": "failure"])
        metrics.increment(.sessionsActive, ["service": "node"])
        metrics.decrement(.sessionsActive, ["service": "node"])
        metrics.increment(.sshAuthentications, ["service": "node", "result": "success"])
        let page = metrics.render()
        #expect(page.contains("# HELP teleport_logins_total User logins at the auth service, by result.\n# TYPE teleport_logins_total counter\n"))
        #expect(page.contains("teleport_logins_total{result=\"failure\"} 1\nteleport_logins_total{result=\"success\"} 2\n"), "\(page)")
        #expect(page.contains("# TYPE teleport_sessions_active gauge\n"))
        #expect(page.contains("teleport_sessions_active{service=\"node\"} 0\n"))
        #expect(page.contains("teleport_ssh_authentications_total{result=\"success\",service=\"node\"} 1\n"))
        #expect(metrics.value(.logins, ["result": "success"]) == 2)
        #expect(metrics.value(.heartbeats) == 0)
    }

    @Test func histogramsHaveCumulativeBucketsSumAndCount() {
        let metrics = TeleportMetrics()
        metrics.observe(.backendLatency, ["operation": "get"], seconds: 0.003)
        metrics.observe(.backendLatency, ["operation": "get"], seconds: 0.2)
        let page = metrics.render()
        #expect(page.contains("# TYPE teleport_backend_request_duration_seconds histogram\n"))
        #expect(page.contains("teleport_backend_request_duration_seconds_bucket{operation=\"get\",le=\"0.001\"} 0\n"), "\(page)")
        #expect(page.contains("teleport_backend_request_duration_seconds_bucket{operation=\"get\",le=\"0.005\"} 1\n"))
        #expect(page.contains("teleport_backend_request_duration_seconds_bucket{operation=\"get\",le=\"0.25\"} 2\n"))
        #expect(page.contains("teleport_backend_request_duration_seconds_bucket{operation=\"get\",le=\"+Inf\"} 2\n"))
        #expect(page.contains("teleport_backend_request_duration_seconds_sum{operation=\"get\"} 0.203\n"))
        #expect(page.contains("teleport_backend_request_duration_seconds_count{operation=\"get\"} 2\n"))
        #expect(metrics.value(.backendLatency, ["operation": "get"]) == 2)
    }

    @Test func timingRecordsAlsoWhenTheBodyThrows() async {
        struct Failure: Error {}
        let metrics = TeleportMetrics()
        _ = try? await metrics.time(.backendLatency, ["operation": "put"]) { throw Failure() }
        #expect(metrics.value(.backendLatency, ["operation": "put"]) == 1)
    }

    @Test func labelValuesAreEscaped() {
        let metrics = TeleportMetrics()
        metrics.set(.buildInfo, ["version": "1\"2\\3\n"], to: 1)
        #expect(metrics.render().contains(#"teleport_build_info{version="1\"2\\3\n"} 1"#), "\(metrics.render())")
    }

    /// Library code that records with swift-metrics (the audit queue's dropped counter) lands in the
    /// registry it is given as factory, under the same family as the registry's own name.
    @Test func swiftMetricsHandlesLandInTheRegistry() {
        let metrics = TeleportMetrics()
        let counter = CoreMetrics.Counter(label: "teleport_audit_events_dropped_total", dimensions: [], factory: metrics)
        counter.increment(by: 3)
        let recorder = CoreMetrics.Recorder(label: "teleport_queue_depth", dimensions: [("host", "a")], aggregate: false, factory: metrics)
        recorder.record(7)
        let page = metrics.render()
        #expect(page.contains("# HELP teleport_audit_events_dropped_total Audit events dropped under audit_failure: continue.\n"), "\(page)")
        #expect(page.contains("teleport_audit_events_dropped_total 3\n"))
        #expect(page.contains("# TYPE teleport_queue_depth gauge\nteleport_queue_depth{host=\"a\"} 7\n"), "\(page)")
        #expect(metrics.value(.auditEventsDropped) == 3)
    }
}
