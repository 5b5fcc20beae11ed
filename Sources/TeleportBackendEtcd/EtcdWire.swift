import Foundation

/// The JSON shapes of etcd's v3 gateway. Keys and values travel base64 (Foundation's `Data` coding);
/// 64-bit integers travel as strings, and fields at their default value are left out.
enum EtcdWire {
    /// An int64 the gateway writes as a string (or, from some versions, a number).
    struct Int64Text: Codable, Sendable, Equatable {
        var value: Int64
        init(_ value: Int64) { self.value = value }
        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let text = try? container.decode(String.self), let number = Int64(text) {
                value = number
            } else {
                value = try container.decode(Int64.self)
            }
        }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(String(value))
        }
    }

    struct Header: Decodable, Sendable {
        var revision: Int64Text?
    }

    struct KeyValue: Decodable, Sendable {
        var key: Data
        var value: Data?
        var mod_revision: Int64Text?
        var create_revision: Int64Text?
    }

    struct RangeRequest: Encodable {
        var key: Data
        var range_end: Data?
        var limit: Int64Text?
        var keys_only: Bool?
    }

    struct RangeResponse: Decodable {
        var header: Header?
        var kvs: [KeyValue]?
        var more: Bool?
    }

    struct PutRequest: Encodable {
        var key: Data
        var value: Data
        var lease: Int64Text?
    }

    struct PutResponse: Decodable {
        var header: Header?
    }

    struct DeleteRangeRequest: Encodable {
        var key: Data
        var range_end: Data?
    }

    struct Compare: Encodable {
        var key: Data
        var target: String
        var result = "EQUAL"
        var mod_revision: Int64Text?
        var create_revision: Int64Text?
    }

    struct RequestOp: Encodable {
        var request_put: PutRequest?
        var request_delete_range: DeleteRangeRequest?
    }

    struct CompactionRequest: Encodable {
        var revision: Int64Text
        var physical: Bool
    }

    struct TxnRequest: Encodable {
        var compare: [Compare]
        var success: [RequestOp]
    }

    struct TxnResponse: Decodable {
        var header: Header?
        var succeeded: Bool?
    }

    struct LeaseGrantRequest: Encodable {
        var TTL: Int64Text
    }

    struct LeaseGrantResponse: Decodable {
        var ID: Int64Text?
        var error: String?
    }

    struct AuthenticateRequest: Encodable {
        var name: String
        var password: String
    }

    struct AuthenticateResponse: Decodable {
        var token: String?
    }

    struct WatchCreate: Encodable {
        var key: Data
        var range_end: Data
        var start_revision: Int64Text
    }

    struct WatchRequest: Encodable {
        var create_request: WatchCreate
    }

    struct Event: Decodable {
        var type: String?
        var kv: KeyValue?
    }

    struct WatchResult: Decodable {
        var header: Header?
        var created: Bool?
        var canceled: Bool?
        var compact_revision: Int64Text?
        var cancel_reason: String?
        var events: [Event]?
    }

    struct WatchMessage: Decodable {
        var result: WatchResult?
        var error: WatchError?
    }

    struct WatchError: Decodable {
        var message: String?
    }

    /// What Teleport stores under each etcd key: the item's bytes and its exact expiry (the lease only
    /// removes the key; reads compare the expiry with the backend's clock, as every backend does).
    struct Stored: Codable {
        var v: Data
        var e: Date?
    }
}
