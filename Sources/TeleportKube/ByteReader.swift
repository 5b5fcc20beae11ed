import NIOCore
import TeleportAPI
import TeleportWire

/// Reads a relayed byte stream (an async channel's inbound side) with a small look-ahead
/// buffer: message heads (bounded), and body bytes handed on as they arrive. Backpressure comes
/// from the channel: nothing is read ahead beyond what one call needs.
// Unchecked: a reader is used by one task at a time; an upgraded stream's reader moves into the
// task that relays it and is never touched again where it came from.
struct ByteReader: @unchecked Sendable {
    var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    var buffer = ByteBuffer()
    var ended = false

    init(_ stream: NIOAsyncChannelInboundStream<ByteBuffer>) {
        iterator = stream.makeAsyncIterator()
    }

    /// Reads once more into the buffer; false at the end of the stream.
    mutating func fill() async throws -> Bool {
        guard !ended else { return false }
        guard var next = try await iterator.next() else {
            ended = true
            return false
        }
        if buffer.readerIndex > 64 * 1024 { buffer.discardReadBytes() }
        buffer.writeBuffer(&next)
        return true
    }

    /// The next message head's bytes; nil when the stream ended cleanly before one began.
    mutating func head(limit: Int = HTTP1Head.defaultLimit) async throws -> [UInt8]? {
        while true {
            if let length = try HTTP1Head.length(buffer.readableBytesView, limit: limit) {
                return buffer.readBytes(length: length)
            }
            guard try await fill() else {
                if buffer.readableBytes == 0 { return nil }
                throw HTTP1Error("the connection closed inside a message head")
            }
        }
    }

    /// Up to `max` bytes: buffered ones first, else the next read; nil at the end.
    mutating func next(max: Int) async throws -> ByteBuffer? {
        if buffer.readableBytes == 0 {
            guard try await fill() else { return nil }
        }
        return buffer.readSlice(length: min(max, buffer.readableBytes))
    }

    /// Hands a body of `framing` on to `write`, chunk by chunk as it arrives. Returns false when
    /// the stream ended before the body did.
    mutating func relayBody(_ framing: HTTP1Head.Framing, to write: (ByteBuffer) async throws -> Void) async throws -> Bool {
        switch framing {
        case .none:
            return true
        case .length(let total):
            var left = total
            while left > 0 {
                guard let chunk = try await next(max: left) else { return false }
                left -= chunk.readableBytes
                try await write(chunk)
            }
            return true
        case .chunked:
            var scanner = HTTP1ChunkedScanner()
            while !scanner.isDone {
                if buffer.readableBytes == 0 {
                    guard try await fill() else { return false }
                }
                let count = try scanner.consume(buffer.readableBytesView)
                if let slice = buffer.readSlice(length: count), count > 0 { try await write(slice) }
            }
            return true
        case .untilClose:
            while let chunk = try await next(max: 1 << 20) { try await write(chunk) }
            return true
        }
    }

    /// Hands a body of `framing` on to `payload` without its chunk framing (what the sender
    /// meant), run by run as it arrives. Returns false when the stream ended before the body did.
    mutating func decodeBody(_ framing: HTTP1Head.Framing, to payload: ([UInt8]) async throws -> Void) async throws -> Bool {
        guard case .chunked = framing else {
            return try await relayBody(framing) { chunk in try await payload(Array(chunk.readableBytesView)) }
        }
        var scanner = HTTP1ChunkedScanner()
        while !scanner.isDone {
            if buffer.readableBytes == 0 {
                guard try await fill() else { return false }
            }
            var runs: [[UInt8]] = []
            let count = try scanner.decode(ArraySlice(buffer.readableBytesView)) { runs.append(Array($0)) }
            buffer.moveReaderIndex(forwardBy: count)
            for run in runs { try await payload(run) }
        }
        return true
    }
}
