/// The fixed world of the Graph sandbox: one business, five ad accounts, two pixels each.
enum SandboxData {
    static let defaultUserId = "10000000000001"
    static let businessId = "3000001"
    /// Owned by the business, attached to no ad account: only the business's list shows it.
    static let businessOnlyPixel = "3000901"

    struct Account {
        var number: Int
        var id: String { "act_100000\(number)" }
        var accountId: String { "100000\(number)" }
        var name: String { "Sandbox Ads \(number)" }
        var currency: String { number % 2 == 0 ? "EUR" : "USD" }
        var status: Int { [1, 1, 2, 1, 101][number - 1] }
        var pixelIds: [String] { ["2000\(number)01", "2000\(number)02"] }
    }

    static let accounts = (1...5).map(Account.init)

    /// Meta pages far smaller than `limit` sometimes; the sandbox always does, so paging is exercised.
    static let pageSize = 2

    static func account(_ id: String) -> Account? { accounts.first { $0.id == id } }
}
