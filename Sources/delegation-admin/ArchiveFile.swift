import DelegationStore
import Foundation

/// An append-only JSON Lines file (mode 0600) whose every append is on disk before `append` returns:
/// an eviction deletes a batch only after its archive lines are durable.
final class ArchiveFile: Sendable {
    let path: String
    private let handle: FileHandle

    /// - Throws: `DelegationStoreError` (`invalidInput`) naming the file when it cannot be opened.
    init(path: String) throws {
        self.path = path
        if !FileManager.default.fileExists(atPath: path),
            !FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
        {
            let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
            throw DelegationStoreError.invalidInput(
                "cannot open archive \(path): "
                    + (FileManager.default.fileExists(atPath: directory) ? "cannot create the file" : "directory \(directory) does not exist"))
        }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw DelegationStoreError.invalidInput("cannot open archive \(path) for writing")
        }
        self.handle = handle
    }

    /// Appends `text` and fsyncs.
    /// - Throws: `DelegationStoreError` (`invalidInput`); the batch being archived is then not deleted.
    func append(_ text: String) throws {
        do {
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(text.utf8))
            try handle.synchronize()
        } catch {
            throw DelegationStoreError.invalidInput("cannot write archive \(path): \(error); this batch was not deleted")
        }
    }

    func close() { try? handle.close() }
}
