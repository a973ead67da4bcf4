import CompassHandlers
import CompassHosts
import CompassMeta
import CompassPlatform
import CompassStorage

/// The fixed world of the Graph sandbox: one business, five ad accounts, two pixels each.
package enum SandboxData {
    package static let defaultUserId = "10000000000001"
    /// The system user a Facebook Login for Business configuration gives a token for.
    package static let systemUserId = "61000000000001"
    package static let businessId = "3000001"
    /// Owned by the business, attached to no ad account: only the business's list shows it.
    package static let businessOnlyPixel = "3000901"
    /// Owned by another business and shared with this one: only `client_pixels` shows it.
    package static let sharedPixel = "3000902"
    /// An offline dataset of the business (a store's sales), attached to no ad account.
    package static let offlineDataset = "3000903"

    package struct Account {
        package var number: Int
        package var id: String { "act_100000\(number)" }
        package var accountId: String { "100000\(number)" }
        package var name: String { "Sandbox Ads \(number)" }
        package var currency: String { number % 2 == 0 ? "EUR" : "USD" }
        package var status: Int { [1, 1, 2, 1, 101][number - 1] }
        package var pixelIds: [String] { ["2000\(number)01", "2000\(number)02"] }
    }

    package static let accounts = (1...5).map(Account.init)

    /// Meta pages far smaller than `limit` sometimes; the sandbox always does, so paging is exercised.
    package static let pageSize = 2

    package static func account(_ id: String) -> Account? { accounts.first { $0.id == id } }
}
