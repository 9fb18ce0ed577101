@testable import DelegationStore
import Foundation
import SQLiteDatabase
import TestSupport
import Testing

/// The search index caught up in batches (0006), in a file of its own (0007): a search is exact whether a
/// row is indexed, queued for indexing, or indexed with text that has changed since; the index always
/// matches its rows, also when a batch is indexed twice or a row changes while its batch is indexed.
@Suite struct SearchIndexTests {
    /// A migrated file (and its index file) driven through one connection, so that nothing catches up
    /// behind the test's back.
    static func database(_ directory: TemporaryDirectory) async throws -> Database {
        let path = directory.file("search.db")
        await (try DelegationStore(StoreConfiguration(path: path))).close()
        let database = try Database(path: path)
        try database.execute(script: "PRAGMA foreign_keys = ON")
        #expect(try SearchIndex.attach(database, databasePath: path, create: false))
        return database
    }

    static func insert(_ database: Database, _ task: String) throws -> Int {
        try database.queryFirst("INSERT INTO delegations (workspace_id, task) VALUES ('ws', ?) RETURNING seq", task)?[0].int ?? -1
    }

    static func search(_ database: Database, _ text: String, newestFirst: Bool = true, limit: Int? = nil) throws -> [String] {
        try Queries.list(database, DelegationQuery(search: text, newestFirst: newestFirst, limit: limit)).map(\.task)
    }

    /// FTS5's own check of the index against its copy of the text, and that copy against the rows not queued.
    static func indexMatchesTable(_ database: Database) -> Bool {
        guard (try? database.execute("INSERT INTO search.search_index (search_index, rank) VALUES ('integrity-check', 1)")) != nil else {
            return false
        }
        return (try? Checks.searchIndex(database).ok) == true
    }

    static func queued(_ database: Database) throws -> [String] {
        try database.query("SELECT seq || ':' || changes FROM delegation_search_queue ORDER BY seq").compactMap { $0[0].string }
    }

    @Test func searchIsExactBeforeAndAfterTheIndexCatchesUp() async throws {
        let directory = TemporaryDirectory()
        let database = try await Self.database(directory)
        let first = try Self.insert(database, "report one")
        let second = try Self.insert(database, "report two")
        _ = try Self.insert(database, "unrelated")
        #expect(try Self.queued(database) == ["\(first):1", "\(second):1", "\(second + 1):1"], "new rows wait for the index")
        #expect(try Self.search(database, "REPORT") == ["report two", "report one"], "found on their text before indexing")

        #expect(try SearchIndex.catchUp(database) == 3)
        #expect(try Self.queued(database).isEmpty)
        #expect(Self.indexMatchesTable(database))
        #expect(try Self.search(database, "REPORT") == ["report two", "report one"], "and through the index after")

        // A row whose text changes after it was indexed: what the index holds is stale and never matches.
        try database.execute(
            "UPDATE delegations SET status = 'in_progress', lease_owner = 'w', lease_expires_at = '2999-01-01T00:00:00.000Z' WHERE seq = ?", first)
        try database.execute("UPDATE delegations SET status = 'pending', error = 'peer said overloaded', lease_owner = NULL, lease_expires_at = NULL WHERE seq = ?", first)
        #expect(try Self.queued(database) == ["\(first):1"], "queued again")
        #expect(try Self.search(database, "overloaded") == ["report one"])
        // Changed again before the catch-up: counted (a batch that read the first change leaves it queued).
        try database.execute("UPDATE delegations SET status = 'in_progress', lease_owner = 'w', lease_expires_at = '2999-01-01T00:00:00.000Z' WHERE seq = ?", first)
        try database.execute("UPDATE delegations SET status = 'completed', result = 'all fine', error = NULL WHERE seq = ?", first)
        #expect(try Self.queued(database) == ["\(first):2"])
        #expect(try Self.search(database, "overloaded").isEmpty, "the old error no longer matches")
        #expect(try Self.search(database, "all fine") == ["report one"])
        #expect(try SearchIndex.catchUp(database) == 1)
        #expect(Self.indexMatchesTable(database), "the stale entry left the index with the text it was indexed with (its copy in the index file)")
        #expect(try Self.search(database, "overloaded").isEmpty)
        #expect(try Self.search(database, "all fine") == ["report one"])
        #expect(try Self.search(database, "report") == ["report two", "report one"])
    }

    @Test func bothPathsMergeInEnqueueOrderAndTheLimitHolds() async throws {
        let directory = TemporaryDirectory()
        let database = try await Self.database(directory)
        var seqs: [Int] = []
        for index in 1...3 { seqs.append(try Self.insert(database, "report \(index)")) }
        try SearchIndex.catchUp(database)
        for index in 4...6 { seqs.append(try Self.insert(database, "report \(index)")) }
        // Row 2 indexed, then changed: out of the index's arm, in the queue's.
        try database.execute("UPDATE delegations SET status = 'cancelled', error = 'by operator' WHERE seq = ?", seqs[1])
        #expect(try Self.queued(database) == ["\(seqs[1]):1", "\(seqs[3]):1", "\(seqs[4]):1", "\(seqs[5]):1"])

        #expect(try Self.search(database, "report") == (1...6).reversed().map { "report \($0)" })
        #expect(try Self.search(database, "report", limit: 4) == ["report 6", "report 5", "report 4", "report 3"])
        #expect(try Self.search(database, "report", newestFirst: false, limit: 3) == ["report 1", "report 2", "report 3"])
        #expect(try Queries.list(database, DelegationQuery(statuses: [.cancelled], search: "report")).map(\.task) == ["report 2"])
        #expect(try Queries.list(database, DelegationQuery(statuses: [.pending], search: "by operator")).isEmpty)

        // Merged, not sorted: SQLite walks both arms in seq order and stops at the limit.
        let (sql, arguments) = Queries.select("id", DelegationQuery(statuses: [.failed], search: "report", limit: 50))
        let plan = try database.query("EXPLAIN QUERY PLAN " + sql, arguments: arguments).compactMap { $0["detail"].string }
        #expect(plan.contains { $0.contains("MERGE (UNION ALL)") }, "\(plan)")
        #expect(plan.contains { $0.contains("search_index VIRTUAL TABLE") }, "\(plan)")
        #expect(!plan.contains { $0.contains("TEMP B-TREE") }, "no sort of every hit: \(plan)")
        #expect(!plan.contains { $0.contains("SCAN delegations") }, "\(plan)")
    }

    /// ANALYZE run while the queue was empty leaves it without statistics, so SQLite guesses a million
    /// rows there; joined to the table, the queued arm then built a Bloom filter over every delegation
    /// (230 ms a search at 850k rows). Looked up by rowid instead, whatever the statistics say. (The
    /// "after ANALYZE" half fails on the old query; the half without statistics guards the plan only.)
    @Test func queuedRowsAreLookedUpByRowidWhateverTheStatisticsSay() async throws {
        let directory = TemporaryDirectory()
        let database = try await Self.database(directory)
        try database.execute(
            """
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
            INSERT INTO delegations (workspace_id, task) SELECT 'ws-' || (i % 7), 'report ' || i FROM n
            """)
        while try SearchIndex.catchUp(database) > 0 {}  // 512 rows a batch
        #expect(try Self.queued(database).isEmpty)
        try database.execute(script: "ANALYZE")
        _ = try Self.insert(database, "report fresh")
        for statistics in ["after ANALYZE", "without statistics"] {
            if statistics == "without statistics" { try database.execute(script: "DROP TABLE sqlite_stat1; ANALYZE sqlite_schema") }
            for query in [
                DelegationQuery(statuses: [.failed], search: "report", limit: 50),
                DelegationQuery(workspaceID: "ws-3", search: "report", newestFirst: false, limit: 5),
            ] {
                let (sql, arguments) = Queries.select("id", query)
                let plan = try database.query("EXPLAIN QUERY PLAN " + sql, arguments: arguments).compactMap { $0["detail"].string }
                #expect(!plan.contains { $0.contains("BLOOM") }, "\(statistics): \(plan)")
                #expect(!plan.contains { $0.contains("SCAN delegations") || $0.contains("TEMP B-TREE") }, "\(statistics): \(plan)")
                #expect(plan.contains { $0.contains("MERGE (UNION ALL)") }, "\(statistics): \(plan)")
            }
        }
        #expect(try Self.search(database, "report fresh") == ["report fresh"])
        #expect(try Queries.list(database, DelegationQuery(workspaceID: "ws", search: "fresh")).map(\.task) == ["report fresh"])
        #expect(try Queries.list(database, DelegationQuery(statuses: [.failed], workspaceID: "ws", search: "fresh")).isEmpty)
        #expect(try Queries.list(database, DelegationQuery(workspaceID: "ws-3", search: "report", newestFirst: false, limit: 2))
            .map(\.task) == ["report 3", "report 10"])
    }

    @Test func deletingRowsInEveryStateKeepsTheIndexExact() async throws {
        let directory = TemporaryDirectory()
        let database = try await Self.database(directory)
        let indexed = try Self.insert(database, "indexed and untouched")
        let changed = try Self.insert(database, "indexed then changed")
        try SearchIndex.catchUp(database)
        let fresh = try Self.insert(database, "never indexed")
        try database.execute("UPDATE delegations SET status = 'cancelled', error = 'changed after indexing' WHERE seq = ?", changed)
        try database.execute("UPDATE delegations SET status = 'cancelled' WHERE seq IN (?, ?)", indexed, fresh)
        #expect(try database.execute("DELETE FROM delegations WHERE seq IN (?, ?, ?)", indexed, changed, fresh) == 3)
        #expect(try Self.queued(database) == ["\(indexed):1", "\(changed):2", "\(fresh):2"], "queued to leave the index")
        #expect(try Self.search(database, "indexed").isEmpty, "a deleted row is never found, indexed or not")
        #expect(try SearchIndex.catchUp(database) == 3)
        #expect(try Self.queued(database).isEmpty)
        #expect(Self.indexMatchesTable(database), "each left the index with the text it was indexed with")
        #expect(try database.queryFirst("SELECT count(*) FROM search.search_docs")?[0].int == 0)
        _ = try Self.insert(database, "after the deletes")
        try SearchIndex.catchUp(database)
        #expect(Self.indexMatchesTable(database))
        #expect(try Self.search(database, "after the") == ["after the deletes"])
    }

    /// The store's writer catches up by itself: a second after the last catch-up, at the next write.
    @Test func theWriterCatchesUpOnItsOwn() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        for index in 0..<20 { _ = try await store.delegate(workspaceID: "ws", task: "job \(index)") }
        try await Task.sleep(for: .milliseconds(1_100))
        _ = try await store.delegate(workspaceID: "ws", task: "the last one")
        let deadline = ContinuousClock.now + .seconds(10)
        var left = -1
        while ContinuousClock.now < deadline {
            left = try await store.read { try $0.queryFirst("SELECT count(*) FROM delegation_search_queue")?[0].int ?? -1 }
            // The statistic is counted after the COMMIT the reader may already see.
            if left == 0 && store.writerStatistics.searchRowsIndexed == 21 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(left == 0, "every row indexed")
        #expect(store.writerStatistics.searchRowsIndexed == 21)
        #expect(try await store.list(DelegationQuery(search: "job 1")).count == 11, "job 1 and job 10 to 19")
        let findings = try await store.check(.nothingIsOld)
        #expect(findings.first { $0.name == "search_index" }?.ok == true, "\(findings)")
        await store.close()
    }

    /// After a burst the writer goes quiet: it catches the tail up by itself after a second idle.
    @Test func theWriterCatchesUpTheTailOfABurstWhenIdle() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        _ = try await store.delegate(workspaceID: "ws", task: "first")  // the catch-up at open runs after this one
        try await Task.sleep(for: .milliseconds(200))
        for index in 0..<5 { _ = try await store.delegate(workspaceID: "ws", task: "tail \(index)") }
        #expect(try await store.rowsLeftForTheSearchIndex() == 0, "indexed with no further write")
        await store.close()
    }

    /// A batch stops at its text budget (results run to 1 MiB): at least one row, never the whole queue.
    @Test func aCatchUpStopsAtItsTextBudget() async throws {
        let directory = TemporaryDirectory()
        let database = try await Self.database(directory)
        let big = String(repeating: "x", count: 3_000)
        for index in 0..<4 { _ = try Self.insert(database, "big \(index) " + big) }
        #expect(try SearchIndex.catchUp(database, budget: 1) == 1, "one row even past the budget")
        #expect(try SearchIndex.catchUp(database, budget: 7_000) == 3, "then rows while the text before them fits")
        #expect(try SearchIndex.hasQueued(database) == false)
        #expect(Self.indexMatchesTable(database))

        // Queued again once indexed: what comes out of the index (its copy of the text) counts too.
        try database.execute("UPDATE delegations SET error = 'changed'")
        #expect(try SearchIndex.catchUp(database, budget: 7_000) == 2, "~3,000 characters out and ~3,000 in a row")
        #expect(try SearchIndex.catchUp(database) == 2)
        #expect(Self.indexMatchesTable(database))
    }

    /// Raw SQL cannot take a row's key: neither INSERT OR REPLACE naming an existing seq (it would delete the
    /// row without its delete triggers) nor an UPDATE of seq under any of its names.
    @Test func aRowsKeyCannotBeTakenOrChanged() async throws {
        let directory = TemporaryDirectory()
        let database = try await Self.database(directory)
        let seq = try Self.insert(database, "keep me")
        try SearchIndex.catchUp(database)
        func refused(_ sql: String) -> String {
            do { try database.execute(sql, seq); return "" } catch { return "\(error)" }
        }
        #expect(refused("INSERT OR REPLACE INTO delegations (seq, workspace_id, task) VALUES (?, 'ws', 'stolen')").contains("never replaced"))
        for name in ["seq", "rowid", "_rowid_", "oid"] {
            #expect(refused("UPDATE delegations SET \(name) = 1000 WHERE seq = ?").contains("seq never changes"), "\(name)")
        }
        #expect(try Self.search(database, "keep me") == ["keep me"])
        #expect(Self.indexMatchesTable(database))
    }

    /// LIKE metacharacters are literal on the queued path too, also when a combining mark follows them.
    @Test func queuedRowsMatchLiterally() async throws {
        let directory = TemporaryDirectory()
        let database = try await Self.database(directory)
        _ = try Self.insert(database, "grew 100%\u{301} today")
        _ = try Self.insert(database, "grew 1000\u{301} today")  // what an unescaped % would also match
        #expect(try Self.search(database, "100%\u{301}") == ["grew 100%\u{301} today"])
        #expect(try Self.search(database, "0_0").isEmpty)
        try SearchIndex.catchUp(database)
        #expect(try Self.search(database, "100%\u{301}") == ["grew 100%\u{301} today"], "the index agrees")
    }

    /// What `check` says when the index and its queue disagree (raw SQL emptied the queue).
    @Test func checkNamesRowsTheIndexLacks() async throws {
        let directory = TemporaryDirectory()
        let database = try await Self.database(directory)
        _ = try Self.insert(database, "lost")
        try database.execute("DELETE FROM delegation_search_queue")
        let store = try DelegationStore(StoreConfiguration(path: directory.file("search.db"), access: .readOnly))
        let finding = try await store.check(.nothingIsOld).first { $0.name == "search_index" }
        #expect(finding?.ok == false)
        #expect(finding?.detail.contains("1 row(s) missing from the search index") == true, "\(String(describing: finding))")
        await store.close()
    }
    /// A crash between the index file's commit and the queue's indexes a batch twice: the index ends as if
    /// once, because it replaces each row's entry from its own copy of the text instead of applying a change.
    @Test func aBatchIndexedTwiceLeavesTheIndexAsIfOnce() async throws {
        let directory = TemporaryDirectory()
        let database = try await Self.database(directory)
        let first = try Self.insert(database, "twice indexed report")
        _ = try Self.insert(database, "another report")
        try SearchIndex.catchUp(database)
        try database.execute("UPDATE delegations SET error = 'stopped by hand' WHERE seq = ?", first)
        let gone = try Self.insert(database, "short-lived report")
        try database.execute("UPDATE delegations SET status = 'cancelled' WHERE seq = ?", gone)
        try SearchIndex.catchUp(database)
        try database.execute("DELETE FROM delegations WHERE seq = ?", gone)

        let batch = try SearchIndex.index(database)  // committed to the index file; the queue never heard
        #expect(batch.map(\.seq) == [gone])
        #expect(try SearchIndex.matchesDatabase(database), "between the two commits: still the same moment")
        #expect(try SearchIndex.index(database) == batch, "the same batch again")
        #expect(try SearchIndex.matchesDatabase(database))
        try database.execute("UPDATE delegations SET error = 'stopped by hand, twice' WHERE seq = ?", first)
        #expect(try SearchIndex.catchUp(database) == 2, "and once more with a change, as a later batch would")
        #expect(try Self.queued(database).isEmpty)
        #expect(Self.indexMatchesTable(database))
        #expect(try Self.search(database, "report") == ["another report", "twice indexed report"])
        #expect(try Self.search(database, "by hand, twice") == ["twice indexed report"])
        #expect(try Self.search(database, "short-lived").isEmpty)
        #expect(try SearchIndex.matchesDatabase(database), "after the round: the same moment")
    }

    /// A row that changes after a batch read it keeps its queue entry: the batch indexed the text it saw,
    /// and the newer text is indexed by the next batch instead of being lost.
    @Test func aRowChangedWhileItsBatchWasIndexedStaysQueued() async throws {
        let directory = TemporaryDirectory()
        let database = try await Self.database(directory)
        let seq = try Self.insert(database, "changing report")
        let batch = try SearchIndex.index(database)
        try database.execute("UPDATE delegations SET status = 'cancelled', error = 'changed meanwhile' WHERE seq = ?", seq)
        try SearchIndex.dequeue(database, batch)
        #expect(try Self.queued(database) == ["\(seq):2"], "still queued: the batch indexed the text before the change")
        #expect(try Self.search(database, "meanwhile") == ["changing report"], "found on its text while queued")
        #expect(try SearchIndex.catchUp(database) == 1)
        #expect(try Self.queued(database).isEmpty)
        #expect(Self.indexMatchesTable(database))
        #expect(try Self.search(database, "meanwhile") == ["changing report"], "and through the index after")
    }

    /// The index file is derived: deleted (or never copied with the database), the next read-write open
    /// queues every row and indexes them; a read-only open without it searches by scanning, and `check`
    /// says the file is missing.
    @Test func aMissingIndexFileIsRebuiltAndSearchesScanUntilThen() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("delegations.db")
        let store = try makeStore(directory)
        for index in 0..<30 { _ = try await store.delegate(workspaceID: "ws", task: "rebuilt job \(index)") }
        await store.close()
        try FileManager.default.removeItem(atPath: SearchIndex.path(forDatabaseAt: path))
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: SearchIndex.path(forDatabaseAt: path) + suffix) }

        let readOnly = try DelegationStore(StoreConfiguration(path: path, access: .readOnly))
        #expect(try await readOnly.list(DelegationQuery(search: "job 2")).count == 11, "job 2 and 20 to 29, by a scan")
        let missing = try await readOnly.check(.nothingIsOld).first { $0.name == "search_index" }
        #expect(missing?.ok == false)
        #expect(missing?.detail.contains("missing") == true, "\(String(describing: missing))")
        await readOnly.close()
        #expect(!FileManager.default.fileExists(atPath: SearchIndex.path(forDatabaseAt: path)), "a read-only open creates nothing")

        let reopened = try makeStore(directory)
        #expect(FileManager.default.fileExists(atPath: SearchIndex.path(forDatabaseAt: path)))
        #expect(try await reopened.rowsLeftForTheSearchIndex() == 0, "every row indexed again")
        #expect(try await reopened.list(DelegationQuery(search: "job 2")).count == 11)
        let findings = try await reopened.check(.nothingIsOld)
        #expect(findings.first { $0.name == "search_index" }?.ok == true, "\(findings)")
        await reopened.close()
    }

    /// The point of the index file: a transaction that holds its lock for as long as it likes (as an FTS5
    /// merge does) delays no write of the database — not the tool's enqueue, the worker's claim and
    /// completion, nor eviction — and searches still find the rows (queued, on their text).
    @Test func writesAndEvictionNeverWaitForTheIndexFile() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("delegations.db")
        let store = try DelegationStore(
            StoreConfiguration(path: path, busyTimeout: .seconds(1), sourceWorkspaceID: "ws-self"), logger: quietLogger)
        let blocker = try Database(path: SearchIndex.path(forDatabaseAt: path), mode: .readWrite)
        try blocker.execute(script: "BEGIN IMMEDIATE")

        // Any write that needed the index file's lock would fail with `busy` after the 1 s busy timeout.
        for index in 0..<20 { _ = try await store.delegate(workspaceID: "ws", task: "blocked job \(index)") }
        let claimed = try await store.claim(worker: "w", limit: 20, lease: .seconds(30))
        for row in claimed { try await store.complete(id: row.id, worker: "w", result: "result \(row.task)") }
        try await store.write("delivered") { try $0.execute("UPDATE platform_outbox SET delivered_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')") }
        let evicted = try await store.evict(keep: 5, olderThan: nil, batchSize: 5)
        #expect(claimed.count == 20 && evicted == 15)
        try await Task.sleep(for: .milliseconds(1_500))  // the indexer tried at least once meanwhile
        let left = try await store.read { try $0.queryFirst("SELECT count(*) FROM delegation_search_queue")?[0].int ?? -1 }
        #expect(left == 20, "20 rows (5 kept, 15 evicted) wait while the index file is locked: \(left)")
        #expect(try await store.list(DelegationQuery(search: "result blocked")).count == 5)

        try blocker.execute(script: "ROLLBACK")
        #expect(try await store.rowsLeftForTheSearchIndex() == 0, "caught up once the lock was gone")
        #expect(try await store.list(DelegationQuery(search: "result blocked")).count == 5)
        let findings = try await store.check(.nothingIsOld)
        #expect(findings.first { $0.name == "search_index" }?.ok == true, "\(findings)")
        await store.close()
    }
    /// The index file is derived data: one that is not a database at all keeps nothing from working. The
    /// store opens, enqueues, claims and completes; searches scan; `check` says what to do.
    @Test func aDamagedIndexFileKeepsNothingFromWorking() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("delegations.db")
        await (try makeStore(directory)).close()
        let index = SearchIndex.path(forDatabaseAt: path)
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: index + suffix) }
        try Data(repeating: 0x5A, count: 8_192).write(to: URL(fileURLWithPath: index))

        let store = try makeStore(directory)
        let id = try #require(try await store.delegate(workspaceID: "ws", task: "damaged index report")["task_id"]?.stringValue)
        #expect(try await store.claim(worker: "w", limit: 1, lease: .seconds(30)).map(\.id) == [id])
        try await store.complete(id: id, worker: "w", result: "found anyway")
        #expect(try await store.list(DelegationQuery(search: "found anyway")).map(\.id) == [id], "by a scan")
        let finding = try await store.check(.nothingIsOld).first { $0.name == "search_index" }
        #expect(finding?.ok == false)
        #expect(finding?.detail.contains("unreadable") == true, "\(String(describing: finding))")
        await store.close()
    }
    /// One indexer at a time per database: with two, one could write a row's older text after the other
    /// wrote its newer text, or take off the queue a row that changed after the other's batch read it.
    /// While another holds the indexer's lock (another process's store), a catch-up does nothing.
    @Test func oneIndexerAtATime() async throws {
        let directory = TemporaryDirectory()
        let database = try await Self.database(directory)
        _ = try Self.insert(database, "waits its turn")
        let whileHeld = try SearchIndex.withIndexerLock(databasePath: database.path) { () throws -> (Int, Bool?) in
            (try SearchIndex.catchUp(database), try SearchIndex.withIndexerLock(databasePath: database.path) { true })
        }
        #expect(whileHeld?.0 == 0, "another indexer is at work")
        #expect(whileHeld?.1 == nil, "and holds the lock")
        #expect(try Self.queued(database).count == 1, "nothing indexed, nothing taken off the queue")
        #expect(try SearchIndex.catchUp(database) == 1, "the lock is free again")
        #expect(Self.indexMatchesTable(database))
    }

    /// `check` reads the two files while no indexer round is between its commits (it takes the indexer's lock,
    /// waiting a few seconds for it); a lock held longer (a long rebuild) costs it only that wait.
    @Test func checkWaitsForAnIndexerRoundButNotForever() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        _ = try await store.delegate(workspaceID: "ws", task: "checked")
        #expect(try await store.rowsLeftForTheSearchIndex() == 0)
        // Another indexer's lock, as another process's indexer would hold it (flock: any other open file).
        let lock = try await Self.takeTheIndexersLock(store)
        let released = Task {
            try await Task.sleep(for: .milliseconds(800))
            let now = ContinuousClock.now
            close(lock)
            return now
        }
        let finding = try await store.check(.nothingIsOld).first { $0.name == "search_index" }
        let checkedAt = ContinuousClock.now
        let releasedAt = try await released.value
        #expect(checkedAt >= releasedAt, "check waited for the round to end")
        #expect(finding?.ok == true, "\(String(describing: finding))")

        // Held past the wait: checked beside it all the same, once the wait is over.
        let held = try await Self.takeTheIndexersLock(store)
        defer { close(held) }
        let second = ContinuousClock.now
        let beside = try await store.check(.nothingIsOld).first { $0.name == "search_index" }
        #expect(ContinuousClock.now - second >= DelegationStore.checkWaitForTheIndexer, "it waited first")
        #expect(beside?.ok == true, "\(String(describing: beside))")
        await store.close()
    }

    /// Takes the indexer's lock as another process's indexer would (flock: any other open file), waiting for
    /// the store's own indexer to let go of it.
    static func takeTheIndexersLock(_ store: DelegationStore) async throws -> Int32 {
        let descriptor = open(SearchIndex.path(forDatabaseAt: store.configuration.path) + ".lock", O_RDONLY | O_CLOEXEC)
        try #require(descriptor >= 0)
        let deadline = ContinuousClock.now + .seconds(20)
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            guard ContinuousClock.now < deadline else {
                close(descriptor)
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        return descriptor
    }

    /// A file whose header is fine but whose pages are not: searches scan past it instead of failing, the
    /// database's own integrity check still passes, and the search index's finding says what to do.
    @Test func anIndexFileDamagedPastItsHeaderIsScannedPast() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("delegations.db")
        let store = try makeStore(directory)
        for index in 0..<40 { _ = try await store.delegate(workspaceID: "ws", task: "damaged pages job \(index)") }
        _ = try await store.rowsLeftForTheSearchIndex()
        await store.close()
        let index = try FileHandle(forWritingTo: URL(fileURLWithPath: SearchIndex.path(forDatabaseAt: path)))
        let size = try index.seekToEnd()
        try #require(size > 16_384, "the index file has pages past its header: \(size) bytes")
        try index.seek(toOffset: 8_192)
        try index.write(contentsOf: Data(repeating: 0x5A, count: Int(size) - 8_192))
        try index.close()

        let probe = try Database(path: path, mode: .readOnly)
        try #require(try SearchIndex.attach(probe, databasePath: path, create: false))
        #expect(try SearchIndex.isLaidOut(probe), "its header and schema still read: not a missing index")

        let reopened = try DelegationStore(StoreConfiguration(path: path, access: .readOnly))
        #expect(try await reopened.list(DelegationQuery(search: "pages job 3")).count == 11, "job 3 and 30 to 39, by a scan")
        // (`export --search` reads inside one snapshot, whose COMMIT SQLite then fails: it ends with that error.)
        let findings = try await reopened.check(.nothingIsOld)
        #expect(findings.first { $0.name == "integrity_check" }?.ok == true, "the database itself is fine: \(findings)")
        let finding = findings.first { $0.name == "search_index" }
        #expect(finding?.ok == false)
        #expect(finding.map { ["damaged", "could not", "another moment"].contains(where: $0.detail.contains) } == true, "\(String(describing: finding))")
        await reopened.close()
    }
    /// Either file restored from a backup beside a newer other: the index is not trusted (searches scan, so
    /// a row is neither matched on text it no longer has nor missed), `check` says so, and the next
    /// read-write open rebuilds it.
    @Test func aFileRestoredFromABackupIsNotTrustedAndTheIndexIsRebuilt() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("delegations.db")
        let index = SearchIndex.path(forDatabaseAt: path)
        func drain(_ store: DelegationStore) async throws {
            #expect(try await store.rowsLeftForTheSearchIndex() == 0, "the index did not catch up")
        }
        func restore(_ backup: String, to file: String) throws {
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: file + suffix) }
            try FileManager.default.copyItem(atPath: backup, toPath: file)
        }
        func search(_ text: String) async throws -> (found: Int, finding: CheckFinding?) {
            let store = try DelegationStore(StoreConfiguration(path: path, access: .readOnly))
            let found = try await store.list(DelegationQuery(search: text)).count
            let finding = try await store.check(.nothingIsOld).first { $0.name == "search_index" }
            await store.close()
            return (found, finding)
        }

        var store = try makeStore(directory)
        let id = try #require(try await store.delegate(workspaceID: "ws", task: "restored report")["task_id"]?.stringValue)
        try await drain(store)
        await store.close()
        try FileManager.default.copyItem(atPath: path, toPath: directory.file("backup.db"))
        try FileManager.default.copyItem(atPath: index, toPath: directory.file("backup.db-search"))

        store = try makeStore(directory)
        _ = try await store.claim(worker: "w", limit: 1, lease: .seconds(30))
        try await store.complete(id: id, worker: "w", result: "finished after the backup")
        try await drain(store)
        for round in 0..<3 {
            _ = try await store.delegate(workspaceID: "ws", task: "later \(round)")
            try await drain(store)
        }
        await store.close()

        // The database restored, the newer index kept.
        try restore(directory.file("backup.db"), to: path)
        var (found, finding) = try await search("after the backup")
        #expect(found == 0, "not matched on text the restored row does not have")
        #expect(finding?.ok == false && finding?.detail.contains("another moment") == true, "\(String(describing: finding))")
        store = try makeStore(directory)
        try await drain(store)
        _ = try await store.delegate(workspaceID: "ws", task: "newer row")
        try await drain(store)
        await store.close()
        (found, finding) = try await search("after the backup")
        #expect(found == 0)
        #expect(finding?.ok == true, "rebuilt: \(String(describing: finding))")
        #expect(try await search("restored report").found == 1)

        // The index restored from the backup beside the newer database.
        try restore(directory.file("backup.db-search"), to: index)
        (found, finding) = try await search("newer row")
        #expect(found == 1, "not missed though the old index never held it")
        #expect(finding?.ok == false && finding?.detail.contains("another moment") == true, "\(String(describing: finding))")
        store = try makeStore(directory)
        try await drain(store)
        #expect(try await store.searchIndexFindingOnceSettled()?.ok == true, "rebuilt again")
        #expect(try await store.list(DelegationQuery(search: "newer row")).count == 1)
        await store.close()
    }
    /// An index file laid out for another database never matches, even with the same count of batches: it is
    /// not used, and the next indexer round lays it out again for this one.
    @Test func anIndexFileOfAnotherDatabaseIsNotUsed() async throws {
        let directory = TemporaryDirectory()
        let (first, second) = (directory.file("first.db"), directory.file("second.db"))
        for (path, task) in [(first, "first database's row"), (second, "second database's row")] {
            let store = try DelegationStore(StoreConfiguration(path: path), logger: quietLogger)
            _ = try await store.delegate(workspaceID: "ws", task: task)
            _ = try await store.rowsLeftForTheSearchIndex()
            await store.close()
        }
        let index = SearchIndex.path(forDatabaseAt: second)
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: index + suffix) }
        try FileManager.default.copyItem(atPath: SearchIndex.path(forDatabaseAt: first), toPath: index)

        // A reader refuses it before any indexer round has run.
        let reader = try DelegationStore(StoreConfiguration(path: second, access: .readOnly))
        #expect(try await reader.list(DelegationQuery(search: "first database")).isEmpty, "not matched on the other's text")
        let finding = try await reader.check(.nothingIsOld).first { $0.name == "search_index" }
        #expect(finding?.ok == false && finding?.detail.contains("another moment") == true, "\(String(describing: finding))")
        await reader.close()

        let store = try DelegationStore(StoreConfiguration(path: second), logger: quietLogger)
        #expect(try await store.list(DelegationQuery(search: "first database")).isEmpty, "not matched on the other's text")
        #expect(try await store.list(DelegationQuery(search: "database's row")).map(\.task) == ["second database's row"])
        #expect(try await store.searchIndexFindingOnceSettled()?.ok == true, "laid out again for this one")
        #expect(try await store.list(DelegationQuery(search: "database's row")).map(\.task) == ["second database's row"])
        await store.close()
    }
}

extension DelegationStore {
    /// Rows still waiting for the search index once the store's indexer has emptied the queue (it looks every
    /// second), or after 10 s: 0 when it caught up.
    func rowsLeftForTheSearchIndex() async throws -> Int {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            let queued = try await read { try $0.queryFirst("SELECT count(*) FROM delegation_search_queue")?[0].int ?? -1 }
            if queued == 0 || ContinuousClock.now >= deadline { return queued }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// `check`'s search index finding once it says ok, or after 10 s (a rebuild takes the indexer's rounds).
    func searchIndexFindingOnceSettled() async throws -> CheckFinding? {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            let finding = try await check(.nothingIsOld).first { $0.name == "search_index" }
            if finding?.ok == true || ContinuousClock.now >= deadline { return finding }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}
