internal import SQLiteDatabase

/// Group commit: every write that queued up while the previous COMMIT was syncing shares the next one.
///
/// At `synchronous=FULL` a commit costs an fsync or two; sharing it is what lets many concurrent
/// completions run at full durability. Each operation runs in its own SAVEPOINT, so one that fails
/// (an illegal transition, a lost lease) is rolled back alone and the others still commit.
enum GroupCommit {
    static let maximumBatch = 512

    static func run(_ operations: [any WriteOperation], on database: Database, statistics: WriterStatistics) {
        var start = 0
        while start < operations.count {
            let end = min(start + maximumBatch, operations.count)
            commit(operations[start..<end], on: database, statistics: statistics)
            start = end
        }
    }

    private static func commit(
        _ batch: ArraySlice<any WriteOperation>, on database: Database, statistics: WriterStatistics
    ) {
        let started = ContinuousClock.now
        do {
            try database.begin(.immediate)
        } catch {
            for operation in batch { operation.finish(commitError: error) }
            return
        }
        var abort: (any Error)?
        if batch.count == 1, let only = batch.first {
            if !only.perform(database) { abort = RolledBack() }
        } else {
            for operation in batch {
                do {
                    try database.savepoint("operation")
                } catch {
                    abort = error
                    break
                }
                if operation.perform(database) {
                    do {
                        try database.release("operation")
                    } catch {
                        abort = error
                        break
                    }
                } else if database.isInTransaction {
                    // A failed operation's changes must not ride along with the others' COMMIT: if they cannot
                    // be rolled back to its savepoint, the whole batch is aborted instead.
                    do {
                        try database.rollback(to: "operation")
                        try database.release("operation")
                    } catch {
                        abort = error
                        break
                    }
                } else {
                    // SQLite itself rolled the transaction back (I/O error, disk full): nothing survived.
                    abort = transactionLost
                    break
                }
            }
        }
        var commitError: (any Error)?
        if let abort {
            if database.isInTransaction { try? database.rollback() }
            if !(abort is RolledBack) { commitError = abort }
        } else {
            do {
                try database.commit()
            } catch {
                if database.isInTransaction { try? database.rollback() }
                commitError = error
            }
        }
        statistics.record(batch: batch.count, duration: ContinuousClock.now - started)  // before anyone is answered, so callers see it counted
        for operation in batch { operation.finish(commitError: commitError) }
    }

    /// The batch's only operation failed: it answers with its own error.
    private struct RolledBack: Error {}

    /// SQLite itself rolled the transaction back (disk full, I/O error): nothing in it was saved, and
    /// every operation may be tried again.
    static let transactionLost = DelegationStoreError(
        .ioError, "SQLite rolled back the transaction after an error (disk full or I/O error); nothing in it was saved")
}
