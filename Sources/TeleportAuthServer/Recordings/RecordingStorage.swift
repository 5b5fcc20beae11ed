public import Foundation
import TeleportAPI

/// Where the auth server keeps session recordings (`audit_sessions_uri`): a directory (`file://`,
/// the default `data_dir/log/sessions/default`) or an S3 bucket (`s3://`).
public protocol RecordingStorage: Sendable {
    /// Stores `data` as `name` (`SID.events.gz`, `SID.chunks.gz`), replacing nothing half-written.
    func write(_ data: Data, name: String) async throws
    /// The stored `name`, or nil when there is none.
    func read(_ name: String) async throws -> Data?
}

/// Recordings as files in a directory: written to a temporary file and renamed (mode 0640).
public struct DirectoryRecordingStorage: RecordingStorage {
    public let directory: URL

    /// Recordings in `directory`.
    public init(directory: URL) { self.directory = directory }

    public func write(_ data: Data, name: String) async throws {
        let url = directory.appendingPathComponent(name)
        let temporary = url.appendingPathExtension("tmp")
        guard FileManager.default.createFile(atPath: temporary.path, contents: data, attributes: [.posixPermissions: 0o640]),
            rename(temporary.path, url.path) == 0
        else { throw TeleportError.connectionProblem("cannot write \(url.path)") }
    }

    public func read(_ name: String) async throws -> Data? {
        FileManager.default.contents(atPath: directory.appendingPathComponent(name).path)
    }
}

/// Recordings as objects in S3 (or an S3-compatible server): `s3://BUCKET/PREFIX/SID.events.gz`.
public struct S3RecordingStorage: RecordingStorage {
    public let client: S3Client
    /// The largest object read.
    let maxBytes: Int

    /// Recordings through `client`.
    public init(client: S3Client, maxBytes: Int = 256 << 20) {
        self.client = client
        self.maxBytes = maxBytes
    }

    public func write(_ data: Data, name: String) async throws { try await client.put(name, data) }
    public func read(_ name: String) async throws -> Data? { try await client.get(name, maxBytes: maxBytes) }
}
