import Foundation
import Hummingbird
import NIOCore
import TeleportAPI

extension Request {
    /// The whole body, refused with `limitExceeded` beyond `limit` bytes (by its `Content-Length`
    /// before reading, else while reading).
    mutating func boundedBody(limit: Int) async throws -> ByteBuffer {
        if let declared = headers[.contentLength].flatMap({ Int($0) }), declared > limit {
            throw TeleportError.limitExceeded("the request body is larger than \(limit / 1024) KiB")
        }
        do {
            return try await collectBody(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw TeleportError.limitExceeded("the request body is larger than \(limit / 1024) KiB")
        }
    }

    /// The media type of the body (`Content-Type` without parameters, lower case), if sent.
    var mediaType: String? {
        headers[.contentType].map {
            $0.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        }
    }
}
