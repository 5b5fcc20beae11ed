public import Foundation

extension AuthAPI {
    /// The reply of `POST /v1/resources/batch` (Admin): what happened to each resource, in the
    /// order sent. The request body is `{"upsert": BOOL, "resources": [RESOURCE, ...]}`.
    public struct ResourceBatchResponse: Codable, Sendable, Equatable {
        /// One line per resource.
        public var results: [ResourceWriteResult]

        /// Creates a reply.
        public init(results: [ResourceWriteResult]) { self.results = results }
    }

    /// What a write did to one resource.
    public struct ResourceWriteResult: Codable, Sendable, Equatable {
        /// The canonical kind.
        public var kind: String
        /// The name as sent (a token's value is masked).
        public var name: String
        /// True when it did not exist before; false when it replaced one.
        public var created: Bool

        /// Creates a result.
        public init(kind: String, name: String, created: Bool) {
            self.kind = kind
            self.name = name
            self.created = created
        }
    }
}
