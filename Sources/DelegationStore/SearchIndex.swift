import Foundation
package import SQLiteDatabase
import Logging
import Synchronization

/// The trigram search index, kept in a file of its own (`<database>-search`, migration 0007) and caught
/// up with the rows `delegation_search_queue` names.
///
/// Why its own file: FTS5 merges segments inside whichever transaction tips a level over, and at a
/// million rows one merge step held the write lock 70-145 ms; every worker commit waited behind it.
/// Here the index is written on a connection of its own under the index file's lock, and the database's
/// lock is taken only to remove entries from the queue. Why batches: an FTS5 write makes a segment per
/// transaction, so indexing each enqueue and completion on its own cost a third of their writes.
///
/// Searching never waits for this: queued rows are matched on their current text (`Queries.select`),
/// so catching up changes how a row is found, not whether. The index file keeps a copy of the text it
/// indexed (`search_docs`), so indexing a row is idempotent: a batch indexed again after a crash between
/// the index file's commit and the queue's leaves the index exactly as once. One indexer at a time works
/// on a database (`withIndexerLock`): two could write a row's older text after its newer one.
package enum SearchIndex {
    /// Rows indexed per batch: large enough to share a segment, small enough that a batch takes a few
    /// milliseconds.
    package static let batch = 512
    /// Characters of text per batch, whatever the number of rows: results run to 1 MiB (`TextLimit`), and
    /// indexing costs ~0.1 s per million characters here. At least one row is always taken.
    package static let budget = 500_000
    /// How long the indexer waits idle before it looks at the queue again: the index lags the database by
    /// about this much, plus a batch.
    static let interval = Duration.seconds(1)
    /// The index file's layout (its `user_version`); 0 is a file not yet set up. An older one is reset, a newer one left alone.
    static let format = 2

    /// Where the index of the database at `path` lives.
    package static func path(forDatabaseAt path: String) -> String { path + "-search" }

    /// Attaches the index file as schema `search`. With `create`, a missing file is created (empty: `setUp`
    /// lays it out); without, a missing file is not attached and false is returned (searches then match
    /// every row by LIKE).
    @discardableResult
    package static func attach(_ database: Database, databasePath: String, create: Bool) throws -> Bool {
        let file = path(forDatabaseAt: databasePath)
        if !create && !FileManager.default.fileExists(atPath: file) { return false }
        if create {
            // SQLite would create it 0644; it holds the same tasks and results as the database.
            let descriptor = open(file, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
            if descriptor >= 0 {
                close(descriptor)
                // A log left by a deleted index file would be replayed into the new, empty one.
                unlink(file + "-wal")
                unlink(file + "-shm")
                giveToDatabaseOwner(file, databasePath: databasePath)
            }
        }
        try database.execute("ATTACH DATABASE ? AS search", file)
        guard create else { return true }
        guard try database.queryFirst("PRAGMA search.journal_mode = WAL")?[0].string == "wal" else {
            throw SQLiteError(extendedResultCode: 1, message: "could not switch the search index \(file) to WAL")
        }
        // FULL whatever the database's setting: at NORMAL a power loss could take back an index commit whose
        // rows the database had already taken off the queue, and they would never be indexed.
        try database.execute(script: "PRAGMA search.synchronous = FULL")
        return true
    }

    /// Lays out an empty index file and queues every row for it; nothing when it is laid out already.
    /// Rows are queued a range of `seq`s at a time, each range a short write of the database alone, then the
    /// tables are made in one write of the index file alone; every step is safe to repeat after a crash.
    package static func setUp(_ database: Database) throws {
        let version = try database.queryFirst("PRAGMA search.user_version")?[0].int ?? 0
        if version == format { return }
        guard version == 0 else {
            throw SQLiteError(
                extendedResultCode: 1,
                message: "the search index \(path(forDatabaseAt: database.path)) has layout \(version), this build knows \(format): delete it (it is rebuilt)")
        }
        // By rows, not by seq values: seqs may be anything raw SQL gave them, negative or huge.
        var lower = try database.queryFirst("SELECT min(seq) FROM main.delegations")?[0].int
        var inclusive = true
        while let from = lower {
            let comparison = inclusive ? ">=" : ">"
            guard let to = try database.queryFirst(
                "SELECT max(seq) FROM (SELECT seq FROM main.delegations WHERE seq \(comparison) ?1 ORDER BY seq LIMIT ?2)",
                from, setUpRange)?[0].int
            else { break }
            try database.execute(
                """
                INSERT INTO main.delegation_search_queue (seq)
                SELECT seq FROM main.delegations WHERE seq \(comparison) ?1 AND seq <= ?2
                ON CONFLICT (seq) DO UPDATE SET changes = changes + 1
                """, from, to)
            (lower, inclusive) = (to, false)
        }
        // A new id for the new file: the database's first (a crash before the file records it leaves a file
        // that is laid out again), so that no index file made before matches this database.
        let fileID = UUID().uuidString
        if try database.execute("UPDATE main.delegation_search_progress SET file_id = ?1", fileID) == 0 {
            try database.execute("INSERT INTO main.delegation_search_progress (batches, file_id) VALUES (0, ?1)", fileID)
        }
        try database.transaction(.deferred) {
            // The first statement writes the index file (its lock, and never the database's).
            try database.execute(
                script: """
                    CREATE TABLE IF NOT EXISTS search.search_docs (seq INTEGER PRIMARY KEY, task TEXT, result TEXT, error TEXT);
                    CREATE TABLE IF NOT EXISTS search.search_state (batches INTEGER NOT NULL, file_id TEXT NOT NULL);
                    DELETE FROM search.search_state;
                    INSERT INTO search.search_state (batches, file_id) SELECT batches, file_id FROM main.delegation_search_progress;
                    CREATE VIRTUAL TABLE IF NOT EXISTS search.search_index USING fts5(
                        task, result, error, content = 'search_docs', content_rowid = 'seq', tokenize = 'trigram');
                    \(insertTrigger)
                    CREATE TRIGGER IF NOT EXISTS search.search_docs_delete AFTER DELETE ON search_docs BEGIN
                        INSERT INTO search_index (search_index, rowid, task, result, error)
                        VALUES ('delete', OLD.seq, OLD.task, OLD.result, OLD.error);
                    END;
                    PRAGMA search.user_version = \(format);
                    """)
        }
    }

    /// Whether the index file belongs to the database and is from the same moment: the same `file_id`, and
    /// the batches the database has taken off the queue equal to the count the index file read with its last
    /// batch, or one more. An index file laid out for another database (or before a reset) never matches; an
    /// index file restored from a backup stops matching once one batch has run since the backup, a restored
    /// database once two have (with exactly one, the counts agree again and it is not noticed). Reliable
    /// only where no indexer is at work (under `withIndexerLock`); a reader may see a moment's mismatch and
    /// scan once.
    package static func matchesDatabase(_ database: Database) throws -> Bool {
        let row = try database.queryFirst(
            """
            SELECT p.batches, p.file_id, s.batches, s.file_id
            FROM main.delegation_search_progress p, search.search_state s
            """)
        guard let row, let taken = row[0].int, let ours = row[1].string, let recorded = row[2].int, row[3].string == ours
        else { return false }
        return taken == recorded || (recorded < Int.max && taken == recorded + 1)
    }

    /// Under the indexer's lock: `resetIfStale`, then `setUp`. False when another indexer holds the lock.
    static func prepare(_ database: Database, logger: Logger) throws -> Bool {
        let done: Bool? = try withIndexerLock(databasePath: database.path) { () throws -> Bool in
            try resetIfStale(database, logger: logger)
            try setUp(database)
            return true
        }
        return done != nil
    }

    /// Empties an index file of an older layout, or one that does not match its database (`matchesDatabase`,
    /// reliable here: under the indexer's lock neither count can change), so that `setUp` lays it out again
    /// and queues every row.
    private static func resetIfStale(_ database: Database, logger: Logger) throws {
        let version = try database.queryFirst("PRAGMA search.user_version")?[0].int ?? 0
        guard version != 0 else { return }
        // A newer build's layout is left to it (resetting it would start a tug of war between two builds
        // on one database); this one scans (`isLaidOut` is false) and says so.
        guard version <= format else {
            throw SQLiteError(
                extendedResultCode: 1,
                message: "the search index \(path(forDatabaseAt: database.path)) has layout \(version), newer than this build's \(format): searches scan")
        }
        let matches = try version == format && database.queryFirst(
            "SELECT 1 FROM search.sqlite_master WHERE name = 'search_state'") != nil && matchesDatabase(database)
        guard !matches else { return }
        logger.warning(
            "the search index is of another layout, or from another moment than its database (one of them restored from a backup?): rebuilding it",
            metadata: ["file": "\(path(forDatabaseAt: database.path))"])
        try database.transaction(.deferred) {
            try database.execute(
                script: """
                    DROP TABLE IF EXISTS search.search_index;
                    DROP TABLE IF EXISTS search.search_docs;
                    DROP TABLE IF EXISTS search.search_state;
                    PRAGMA search.user_version = 0;
                    """)
        }
    }

    /// Indexes each row copied into `search_docs` (dropped while `rebuild` indexes every row at once).
    private static let insertTrigger = """
        CREATE TRIGGER IF NOT EXISTS search.search_docs_insert AFTER INSERT ON search_docs BEGIN
            INSERT INTO search_index (rowid, task, result, error) VALUES (NEW.seq, NEW.task, NEW.result, NEW.error);
        END;
        """

    /// Rows queued per write while a new index file is set up (a few ms of the database's lock each).
    static let setUpRange = 10_000

    /// Whether this connection can search through the index: the file attached, laid out, readable (a file
    /// damaged past its header is caught by the query: `Queries` then scans; `check` names it) and from the
    /// same moment as the database (`matchesDatabase`).
    package static func isAvailable(_ database: Database) throws -> Bool {
        guard try isLaidOut(database) else { return false }
        do {
            return try matchesDatabase(database)
        } catch let error as SQLiteError where !error.isBusy {
            return false  // its state unreadable: damaged
        }
    }

    private static func isAttached(_ database: Database) throws -> Bool {
        try database.queryFirst("SELECT 1 FROM pragma_database_list WHERE name = 'search'") != nil
    }

    /// The index file attached, with this build's layout.
    package static func isLaidOut(_ database: Database) throws -> Bool {
        guard try isAttached(database) else { return false }
        // Inside a transaction the first file read fixes its snapshot: the database's first, so that a row
        // taken off the queue in that snapshot is already in the index file's (which commits first).
        _ = try database.queryFirst("SELECT 1 FROM main.sqlite_master LIMIT 1")
        do {
            guard try database.queryFirst("PRAGMA search.user_version")?[0].int == format else { return false }
            return try database.queryFirst("SELECT 1 FROM search.sqlite_master WHERE name = 'search_index'") != nil
        } catch let error where !error.isBusy {
            return false
        }
    }

    /// A queued row as a batch saw it: taken off the queue only if it has not changed since.
    package struct Queued: Sendable, Equatable {
        var seq: Int
        var changes: Int
    }

    /// Indexes one batch and takes it off the queue; returns how many rows it indexed (0 also when another
    /// indexer is at work on this database). The connection has the index attached (`attach`).
    @discardableResult
    package static func catchUp(_ database: Database, limit: Int = batch, budget: Int = budget) throws -> Int {
        try withIndexerLock(databasePath: database.path) {
            let rows = try index(database, limit: limit, budget: budget)
            try dequeue(database, rows)
            return rows.count
        } ?? 0
    }

    /// Runs `body` as the database's only indexer, or returns nil when another holds the lock (at once, or
    /// after `waiting` of asking again every 20 ms; an advisory `flock` on `<database>-search.lock`, released
    /// by the kernel if its holder dies). With two at once, one could write a row's older text after the
    /// other wrote its newer text, or take a row off the queue that changed after the other's batch: the row
    /// would then be missing from the index for good.
    package static func withIndexerLock<T>(databasePath: String, waiting: Duration = .zero, _ body: () throws -> T) throws -> T? {
        let file = path(forDatabaseAt: databasePath) + ".lock"
        let descriptor = open(file, O_CREAT | O_RDONLY | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            let code = errno
            throw SQLiteError(extendedResultCode: 14, message: "cannot open the indexer's lock file \(file): errno \(code)")  // SQLITE_CANTOPEN
        }
        defer { close(descriptor) }  // also releases the lock
        giveToDatabaseOwner(file, databasePath: databasePath)
        let deadline = ContinuousClock.now + waiting
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            guard code == EWOULDBLOCK || code == EINTR else {
                throw SQLiteError(extendedResultCode: 10, message: "cannot lock \(file): errno \(code)")  // SQLITE_IOERR
            }
            guard code == EINTR || ContinuousClock.now < deadline else { return nil }
            if code == EWOULDBLOCK { usleep(20_000) }
        }
        return try body()
    }

    /// A file this process made beside the database belongs to the database's owner (as SQLite does for
    /// `-wal` and `-shm`): an admin command run as root must not leave the worker a file it cannot open.
    static func giveToDatabaseOwner(_ file: String, databasePath: String) {
        guard geteuid() == 0 else { return }
        var database = stat(), own = stat()
        guard stat(databasePath, &database) == 0, stat(file, &own) == 0 else { return }
        if own.st_uid != database.st_uid || own.st_gid != database.st_gid {
            _ = chown(file, database.st_uid, database.st_gid)
        }
    }

    /// Writes the text of the oldest queued rows (up to `limit` rows and `budget` characters, in and out)
    /// into the index file: each row's old entry out, its current text in (nothing, for a deleted row).
    /// Only one indexer at a time (`catchUp` holds `withIndexerLock`). The batch is read from the database in
    /// a short read transaction of its own, so that no snapshot of the database is held while FTS5 merges (a
    /// held snapshot keeps the log from being checkpointed); then it is written in one transaction of the
    /// index file alone.
    package static func index(_ database: Database, limit: Int = batch, budget: Int = budget) throws -> [Queued] {
        var batch: [(queued: Queued, task: SQLiteValue, result: SQLiteValue, error: SQLiteValue)] = []
        var batches = 0
        try database.transaction(.deferred) {
            batches = try batchesTaken(database)
            // Stepped one row at a time and left as soon as the budget is spent: the text of rows not taken
            // is never read. A deleted row comes back with NULL text (the LEFT JOIN) and is only taken out.
            // What a row costs is the text taken out of the index (its copy there) and put in.
            let rows = try database.statement(
                """
                SELECT q.seq, q.changes, d.task, d.result, d.error,
                       coalesce(length(d.task), 0) + coalesce(length(d.result), 0) + coalesce(length(d.error), 0)
                       + coalesce((SELECT coalesce(length(s.task), 0) + coalesce(length(s.result), 0) + coalesce(length(s.error), 0)
                                   FROM search.search_docs s WHERE s.seq = q.seq), 0)
                FROM main.delegation_search_queue q LEFT JOIN main.delegations d USING (seq)
                ORDER BY q.seq LIMIT ?
                """, [max(1, limit)])
            defer { rows.reset() }
            var text = 0
            while try rows.step() {
                guard let seq = rows.value(at: 0).int, let changes = rows.value(at: 1).int else { break }
                let (task, result, error) = (rows.value(at: 2), rows.value(at: 3), rows.value(at: 4))
                batch.append((Queued(seq: seq, changes: changes), task, result, error))
                text += max(0, rows.value(at: 5).int ?? 0)
                if text >= budget { break }
            }
        }
        guard !batch.isEmpty else { return [] }
        try database.transaction(.deferred) {
            // The first statement writes the index file: its lock is taken then, and the database's never.
            // The triggers on search_docs take the old text out of the index and put the new text in.
            try database.execute("UPDATE search.search_state SET batches = ?1", batches)
            for row in batch {
                try database.execute("DELETE FROM search.search_docs WHERE seq = ?1", row.queued.seq)
                if !row.task.isNull {
                    try database.execute(
                        "INSERT INTO search.search_docs (seq, task, result, error) VALUES (?1, ?2, ?3, ?4)",
                        row.queued.seq, row.task, row.result, row.error)
                }
            }
        }
        return batch.map(\.queued)
    }

    /// Takes indexed rows off the queue, except those that changed after their batch read them (they stay
    /// queued and are indexed again). A short write of the database alone.
    package static func dequeue(_ database: Database, _ rows: [Queued]) throws {
        guard !rows.isEmpty else { return }
        try database.transaction(.deferred) {
            for row in rows {
                try database.execute("DELETE FROM main.delegation_search_queue WHERE seq = ?1 AND changes = ?2", row.seq, row.changes)
            }
            // Saturating, as the claim's counters (raw SQL may have left it at the largest integer).
            try database.execute("UPDATE main.delegation_search_progress SET batches = batches + (batches < \(Int64.max))")
        }
    }

    /// How many batches the database has taken off the queue (`matchesDatabase`).
    private static func batchesTaken(_ database: Database) throws -> Int {
        try database.queryFirst("SELECT coalesce((SELECT batches FROM main.delegation_search_progress), 0)")?[0].int ?? 0
    }

    /// Whether any row still waits.
    package static func hasQueued(_ database: Database) throws -> Bool {
        try database.queryFirst("SELECT EXISTS (SELECT 1 FROM main.delegation_search_queue)")?[0].int == 1
    }

    /// Indexes every row in one transaction of the index file and empties the queue of what it saw: for
    /// bulk loads (benchmarks), where 512-row batches would take minutes.
    package static func rebuild(_ database: Database) throws {
        guard try withIndexerLock(databasePath: database.path, { try rebuildLocked(database) }) != nil else {
            throw SQLiteError(extendedResultCode: 5, message: "another indexer is at work on \(database.path)")  // SQLITE_BUSY
        }
    }

    private static func rebuildLocked(_ database: Database) throws {
        let rows = try database.transaction(.deferred) {
            try database.execute("UPDATE search.search_state SET batches = ?1", try batchesTaken(database))
            let queued = try database.query("SELECT seq, changes FROM main.delegation_search_queue").compactMap { row in
                row[0].int.flatMap { seq in row[1].int.map { Queued(seq: seq, changes: $0) } }
            }
            try database.execute(
                script: """
                    DROP TRIGGER search.search_docs_insert;
                    DELETE FROM search.search_docs;
                    INSERT INTO search.search_docs (seq, task, result, error) SELECT seq, task, result, error FROM main.delegations;
                    INSERT INTO search.search_index (search_index) VALUES ('rebuild');
                    \(insertTrigger)
                    """)
            return queued
        }
        try dequeue(database, rows)
    }

    /// Lays the index file out if it is new (`prepare`), then catches up until nothing waits or `stopping`
    /// says so, each batch waiting at most a moment for a lock (another process's indexer or writer; it can
    /// as well be done a second later). Run by the store's indexer thread when it has been idle a second.
    /// `afterRound`: after each of its transactions' rounds (the store's `Checkpointer` hears the log's size).
    static func catchUpAll(
        _ database: Database, stopping: StopFlag, statistics: WriterStatistics, logger: Logger, afterRound: () -> Void = {}
    ) {
        defer { afterRound() }
        do {
            // Not attached: the file was unusable at open (logged then).
            guard try isAttached(database) else { return }
            let checked = try database.withLockWaitLimit(.milliseconds(100)) { try prepare(database, logger: logger) }
            guard checked else { return }  // another indexer is at work: its round, not this one
            while !stopping.isSet {
                let indexed = try database.withLockWaitLimit(.milliseconds(100)) { try catchUp(database) }
                afterRound()
                if indexed == 0 { return }
                statistics.recordSearchCatchUp(rows: indexed)
            }
        } catch {
            // Searches stay exact (queued rows are matched on their text); only slower until it works. Another
            // process holding a lock (a VACUUM, another indexer merging) is routine: not worth a warning a second.
            // (Nor is a database whose directory is gone: nothing the indexer could do about it.)
            let routine = (error as? SQLiteError)?.isBusy == true || !FileManager.default.fileExists(atPath: database.path)
            let level: Logger.Level = routine ? .debug : .warning
            logger.log(level: level, "could not catch the search index up; trying again in a second", metadata: ["error": "\(error)"])
        }
    }
}

/// Set once, read from another thread: tells a loop of batches to end after the current one.
final class StopFlag: Sendable {
    private let flag = Mutex(false)
    func set() { flag.withLock { $0 = true } }
    var isSet: Bool { flag.withLock { $0 } }
}
