import ArgumentParser
import DelegationLogging
import DelegationStore
import DelegationTool
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

    @OptionGroup var local: CommonOptions
    @ParentCommand var parent: DelegationAdmin
    /// The global options given after the subcommand, else before it (`delegation-admin --db q.db list`).
    var options: CommonOptions { local.merged(with: parent.global) }

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
        // A dry run only reads: it opens the file read-only (and never migrates it), like `list`.
        try await Admin.run(options, access: dryRun ? .readOnly : .readWrite) { store in
            // Opened first: an archive that cannot be written must stop the eviction before it starts.
            let archiveFile = try archivePath.map { try ArchiveFile(path: $0) }
            defer { archiveFile?.close() }
            let plan = try await store.evictionPlan(keep: keep, olderThan: olderThan)
            var json: [(String, JSONValue)] = [
                ("dry_run", .bool(dryRun)), ("keep", keep.map(JSONValue.int) ?? .null),
                ("older_than", olderThan.map(JSONValue.string) ?? .null),
                ("held_back_undelivered_mirror", .int(plan.heldBack)),
            ]
            guard plan.evictable > 0 else {
                json.append(("evicted", .int(0)))
                return Report(json: .object(json), text: "nothing to evict" + Self.heldBackNote(plan.heldBack))
            }
            if dryRun {
                let candidates = try await store.evictionCandidates(keep: keep, olderThan: olderThan, limit: plan.evictable)
                json.append(("would_evict", .int(candidates.count)))
                json.append(("delegations", .array(candidates.map(\.summaryJSON))))
                let table = Output.table(
                    ["ID", "WORKSPACE", "STATUS", "FINISHED", "TASK"],
                    candidates.map { [$0.id, $0.workspaceID, $0.status.rawValue, Output.relative($0.finishedAt), Output.truncate($0.task, to: 40)] })
                return Report(json: .object(json), text: table + "would evict \(candidates.count) delegation(s)" + Self.heldBackNote(plan.heldBack))
            }
            let batches = Counter()
            let evictable = plan.evictable
            var archive: (@Sendable ([ArchivedDelegation]) throws -> Void)?
            if let archiveFile {
                archive = { batch in try archiveFile.append(batch.map { $0.json.serialized + "\n" }.joined()) }
            }
            let progress: @Sendable (Int) -> Void = { total in
                batches.increment()
                if showProgress { FileDescriptorOutput.write("\revicted \(total) of \(evictable)", to: STDERR_FILENO) }
            }
            let evicted = try await store.evict(
                keep: keep, olderThan: olderThan, batchSize: batchSize, archive: archive, progress: progress)
            if showProgress { FileDescriptorOutput.write("\n", to: STDERR_FILENO) }
            json.append(("evicted", .int(evicted)))
            json.append(("batches", .int(batches.value)))
            json.append(("archive", archivePath.map(JSONValue.string) ?? .null))
            return Report(
                json: .object(json),
                text: "evicted \(evicted) finished delegation(s) in \(batches.value) batch(es)"
                    + (archivePath.map { ", archived to \($0)" } ?? "") + Self.heldBackNote(plan.heldBack))
        }
    }

    static func heldBackNote(_ count: Int) -> String {
        count == 0 ? "" : "\n\(count) finished delegation(s) kept until their platform mirror is delivered"
    }
}
