/// What `PRAGMA wal_checkpoint(TRUNCATE)` reported.
public struct Checkpoint: Sendable, Equatable {
    /// Another connection kept the checkpoint from finishing.
    public var busy: Bool
    public var walFrames: Int
    public var checkpointedFrames: Int
}
