import Foundation
import TeleportAPI
import TeleportDaemon
import TeleportTestSupport
import Testing

/// Helpers shared by the daemon configuration tests.
enum DaemonTestSupport {
    /// The fixtures folder beside this file (no SwiftPM resources: found through `#filePath`).
    static func fixture(_ name: String, filePath: String = #filePath) -> URL {
        URL(fileURLWithPath: filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").appendingPathComponent(name)
    }

    /// Parses `yaml` expecting a `TeleportError`; records an issue and throws when it parses or
    /// fails with another error type.
    static func parseError(
        _ yaml: String, file: String = "/etc/teleport.yaml", sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> TeleportError {
        let error = #expect(throws: TeleportError.self, sourceLocation: sourceLocation) {
            try FileConfig.parse(yaml, file: file)
        }
        return try #require(error, sourceLocation: sourceLocation)
    }

    /// Writes `contents` to a new file in a fresh temporary directory and returns its path.
    static func writeTemporaryConfig(_ contents: String) throws -> String {
        let directory = try TestSupport.makeTemporaryDirectory(prefix: "daemon-config")
        let url = directory.appendingPathComponent("teleport.yaml")
        try TestSupport.write(contents, to: url)
        return url.path
    }

    /// Flags with an explicit config path, so that the machine's /etc/teleport.yaml never matters.
    static func flags(config contents: String = "", _ configure: (inout StartFlags) -> Void = { _ in }) throws -> StartFlags {
        var flags = StartFlags()
        flags.configPath = try writeTemporaryConfig(contents)
        configure(&flags)
        return flags
    }
}
