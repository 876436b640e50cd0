import NIOCore

/// One direction of one proxied connection: bytes read from `source` reach `sink` when the shaper
/// says they arrive. Confined to the emulator's event loop (all its state is touched only there).
///
/// Reads are pulled (autoRead off): the source is read again only while less than `highWater`
/// bytes are in flight and the sink keeps up, so a fast sender sees the link's rate through TCP
/// back-pressure instead of filling the proxy's memory.
final class ShapedDirection {
    /// Largest piece shaped at once: big reads are split so bytes trickle out at the link's rate.
    static let sliceBytes = 8 * 1024
    static let highWater = 4 << 20

    let source: Channel
    let sink: Channel
    var shaper: LinkShaper
    private var queue: CircularBuffer<(arrival: Int64, bytes: ByteBuffer)> = []
    private var queuedBytes = 0
    private var timer: Scheduled<Void>?
    private var sourceClosed = false
    private var readPending = false
    private let counters: TrafficCounter

    init(source: Channel, sink: Channel, profile: LinkProfile, counters: TrafficCounter) {
        self.source = source
        self.sink = sink
        shaper = LinkShaper(profile: profile)
        self.counters = counters
    }

    /// Bytes read from the source enter the link.
    func enqueue(_ buffer: ByteBuffer) {
        var buffer = buffer
        let now = Int64(NIODeadline.now().uptimeNanoseconds)
        while buffer.readableBytes > 0 {
            let slice = buffer.readSlice(length: min(Self.sliceBytes, buffer.readableBytes))!
            queue.append((shaper.arrival(ofBytes: slice.readableBytes, readAt: now), slice))
            queuedBytes += slice.readableBytes
        }
        armTimer()
    }

    /// Asks the source for more bytes if there is room on the link.
    func readIfRoom() {
        guard !sourceClosed, !readPending, queuedBytes < Self.highWater, sink.isWritable, source.isActive else { return }
        readPending = true
        source.read()
    }

    /// The source delivered what one read() asked for.
    func readCompleted() {
        readPending = false
        readIfRoom()
    }

    /// The source hung up: deliver what is in flight, then close the sink.
    func sourceDidClose() {
        sourceClosed = true
        if queue.isEmpty { sink.close(promise: nil) }
    }

    /// Drops everything in flight (the link was cut).
    func cancel() {
        timer?.cancel()
        timer = nil
        queue.removeAll()
        queuedBytes = 0
    }

    private func armTimer() {
        guard timer == nil, let head = queue.first else { return }
        timer = source.eventLoop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(UInt64(max(0, head.arrival)))) {
            self.timer = nil
            self.deliverDue()
        }
    }

    private func deliverDue() {
        let now = Int64(NIODeadline.now().uptimeNanoseconds)
        var wrote = false
        while let head = queue.first, head.arrival <= now {
            queue.removeFirst()
            queuedBytes -= head.bytes.readableBytes
            counters.add(head.bytes.readableBytes)
            sink.write(head.bytes, promise: nil)
            wrote = true
        }
        if wrote { sink.flush() }
        if queue.isEmpty && sourceClosed {
            sink.close(promise: nil)
            return
        }
        armTimer()
        readIfRoom()
    }
}

/// Bytes delivered in one direction, summed over connections (loop-confined).
final class TrafficCounter {
    private(set) var bytes = 0
    func add(_ n: Int) { bytes += n }
}
