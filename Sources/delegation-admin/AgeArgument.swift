import ArgumentParser
import DelegationStore
import Foundation

/// A length of time: a number with a unit, `90s`, `30m`, `2h`, `7d`, `1w` (several may be joined: `1h30m`).
struct AgeArgument: ExpressibleByArgument, Sendable {
    let seconds: Double

    init?(argument: String) {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604_800]
        var total = 0.0
        var number = ""
        var sawUnit = false
        for character in argument.lowercased() {
            if character.isASCII, character.isNumber || character == "." {
                number.append(character)
            } else if let unit = units[character], let value = Double(number), value.isFinite {
                total += value * unit
                number = ""
                sawUnit = true
            } else {
                return nil
            }
        }
        guard sawUnit, number.isEmpty, total.isFinite, total <= 100 * 365 * 86400 else { return nil }
        seconds = total
    }
}
