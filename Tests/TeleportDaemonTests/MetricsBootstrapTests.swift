import TeleportDaemon
import TeleportEvents
import Testing

@Suite("metrics bootstrap")
struct MetricsBootstrapTests {
    @Test("a second daemon in one process does not bootstrap swift-metrics again (which would trap)")
    func bootstrapsOnce() {
        MetricsBootstrap.once(TeleportMetrics())
        #expect(MetricsBootstrap.once(TeleportMetrics()) == false)
        #expect(MetricsBootstrap.once(TeleportMetrics()) == false)
    }
}
