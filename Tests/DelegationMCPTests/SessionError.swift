/// A test harness's complaint about an answer it could not use (wrong shape, unexpected error).
struct SessionError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
