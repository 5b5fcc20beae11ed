import Foundation
public import Logging

/// Sets up swift-log from `teleport.log` (and `-d`).
public enum DaemonLogging {
    /// Bootstraps the logging system once and returns the root logger.
    public static func bootstrap(config: DaemonConfig) -> Logger {
        let output = config.file.teleport.log.output
        var level: Logger.Level
        switch config.file.teleport.log.severity {
        case "DEBUG", "TRACE": level = .debug
        case "WARN", "WARNING": level = .warning
        case "ERROR": level = .error
        default: level = .info
        }
        if config.debug { level = .debug }
        let chosen = level
        LoggingSystem.bootstrap { label in
            var handler: StreamLogHandler
            switch output {
            case "stdout": handler = StreamLogHandler.standardOutput(label: label)
            default: handler = StreamLogHandler.standardError(label: label)
            }
            handler.logLevel = chosen
            return handler
        }
        return Logger(label: "teleport")
    }
}
