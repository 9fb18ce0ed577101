import CSQLite
import DelegationStore
import Foundation

/// A second process for the store's tests: what another worker or a crashing one would do to the file.
///
///   store-probe claim DB WORKER BATCH        print "ready", wait for the file DB.go, then claim until
///                                            nothing is left, printing each id claimed
///   store-probe churn DB WORKER ROUNDS       delegate, claim and complete ROUNDS times; print "ok N" or the error
///   store-probe hold DB                      BEGIN IMMEDIATE, claim every pending row, print "holding", never commit
///   store-probe lock DB SECONDS              BEGIN IMMEDIATE, print "holding", keep the write lock SECONDS,
///                                            ROLLBACK, print "released" (an operator's open transaction)
let arguments = CommandLine.arguments
func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("store-probe: \(message)\n".utf8))
    exit(1)
}
guard arguments.count >= 3 else { fail("usage: store-probe claim|churn|hold DB …") }
let path = arguments[2]
/// Unbuffered, so the test sees each line the moment it is written.
func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

switch arguments[1] {
case "claim":
    guard arguments.count == 5, let batch = Int(arguments[4]) else { fail("usage: claim DB WORKER BATCH") }
    let store = try DelegationStore(StoreConfiguration(path: path))
    let worker = arguments[3]
    say("ready")
    while !FileManager.default.fileExists(atPath: path + ".go") { usleep(1_000) }
    while true {
        let claimed = try await store.claim(worker: worker, limit: batch, lease: .seconds(60))
        if claimed.isEmpty { break }
        for delegation in claimed { say(delegation.id) }
        usleep(500)  // paced, so that two probes interleave even on a busy machine
    }
    await store.close()

case "churn":
    guard arguments.count == 5, let rounds = Int(arguments[4]) else { fail("usage: churn DB WORKER ROUNDS") }
    let store = try DelegationStore(StoreConfiguration(path: path, busyTimeout: .seconds(10)))
    let worker = arguments[3]
    var done = 0
    do {
        for round in 0..<rounds {
            _ = try await store.enqueue(workspaceID: "ws-\(worker)", task: "churn \(round)")
            for delegation in try await store.claim(worker: worker, limit: 2, lease: .seconds(30)) {
                try await store.complete(id: delegation.id, worker: worker, result: "done by \(worker)")
                done += 1
            }
            _ = try await store.liveAndRecentlyFinished(finished: 5)
        }
        say("ok \(done)")
    } catch {
        say("error \(error)")
        exit(2)
    }
    await store.close()

case "hold":
    var handle: OpaquePointer?
    guard sqlite3_open(path, &handle) == SQLITE_OK else { fail("cannot open \(path)") }
    sqlite3_busy_timeout(handle, 10_000)
    let sql = """
        BEGIN IMMEDIATE;
        UPDATE delegations SET status = 'in_progress', lease_owner = 'doomed',
            lease_expires_at = '2999-01-01T00:00:00.000Z', attempts = attempts + 1 WHERE status = 'pending';
        """
    guard sqlite3_exec(handle, sql, nil, nil, nil) == SQLITE_OK else {
        fail(String(cString: sqlite3_errmsg(handle)))
    }
    say("holding")
    while true { sleep(60) }

case "lock":
    guard arguments.count == 4, let seconds = Double(arguments[3]), seconds.isFinite, seconds >= 0, seconds < 3600 else {
        fail("usage: lock DB SECONDS")
    }
    var handle: OpaquePointer?
    guard sqlite3_open(path, &handle) == SQLITE_OK else { fail("cannot open \(path)") }
    sqlite3_busy_timeout(handle, 30_000)
    guard sqlite3_exec(handle, "BEGIN IMMEDIATE", nil, nil, nil) == SQLITE_OK else {
        fail(String(cString: sqlite3_errmsg(handle)))
    }
    say("holding")
    usleep(useconds_t(seconds * 1_000_000))
    sqlite3_exec(handle, "ROLLBACK", nil, nil, nil)
    sqlite3_close(handle)
    say("released")

default:
    fail("unknown command \(arguments[1])")
}
