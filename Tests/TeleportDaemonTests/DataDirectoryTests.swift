import Foundation
import TeleportAPI
import TeleportDaemon
import TeleportTestSupport
import Testing

@Suite("DataDirectory")
struct DataDirectoryTests {
    static func freshPath() throws -> URL {
        try TestSupport.makeTemporaryDirectory(prefix: "datadir").appendingPathComponent("var/lib/teleport")
    }

    static func permissions(_ url: URL) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
        return try #require(attributes[.posixPermissions] as? Int) & 0o777
    }

    @Test func createsTheDirectoryPrivate() throws {
        let url = try Self.freshPath()
        #expect(!FileManager.default.fileExists(atPath: url.path))
        let directory = try DataDirectory(url: url)
        var isDirectory: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory))
        #expect(isDirectory.boolValue)
        #expect(try Self.permissions(url) == 0o700)
        #expect(directory.url == url)
        #expect(directory.keysDirectory == url.appendingPathComponent("keys"))
        #expect(directory.backendPath == url.appendingPathComponent("backend/sqlite.db"))
        #expect(directory.logDirectory == url.appendingPathComponent("log"))
    }

    @Test func anExistingOpenDirectoryIsMadePrivate() throws {
        let url = try Self.freshPath()
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        #expect(try Self.permissions(url) == 0o755)
        let directory = try DataDirectory(url: url)
        #expect(try Self.permissions(url) == 0o700)
        withExtendedLifetime(directory) {}
    }

    @Test func aRegularFileIsRefused() throws {
        let url = try Self.freshPath()
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data("not a directory".utf8).write(to: url)
        let error = #expect(throws: TeleportError.self) { try DataDirectory(url: url) }
        #expect(error?.code == .badParameter)
        #expect(error?.message.contains("is a file") == true, "\(String(describing: error))")
        #expect(error?.message.contains(url.path) == true)
    }

    @Test func aSecondDaemonOnTheSameDirectoryIsRefused() throws {
        let url = try Self.freshPath()
        let first = try DataDirectory(url: url)
        withExtendedLifetime(first) {
            let error = #expect(throws: TeleportError.self) { try DataDirectory(url: url) }
            #expect(error?.code == .alreadyExists)
            #expect(error?.message.contains("another teleport process") == true, "\(String(describing: error))")
            #expect(error?.message.contains(url.path) == true)
        }
    }

    @Test func theLockIsReleasedWithTheFirstDirectory() throws {
        let url = try Self.freshPath()
        func holdAndRelease() throws {
            let first = try DataDirectory(url: url)
            #expect(throws: TeleportError.self) { try DataDirectory(url: url) }
            withExtendedLifetime(first) {}
        }
        try holdAndRelease()
        let second = try DataDirectory(url: url)
        #expect(second.url == url)
    }

    @Test func theLockFileHoldsThePID() throws {
        let url = try Self.freshPath()
        let directory = try DataDirectory(url: url)
        let text = try String(contentsOf: url.appendingPathComponent("teleport.lock"), encoding: .utf8)
        #expect(text == "\(ProcessInfo.processInfo.processIdentifier)\n")
        withExtendedLifetime(directory) {}
    }

    @Test func hostUUIDIsStableAndAUUID() throws {
        let url = try Self.freshPath()
        let uuid: String
        do {
            let directory = try DataDirectory(url: url)
            uuid = try directory.hostUUID()
            #expect(UUID(uuidString: uuid) != nil)
            #expect(uuid == uuid.lowercased())
            #expect(try directory.hostUUID() == uuid)
            #expect(try Self.permissions(url.appendingPathComponent("host_uuid")) == 0o600)
        }
        // A later process on the same directory keeps the identity.
        let again = try DataDirectory(url: url)
        #expect(try again.hostUUID() == uuid)
    }

    @Test func hostUUIDsDifferBetweenDirectories() throws {
        let one = try DataDirectory(url: Self.freshPath())
        let two = try DataDirectory(url: Self.freshPath())
        #expect(try one.hostUUID() != two.hostUUID())
    }

    @Test func anUppercaseHostUUIDIsReadLowercased() throws {
        let url = try Self.freshPath()
        let directory = try DataDirectory(url: url)
        try Data("  1E1A4C6B-6A0B-4E3B-9C7E-1D2F3A4B5C6D\n".utf8).write(to: url.appendingPathComponent("host_uuid"))
        #expect(try directory.hostUUID() == "1e1a4c6b-6a0b-4e3b-9c7e-1d2f3a4b5c6d")
    }

    @Test func aCorruptHostUUIDIsRefused() throws {
        let url = try Self.freshPath()
        let directory = try DataDirectory(url: url)
        try Data("not-a-uuid\n".utf8).write(to: url.appendingPathComponent("host_uuid"))
        let error = #expect(throws: TeleportError.self) { try directory.hostUUID() }
        #expect(error?.code == .badParameter)
        #expect(error?.message.contains("host_uuid") == true)
    }
}
