package import PGCloneMetrics
package import PGCloneStreams

extension PGCloneMetrics {
    /// An observer for the stream `buffer` between steps `producer` and `consumer`: bytes, fill,
    /// and each side's waits (the consumer starved, the producer held back).
    package func observer(buffer: Buffer, capacity: ByteCount, producer: Step?, consumer: Step?) -> ByteStream.Observer
    {
        let bufferMeter = self.buffer(buffer)
        bufferMeter.setCapacity(capacity.bytes)
        let producerMeter = producer.map(step)
        let consumerMeter = consumer.map(step)
        var observer = ByteStream.Observer()
        observer.bufferedChanged = { bufferMeter.changed(by: $0) }
        if let producerMeter {
            observer.written = { producerMeter.produced($0) }
            observer.producerWaiting = { producerMeter.waiting($0, starving: false) }
        }
        if let consumerMeter {
            observer.read = { consumerMeter.consumed($0) }
            observer.consumerWaiting = { consumerMeter.waiting($0, starving: true) }
        }
        return observer
    }

    /// A stream between two steps, observed.
    package func stream(
        _ buffer: Buffer,
        capacity: ByteCount,
        from producer: Step?,
        to consumer: Step?
    ) -> (stream: ByteStream, source: ByteStream.Source) {
        ByteStream.makeStream(
            backpressureStrategy: .capacity(capacity),
            observer: observer(buffer: buffer, capacity: capacity, producer: producer, consumer: consumer)
        )
    }

    /// The two streams of a restore (and of `verify`), observed: the stored object from storage to
    /// the decoder, and the archive from the decoder to pg_restore, each of `capacity` bytes.
    package func restoreStreams(
        capacity: ByteCount
    ) -> (
        stored: (stream: ByteStream, source: ByteStream.Source),
        archive: (stream: ByteStream, source: ByteStream.Source)
    ) {
        (
            stream(.downloadToDecompress, capacity: capacity, from: .download, to: .decompress),
            stream(.decompressToRestore, capacity: capacity, from: .decompress, to: .restoreStdin)
        )
    }

    /// Runs a step's body with its `active` gauge and clock running.
    package func running<Result>(_ step: Step, _ body: () async throws -> Result) async rethrows -> Result {
        let meter = self.step(step)
        meter.started()
        defer { meter.finished() }
        return try await body()
    }
}
