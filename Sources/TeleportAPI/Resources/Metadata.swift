public import Foundation

/// The `metadata` block every resource carries.
public struct Metadata: Codable, Sendable, Equatable {
    /// The resource's name, unique within its kind.
    public var name: String
    /// A free-text description.
    public var description: String?
    /// Static labels, e.g. `env: prod`.
    public var labels: [String: String]?
    /// When the resource stops existing (`nil`: never).
    public var expires: Date?
    /// The backend revision the resource was read at; used to refuse conflicting updates.
    public var revision: String?
    /// The namespace; always `default` (kept for compatibility with the seed documents).
    public var namespace: String?

    /// Creates metadata.
    public init(
        name: String, description: String? = nil, labels: [String: String]? = nil, expires: Date? = nil,
        revision: String? = nil, namespace: String? = nil
    ) {
        self.name = name
        self.description = description
        self.labels = labels
        self.expires = expires
        self.revision = revision
        self.namespace = namespace
    }
}

/// One of the resource kinds the cluster stores.
public protocol Resource: Codable, Sendable, Equatable {
    /// The kind as written in YAML (`user`, `role`, ...).
    static var kind: String { get }
    /// The version written when none is given.
    static var currentVersion: String { get }
    /// The kind as stored in this value (must equal ``kind``).
    var kind: String { get }
    /// The resource version, e.g. `v2`.
    var version: String { get }
    /// Name, labels, expiry.
    var metadata: Metadata { get set }
    /// Checks fields beyond their types (names, enumerations); throws `badParameter`.
    func validate() throws
}

extension Resource {
    /// The resource's name.
    public var name: String { metadata.name }

    /// Checks the parts all resources share: the kind matches and the name is a valid name.
    public func validateEnvelope() throws {
        guard kind == Self.kind else {
            throw TeleportError.badParameter("resource kind is \(kind), expected \(Self.kind)")
        }
        try ResourceName.validate(metadata.name, kind: Self.kind)
    }
}

/// Rules for resource names.
public enum ResourceName {
    /// Names are 1–253 characters of letters, digits and `-_.@:+`, not starting with `.`, so that
    /// they are safe in backend keys, file names and URLs.
    public static func validate(_ name: String, kind: String) throws {
        guard !name.isEmpty else { throw TeleportError.badParameter("\(kind): metadata.name is missing") }
        guard name.utf8.count <= 253 else {
            throw TeleportError.badParameter("\(kind): metadata.name is longer than 253 characters")
        }
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.@:+")
        guard name.allSatisfy({ allowed.contains($0) }), !name.hasPrefix(".") else {
            throw TeleportError.badParameter(
                "\(kind): metadata.name \"\(name)\" may only hold letters, digits and - _ . @ : + (not a leading .)")
        }
    }
}
