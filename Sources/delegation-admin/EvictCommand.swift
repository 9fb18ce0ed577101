import ArgumentParser
import DelegationStore
import Foundation

struct EvictCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evict",
        abstract: "Delete finished delegations (completed, failed, cancelled) beyond a limit, oldest first, with their events.",
        discussion: """
            Never touches a live row (pending, in_progress, queued), nor a finished one whose platform mirror \
            is still undelivered. Deletes in short batches, one transaction each, so a running worker is \
            never held up for long. With --archive, each batch is appended to the file and fsynced before \
            its delete commits (if a commit then fails, the next run archives those rows again: duplicates \
            are possible, losses are not).
            """)

    @OptionGroup var options: CommonOptions

    @Option(help: "Keep this many most recently finished delegations (default: env MAX_DELEGATION_HISTORY, else 100, when --older-than is not given).")
    var keep: Int?

    @Option(name: .customLong("older-than"), help: "Evict those finished longer ago than this (90m, 12h, 7d, 2w).")
    var olderThan: AgeArgument?

    @Flag(name: .customLong("dry-run"), help: "List what would be evicted; change nothing.")
    var dryRun = false

    @Option(help: "Append each evicted delegation with its events to this JSON Lines file before deleting it.")
    var archive: String?

    @Option(name: .customLong("batch-size"), help: "Delegations deleted per transaction (1…10000); each holds the write lock for about 1 ms per delegation.")
    var batchSize = 50

    func validate() throws {
        if let keep, keep < 0 { throw ValidationError("--keep must be 0 or more, not \(keep)") }
        guard (1...10_000).contains(batchSize) else { throw ValidationError("--batch-size must be between 1 and 10000, not \(batchSize)") }
        if dryRun, archive != nil { throw ValidationError("--archive writes what is deleted; it cannot go with --dry-run") }
    }

    /// `--keep`, else the configured history limit when no age was given.
    func effectiveKeep() throws -> Int? {
        if let keep { return keep }
        guard olderThan == nil else { return nil }
        if let value = ProcessInfo.processInfo.environment["MAX_DELEGATION_HISTORY"], !value.isEmpty {
            guard let limit = Int(value), limit >= 0 else {
                throw DelegationStoreError.invalidInput("MAX_DELEGATION_HISTORY must be a whole number ≥ 0, not \(value)")
            }
            return limit
        }
        return 100
    }

    func run() async throws {
        let keep: Int?
        do { keep = try effectiveKeep() } catch { Admin.fail(String(describing: error), json: options.json) }
        let olderThan = self.olderThan.map { Timestamp.string(from: Date().addingTimeInterval(-$0.seconds)) }
        let batchSize = self.batchSize
        let showProgress = !options.json && isatty(STDERR_FILENO) == 1
        let archivePath = archive
        let dryRun = self.dryRun
        try await Admin.run(options) { store in
            // Opened first: an archive that cannot be written must stop the eviction before it starts.
            let archiveFile = try archivePath.map { try ArchiveFile(path: $0) }
            defer { archiveFile?.close() }
            let plan = try await store.read("planning eviction") { database -> (Eviction.Cutoff?, Int, Int) in
                guard let cutoff = try Eviction.cutoff(database, keep: keep, olderThan: olderThan) else { return (nil, 0, 0) }
                let row = try database.queryFirst(
                    """
                    SELECT count(*) FILTER (WHERE NOT EXISTS (
                               SELECT 1 FROM platform_outbox o
                               WHERE o.delegation_id = d.id AND o.delivered_at IS NULL AND o.dead_at IS NULL)),
                           count(*)
                    FROM delegations d INDEXED BY delegations_finished
                    WHERE \(Eviction.finished) AND (finished_at, id) < (?, ?)
                    """, cutoff.finishedAt, cutoff.id)
                let evictable = row?[0].int ?? 0
                return (cutoff, evictable, (row?[1].int ?? 0) - evictable)
            }
            let (cutoff, evictable, heldBack) = plan
            var json: [(String, JSONValue)] = [
                ("dry_run", .bool(dryRun)), ("keep", keep.map(JSONValue.int) ?? .null),
                ("older_than", olderThan.map(JSONValue.string) ?? .null),
                ("held_back_undelivered_mirror", .int(heldBack)),
            ]
            guard let cutoff, evictable > 0 else {
                json.append(("evicted", .int(0)))
                return Report(json: .object(json), text: "nothing to evict" + Self.heldBackNote(heldBack))
            }
            if dryRun {
                let candidates = try await store.read("listing eviction candidates") { database in
                    try Eviction.batch(database, before: cutoff, limit: evictable).chunked(500).flatMap { ids in
                        try database.query(
                            "SELECT \(Delegation.columns) FROM delegations WHERE id IN (SELECT value FROM json_each(?)) ORDER BY finished_at, id",
                            JSONValue.array(ids.map(JSONValue.string)).serialized
                        ).map(Delegation.init(row:))
                    }
                }
                json.append(("would_evict", .int(candidates.count)))
                json.append(("delegations", .array(candidates.map(\.summaryJSON))))
                let table = Output.table(
                    ["ID", "WORKSPACE", "STATUS", "FINISHED", "TASK"],
                    candidates.map { [$0.id, $0.workspaceID, $0.status.rawValue, Output.relative($0.finishedAt), Output.truncate($0.task, to: 40)] })
                return Report(json: .object(json), text: table + "would evict \(candidates.count) delegation(s)" + Self.heldBackNote(heldBack))
            }
            var evicted = 0
            var batches = 0
            while true {
                let deleted = try await store.write("evicting finished delegations") { database -> Int in
                    let ids = try Eviction.batch(database, before: cutoff, limit: batchSize)
                    if let archiveFile, !ids.isEmpty { try archiveFile.append(try Self.archiveLines(database, ids: ids)) }
                    return try Eviction.delete(database, ids: ids)
                }
                if deleted == 0 { break }
                evicted += deleted
                batches += 1
                if showProgress {
                    FileHandle.standardError.write(Data("\revicted \(evicted) of \(evictable)".utf8))
                }
            }
            if showProgress { FileHandle.standardError.write(Data("\n".utf8)) }
            json.append(("evicted", .int(evicted)))
            json.append(("batches", .int(batches)))
            json.append(("archive", archivePath.map(JSONValue.string) ?? .null))
            return Report(
                json: .object(json),
                text: "evicted \(evicted) finished delegation(s) in \(batches) batch(es)"
                    + (archivePath.map { ", archived to \($0)" } ?? "") + Self.heldBackNote(heldBack))
        }
    }

    static func heldBackNote(_ count: Int) -> String {
        count == 0 ? "" : "\n\(count) finished delegation(s) kept until their platform mirror is delivered"
    }

    /// One JSON line per delegation: the full row and its events, in id order.
    static func archiveLines(_ database: Database, ids: [String]) throws -> String {
        var text = ""
        for id in ids {
            guard let row = try database.queryFirst("SELECT \(Delegation.columns) FROM delegations WHERE id = ?", id) else { continue }
            let events = try database.query(
                "SELECT \(DelegationEvent.columns) FROM delegation_events WHERE delegation_id = ? ORDER BY id", id)
            let line: JSONValue = [
                "delegation": Delegation(row: row).json,
                "events": .array(events.map { DelegationEvent(row: $0).json }),
            ]
            line.write(to: &text)
            text += "\n"
        }
        return text
    }
}

/// An append-only JSON Lines file whose every append is on disk before `append` returns.
final class ArchiveFile: Sendable {
    let path: String
    private let descriptor: Int32

    init(path: String) throws {
        self.path = path
        descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw DelegationStoreError.invalidInput("cannot open archive \(path): \(String(cString: strerror(errno)))")
        }
    }

    func append(_ text: String) throws {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                throw DelegationStoreError.invalidInput("cannot write archive \(path): \(String(cString: strerror(errno))); this batch was not deleted")
            }
            bytes = bytes.dropFirst(written)
        }
        guard fsync(descriptor) == 0 else {
            throw DelegationStoreError.invalidInput("cannot fsync archive \(path): \(String(cString: strerror(errno))); this batch was not deleted")
        }
    }

    func close() { _ = Glibc.close(descriptor) }
}

extension Array {
    func chunked(_ size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
    }
}
