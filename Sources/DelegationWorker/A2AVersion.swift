import DelegationStore
import DelegationTool
import Foundation

/// The two A2A generations deployed today (`shared/reference/a2a.md`).
public enum A2AVersion: String, Sendable {
    /// 0.2/0.3: `message/send`, `tasks/get`, `kind` on parts, roles `user`/`agent`.
    case v03 = "0.3"
    /// 1.0: `SendMessage`, `GetTask`, header `A2A-Version: 1.0`, `ROLE_USER`, parts without `kind`.
    case v10 = "1.0"

    var other: A2AVersion { self == .v03 ? .v10 : .v03 }
}
