public import Foundation
public import NIOCore
public import NIOHTTP1
public import TeleportAPI

/// One HTTP/1.1 request and its reply over a connected channel: the request is written whole (head,
/// optional body, end) and the reply read until its end, the body capped. Our three small HTTPS clients
/// (the auth API's, `tsh`'s proxy client and the etcd gateway's) share it; each keeps its own dialling,
/// TLS and error wording.
package enum HTTP1Exchange {
    /// A reply: status code and the body (what ``perform(on:head:body:maxBodyBytes:describe:onBody:)``'s
    /// `onBody` left of it).
    package struct Reply: Sendable {
        /// The HTTP status code.
        package var status: Int
        /// The body.
        package var body: Data

        /// A reply.
        package init(status: Int, body: Data) {
            self.status = status
            self.body = body
        }
    }

    /// Writes `head` (and `body`) on `outbound`, then reads `inbound` until the reply ends. After each
    /// body part, `onBody` may consume the front of the collected body (a stream split into lines);
    /// more than `maxBodyBytes` left collected is a `limitExceeded` error, and a connection closed before
    /// the reply's end a `connectionProblem` one. `describe` names the peer in those errors' messages
    /// ("the proxy at HOST:PORT"); `limitHint` ends the first one (how to raise the limit).
    package static func perform(
        inbound: NIOAsyncChannelInboundStream<HTTPClientResponsePart>,
        outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>,
        head: HTTPRequestHead,
        body: Data?,
        maxBodyBytes: Int,
        describe: String,
        limitHint: String = "",
        onBody: ((_ status: Int, _ collected: inout Data) async throws -> Void)? = nil
    ) async throws -> Reply {
        try await outbound.write(.head(head))
        if let body { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
        try await outbound.write(.end(nil))
        var status = 0
        var data = Data()
        for try await part in inbound {
            switch part {
            case .head(let response):
                status = Int(response.status.code)
            case .body(let buffer):
                data.append(contentsOf: buffer.readableBytesView)
                if let onBody { try await onBody(status, &data) }
                guard data.count <= maxBodyBytes else {
                    throw TeleportError.limitExceeded("a reply from \(describe) exceeds \(maxBodyBytes) bytes\(limitHint)")
                }
            case .end:
                return Reply(status: status, body: data)
            }
        }
        throw TeleportError.connectionProblem("\(describe) closed the connection mid-reply")
    }
}
